//! Relays earn fees (issue #9), end to end with real processes and the dev
//! chain (our runtime's wasm under chopsticks): a creator and two relays
//! that charge different fees per MiB, viewers behind them, each node
//! paying the peers it pulls from with vouchers from one channel of its
//! own. Without the dev chain's parts the tests skip, saying so, unless
//! `VILOKANAM_REQUIRE=1` (CI) makes them fail.

#![allow(clippy::needless_range_loop)] // nodes are indexed across parallel tables

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use vilokanam_chain::account::{account_id, keypair};
use vilokanam_chain::test_utils::{parts_for_test, DevChain};
use vilokanam_swarm::protocols::bandwidth::fee_for;

/// The dev chain, its websocket URL and a client; `None` when its parts
/// are missing and they are not required.
async fn dev_chain() -> Option<(DevChain, String, vilokanam_chain::Settlement)> {
    let parts = parts_for_test()?;
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let client = vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.clone()))
        .await
        .expect("connect");
    Some((chain, rpc, client))
}

const MTICK: u64 = 1_000_000_000;
/// Fees per MiB: creator, relay 1, relay 2.
const FEES: [u64; 3] = [5 * MTICK, 20 * MTICK, 10 * MTICK];
/// The largest chunk of the looped fixture is well under this.
const CHUNK: u64 = 400_000;

fn fee_arg(fee: u64) -> String {
    format!("{}", fee)
}

/// Plays `stream` at `viewer` for `secs` as a player would and returns the
/// segments served (sequence → media seconds).
async fn play(viewer: &vilokanam_api::ApiClient, stream: &str, secs: u64) -> BTreeMap<u64, f64> {
    let mut got = BTreeMap::new();
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if let Ok(list) = viewer.playlist(stream).await {
            for (seq, d) in vilokanam_testnet::segment_durations(&list) {
                if got.contains_key(&seq) {
                    continue;
                }
                if let Ok(Some(_)) = viewer.segment_file(stream, seq).await {
                    got.insert(seq, d);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    got
}

/// A creator (Bob, 5 mTICK/MiB), relay 1 (Charlie, 20 mTICK/MiB) and
/// relay 2 (Dave, 10 mTICK/MiB) behind it, viewer A (Alice) behind relay
/// 1 only, viewer B (Eve) behind relay 2 only, viewer C (Ferdie) behind
/// both. Everyone pays at most 100 mTICK/MiB and extends 1 MiB of credit.
/// After 25 s of playing, the nodes stop in order (viewers, relays,
/// creator) and each settles. Then:
/// - every server's off-chain account of every peer it served equals,
///   within one chunk, what that peer verified, and what the peer paid is
///   exactly its verified bytes × the fee;
/// - on chain, each payee claimed exactly the voucher it held, and each
///   relay's earnings are the bytes it served × its fee (within a chunk);
/// - relays paid the creator likewise;
/// - each viewer opened one channel, whatever the number of relays it
///   paid (C paid two from one deposit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_earn_their_fee_for_every_verified_byte_and_the_chain_settles_it() {
    let Some((chain, rpc, client)) = dev_chain().await else {
        return;
    };
    let uris = [
        "//Bob",
        "//Charlie",
        "//Dave",
        "//Alice",
        "//Eve",
        "//Ferdie",
    ];
    let accounts: Vec<_> = uris
        .iter()
        .map(|u| account_id(&keypair(u).unwrap()))
        .collect();
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    for (i, uri) in uris.iter().enumerate() {
        t.import_account(i, uri, &rpc).await.expect("import");
    }
    let common = |fee: Option<u64>| {
        let mut v = vec![
            "--chain-rpc".to_string(),
            rpc.clone(),
            "--max-fee".into(),
            fee_arg(100 * MTICK),
            "--credit-mib".into(),
            "1".into(),
        ];
        if let Some(f) = fee {
            v.extend(["--fee".to_string(), fee_arg(f)]);
        }
        v
    };
    // 0 creator; 1, 2 relays behind it; 3 behind 1; 4 behind 2; 5 behind both.
    for (relay, bootstrap, fee) in [
        (false, vec![], Some(FEES[0])),
        (true, vec![0], Some(FEES[1])),
        (true, vec![0], Some(FEES[2])),
        (false, vec![1], None),
        (false, vec![2], None),
        (false, vec![1, 2], None),
    ] {
        t.spawn(vilokanam_testnet::NodeOptions {
            relay,
            bootstrap,
            extra: common(fee),
            ..Default::default()
        })
        .await
        .expect("daemon");
    }
    t.wait_connected().await.expect("connected");
    let clip = t.root().join("sample.ts");
    std::fs::write(&clip, vilokanam_testnet::FIXTURE).unwrap();
    let clip = clip.to_string_lossy().into_owned();
    let mut publisher = t
        .publish(
            0,
            &["--name", "show", "--input", &clip, "--realtime", "--loop"],
            Stdio::null(),
        )
        .expect("publish");
    let stream = t.node(0).unwrap().stream("show");
    let apis: Vec<_> = (0..6).map(|i| t.api(i).unwrap()).collect();
    let peer_ids: Vec<String> = (0..6).map(|i| t.node(i).unwrap().peer_id.clone()).collect();
    for v in &apis[3..] {
        vilokanam_testnet::wait_until(
            "the viewer hears the stream",
            Duration::from_secs(30),
            || async { Ok(v.stream(&stream).await.is_ok()) },
        )
        .await
        .unwrap();
        v.watch(&stream).await.expect("watch");
    }
    let (a, b, c) = tokio::join!(
        play(&apis[3], &stream, 25),
        play(&apis[4], &stream, 25),
        play(&apis[5], &stream, 25)
    );
    for (name, p) in [("A", &a), ("B", &b), ("C", &c)] {
        assert!(p.len() >= 8, "viewer {name} played only {p:?}");
    }
    // The viewers stop watching and the creator stops publishing: nothing
    // more flows, and every node pays what verified last.
    for v in &apis[3..] {
        v.unwatch(&stream).await.expect("unwatch");
    }
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    vilokanam_testnet::wait_until(
        "every puller paid exactly its verified bytes × the fee",
        Duration::from_secs(30),
        || async {
            let mut all = Vec::new();
            for api in &apis {
                all.push(api.bandwidth().await?);
            }
            for (p, info) in all.iter().enumerate() {
                for s in &info.servers {
                    let fee = s.fee_per_mib.unwrap_or(0);
                    if s.paid.parse::<u128>()? != fee_for(s.verified_bytes, fee) {
                        return Ok(false);
                    }
                    // ...and the server has checked and credited it.
                    let Some(server) = peer_ids.iter().position(|x| *x == s.peer) else {
                        continue;
                    };
                    let credited = all[server]
                        .peers
                        .iter()
                        .find(|a| a.peer == peer_ids[p])
                        .map(|a| a.paid.clone());
                    if credited.as_deref() != Some(s.paid.as_str()) && s.paid != "0" {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        },
    )
    .await
    .unwrap();
    let mut bw = Vec::new();
    for api in &apis {
        bw.push(api.bandwidth().await.unwrap());
    }
    // Each server's account of each peer against what that peer verified
    // and paid: paid alike, served within one chunk of what verified.
    let index_of = |peer: &str| {
        peer_ids
            .iter()
            .position(|p| p == peer)
            .expect("a testnet peer")
    };
    let mut paid_to = [0u128; 3];
    for s in 0..3 {
        let info = &bw[s];
        assert_eq!(info.fee_per_mib, FEES[s]);
        assert!(!info.peers.is_empty(), "server {s} served nobody");
        for acct in &info.peers {
            let p = index_of(&acct.peer);
            let mine = bw[p]
                .servers
                .iter()
                .find(|x| x.peer == peer_ids[s])
                .unwrap_or_else(|| panic!("peer {p} knows nothing of server {s}"));
            let paid: u128 = acct.paid.parse().unwrap();
            assert_eq!(mine.fee_per_mib, Some(FEES[s]));
            assert_eq!(
                paid,
                mine.paid.parse::<u128>().unwrap(),
                "server {s} / peer {p}"
            );
            assert_eq!(paid, fee_for(mine.verified_bytes, FEES[s]));
            assert!(
                acct.served_bytes >= mine.verified_bytes
                    && acct.served_bytes - mine.verified_bytes <= CHUNK,
                "server {s} served {} bytes, peer {p} verified {}",
                acct.served_bytes,
                mine.verified_bytes
            );
            assert!(!acct.cut_off, "an honest payer was cut off: {acct:?}");
            paid_to[s] += paid;
        }
        let served: u64 = info.peers.iter().map(|x| x.served_bytes).sum();
        // Rounded up per peer: at most one planck each above the total's.
        let n = info.peers.len() as u128;
        let expected = fee_for(served, FEES[s]) + n;
        assert!(
            paid_to[s] <= expected && expected - paid_to[s] <= n * fee_for(CHUNK, FEES[s]) + n,
            "server {s}: paid {} for {served} bytes (owed {expected})",
            paid_to[s]
        );
        eprintln!(
            "server {s} at {} planck/MiB: served {served} bytes to {} peers, paid {} planck",
            FEES[s],
            info.peers.len(),
            paid_to[s]
        );
    }
    // The relays pulled from the creator and paid it: a relay earns the
    // difference.
    for r in 1..3 {
        let spent: u128 = bw[r]
            .servers
            .iter()
            .map(|x| x.paid.parse::<u128>().unwrap())
            .sum();
        eprintln!(
            "relay {r}: earned {} planck, paid its upstream {spent}",
            paid_to[r]
        );
        assert!(spent > 0, "relay {r} paid the creator");
    }
    // Every server claims what it holds (as `vilokanam earnings --claim`):
    // on chain each claimed exactly the vouchers it held, which sum to
    // what its peers paid.
    for s in 0..3 {
        apis[s].claim().await.expect("claim");
        let held = apis[s].earnings().await.unwrap();
        let mut total = 0u128;
        for r in held.iter().filter(|r| r.stream == "bandwidth") {
            let accrued: u128 = r.accrued.parse().unwrap();
            assert_eq!(r.claimed, r.accrued, "server {s}: {r:?}");
            let on_chain = client
                .payees(r.channel)
                .await
                .unwrap()
                .into_iter()
                .find(|p| p.payee == accounts[s])
                .map(|p| p.claimed);
            assert_eq!(on_chain, Some(accrued), "server {s}, channel {}", r.channel);
            total += accrued;
        }
        assert_eq!(
            total, paid_to[s],
            "server {s}: held vouchers = what peers paid"
        );
    }
    // One channel per paying node, whatever the number of servers it
    // paid: viewer C's one deposit paid every relay it pulled from.
    let channels = client.channels().await.unwrap();
    for p in 1..6 {
        let n = channels.iter().filter(|c| c.payer == accounts[p]).count();
        assert_eq!(n, 1, "node {p} opened {n} channels");
    }
    assert!(
        !channels.iter().any(|c| c.payer == accounts[0]),
        "the creator pulled from nobody and paid nobody"
    );
    let c_channel = channels.iter().find(|c| c.payer == accounts[5]).unwrap();
    let c_paid = bw[5].servers.iter().filter(|x| x.paid != "0").count() as u32;
    assert_eq!(
        c_channel.bound_payees, c_paid,
        "viewer C's payees are bound to its one channel"
    );
    eprintln!("viewer C paid {c_paid} relays from one channel");
    // What a relay operator reads: `vilokanam earnings` on relay 1.
    let out = tokio::process::Command::new(bin)
        .args(["earnings", "--api", &t.node(1).unwrap().api_addr])
        .output()
        .await
        .expect("vilokanam earnings runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "bandwidth at 20 mTICK/MiB: served ".to_owned(),
        format!("paid server {} (5 mTICK/MiB): ", peer_ids[0]),
        "bandwidth fees (held voucher)".to_owned(),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    for i in [3, 4, 5, 1, 2, 0] {
        t.stop(i).await.expect("stops");
    }
    t.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}

/// Bad bandwidth vouchers at a real daemon that charges, on the dev chain:
/// each refused with its reason and crediting nothing; a good one credits
/// exactly what it raised, a replay and an older one raise nothing; a peer
/// that keeps sending bad ones is ignored without further chain lookups;
/// after a SIGKILL the credited voucher is still held and is claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bandwidth_vouchers_are_refused_with_their_reason_and_credit_nothing() {
    use ed25519_dalek::SigningKey;
    use vilokanam_chain::voucher::Voucher;
    use vilokanam_swarm::libp2p::identity;
    use vilokanam_swarm::wire::Sig;
    use vilokanam_swarm::BandwidthPayment;

    let Some((chain, rpc, client)) = dev_chain().await else {
        return;
    };
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    t.import_account(0, "//Charlie", &rpc)
        .await
        .expect("import");
    let opts = vilokanam_testnet::NodeOptions {
        extra: ["--chain-rpc", &rpc, "--fee", "1mTICK/MiB"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    t.spawn(opts.clone()).await.expect("daemon");
    let api = t.api(0).unwrap();
    let server: vilokanam_swarm::libp2p::PeerId = t.node(0).unwrap().peer_id.parse().unwrap();
    let addr: vilokanam_swarm::libp2p::Multiaddr =
        t.node(0).unwrap().tcp_addr().unwrap().parse().unwrap();
    let payee = account_id(&keypair("//Charlie").unwrap()).0;
    let genesis = client.genesis();

    // A payer's channel: two late payees, each capped at 0.01 TICK.
    let voucher_key = SigningKey::from_bytes(&[41; 32]);
    let now = client.finalized_number().await.unwrap() as u32;
    let cap = 10 * MTICK as u128;
    let terms = vilokanam_chain::OpenTerms {
        payees: vec![],
        max_payees: 2,
        payee_cap: cap,
        deposit: 2 * cap,
        collateral: 0,
        expires_at: now + 1000,
    };
    let channel = client
        .open(
            &keypair("//Dave").unwrap(),
            voucher_key.verifying_key().to_bytes(),
            &terms,
        )
        .await
        .expect("open")
        .outcome
        .id;

    // An in-process peer that sends the vouchers.
    let (peer, _events, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        vilokanam_swarm::Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            discovery: false,
            ..Default::default()
        },
        &mut prometheus_client::registry::Registry::default(),
    )
    .expect("swarm");
    tokio::spawn(event_loop.run());
    peer.dial(addr).await.expect("dial");
    let me = peer.peer_id().to_string();
    let pay = |v: Voucher| BandwidthPayment {
        channel: v.channel,
        cumulative: v.cumulative,
        signature: Sig(v.signature),
    };
    let refused = |reason: &'static str| {
        let api = api.clone();
        async move {
            api.metric(
                "vilokanam_node_bandwidth_vouchers_refused",
                &[&format!("reason=\"{reason}\"")],
            )
            .await
            .unwrap_or(0.0)
        }
    };
    let credited = || {
        let api = api.clone();
        let me = me.clone();
        async move {
            api.bandwidth()
                .await
                .ok()
                .and_then(|b| b.peers.into_iter().find(|p| p.peer == me))
                .map_or(0u128, |p| p.paid.parse().unwrap())
        }
    };
    let good = |cumulative: u128| Voucher::sign(&voucher_key, genesis, channel, payee, cumulative);
    let forger = SigningKey::from_bytes(&[42; 32]);
    // (what is sent, the refusal it must get)
    let bad = [
        // a channel that does not exist
        (
            Voucher::sign(&voucher_key, genesis, 9_999, payee, MTICK as u128),
            "bad_channel",
        ),
        // signed by a key that is not the channel's
        (
            Voucher::sign(&forger, genesis, channel, payee, MTICK as u128),
            "bad_voucher",
        ),
        // naming another payee (the server checks it as its own)
        (
            Voucher::sign(&voucher_key, genesis, channel, [9; 32], MTICK as u128),
            "bad_voucher",
        ),
        // for another chain
        (
            Voucher::sign(&voucher_key, [7; 32], channel, payee, MTICK as u128),
            "bad_voucher",
        ),
        // over this payee's cap
        (good(cap + 1), "bad_voucher"),
    ];
    for (i, (v, reason)) in bad.into_iter().enumerate() {
        let before = refused(reason).await;
        assert!(peer.pay(server, pay(v)).await.unwrap(), "delivered");
        vilokanam_testnet::wait_until(
            &format!("bad voucher {i} refused as {reason}"),
            Duration::from_secs(30),
            || async { Ok(refused(reason).await > before) },
        )
        .await
        .unwrap();
        assert_eq!(credited().await, 0, "bad voucher {i} credited something");
    }
    // A good voucher credits exactly what it raised; it is on disk.
    assert!(peer
        .pay(server, pay(good(2 * MTICK as u128)))
        .await
        .unwrap());
    vilokanam_testnet::wait_until(
        "the good voucher credited",
        Duration::from_secs(30),
        || async { Ok(credited().await == 2 * MTICK as u128) },
    )
    .await
    .unwrap();
    let held = api.earnings().await.unwrap();
    assert!(
        held.iter().any(|e| e.stream == "bandwidth"
            && e.channel == channel
            && e.accrued == (2 * MTICK).to_string()),
        "{held:?}"
    );
    // A replay and an older voucher raise nothing; a newer one raises by
    // the difference.
    for v in [
        good(2 * MTICK as u128),
        good(MTICK as u128),
        good(3 * MTICK as u128),
    ] {
        assert!(peer.pay(server, pay(v)).await.unwrap());
    }
    vilokanam_testnet::wait_until(
        "the newer voucher credited",
        Duration::from_secs(30),
        || async { Ok(credited().await == 3 * MTICK as u128) },
    )
    .await
    .unwrap();
    // Five bad vouchers before, seven more now: once they are checked
    // (concurrently) the peer has eight strikes, and what it sends next is
    // ignored with no chain lookup.
    let settled = || async { refused("bad_channel").await + refused("ignored").await };
    let before = settled().await;
    for k in 0..7u64 {
        let v = Voucher::sign(&voucher_key, genesis, 10_000 + k, payee, MTICK as u128);
        assert!(peer.pay(server, pay(v)).await.unwrap());
    }
    vilokanam_testnet::wait_until(
        "the seven bad vouchers refused or ignored",
        Duration::from_secs(30),
        || async { Ok(settled().await >= before + 7.0) },
    )
    .await
    .unwrap();
    let ignored = refused("ignored").await;
    let v = Voucher::sign(&voucher_key, genesis, 20_000, payee, MTICK as u128);
    assert!(peer.pay(server, pay(v)).await.unwrap());
    vilokanam_testnet::wait_until(
        "the flooding peer is ignored",
        Duration::from_secs(30),
        || async { Ok(refused("ignored").await > ignored) },
    )
    .await
    .unwrap();
    assert_eq!(
        credited().await,
        3 * MTICK as u128,
        "bad vouchers changed nothing"
    );
    // SIGKILL right after: the voucher credited is on disk (it was made
    // durable before the peer was credited) and is claimed after restart.
    peer.shutdown().await.unwrap();
    t.kill(0).await.expect("kill");
    t.restart(0, opts).await.expect("restart");
    let api = t.api(0).unwrap();
    let held = api.earnings().await.unwrap();
    assert!(
        held.iter().any(|e| e.stream == "bandwidth"
            && e.channel == channel
            && e.accrued == (3 * MTICK).to_string()),
        "after SIGKILL: {held:?}"
    );
    assert_eq!(api.claim().await.unwrap(), (3 * MTICK).to_string());
    let on_chain = client
        .payees(channel)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.payee.0 == payee)
        .map(|p| p.claimed);
    assert_eq!(
        on_chain,
        Some(3 * MTICK as u128),
        "claimed exactly the held voucher"
    );
    t.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}
