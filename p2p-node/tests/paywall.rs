//! The key server under attack, on the real dev chain: a creator node
//! (in process, with the chain) publishes a paid stream; a rogue peer (a
//! bare swarm, no node) opens a real channel and asks for keys with bad
//! payments. Each is refused with its own reason, nothing is stored for
//! it, and one epoch of credit is all a non-payer gets.
//! Skips (or fails under `VILOKANAM_REQUIRE=1`) without the dev chain.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use prometheus_client::registry::Registry;
use vilokanam::config::NodeConfig;
use vilokanam::node::payments::ChainAccess;
use vilokanam::node::Node;
use vilokanam_api::OfferInfo;
use vilokanam_chain::account::{account_id, keypair};
use vilokanam_chain::test_utils::{parts_for_test, DevChain};
use vilokanam_chain::{Endpoint, OpenTerms, Settlement, Voucher};
use vilokanam_swarm::libp2p::{identity, Multiaddr, PeerId};
use vilokanam_swarm::protocols::keys::paywall::epoch_at;
use vilokanam_swarm::protocols::keys::wire::{KeyRefusal, KeyRequest, KeyResponse, Payment};
use vilokanam_swarm::wire::Sig;
use vilokanam_swarm::Config;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Keys sold on the key-only listener (the default: the offer names its
/// addresses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payments_are_refused_each_with_its_reason_and_store_nothing() {
    bad_payments(None).await
}

/// The same with `key_listen = []`: keys sold on the main listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payments_are_refused_on_the_main_listener_too() {
    bad_payments(Some(vec![])).await
}

async fn bad_payments(key_listen: Option<Vec<String>>) {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let client = Settlement::connect(&Endpoint::Rpc(chain.ws_url.clone()))
        .await
        .unwrap();
    let genesis = client.genesis();
    let creator_account = account_id(&keypair("//Ferdie").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
    let store = vilokanam_storage::Store::open(dir.path()).unwrap();
    let config = NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        key_listen: key_listen.clone(),
        discovery: false,
        // Claim as soon as what is held is worth one claim fee.
        claim_fee_multiple: 1,
        claim_check_secs: 1,
        ..NodeConfig::default()
    };
    let access = ChainAccess {
        endpoint: Endpoint::Rpc(chain.ws_url.clone()),
        account: Some("//Ferdie".into()),
    };
    let node = Node::spawn_with_chain(config, keys, store, Some(access))
        .await
        .unwrap();
    let offer = OfferInfo {
        price_per_sec: "1000000".into(),
        payee: creator_account.to_string(),
        genesis: format!("0x{}", hex::encode(genesis)),
        epoch_secs: 6,
        key_servers: vec![],
    };
    let (stream, _) = node
        .start_publish("paid", String::new(), vec![], String::new(), Some(&offer))
        .await
        .unwrap();
    let server: PeerId = node.identity().peer_id;
    // Where a viewer goes for keys: the addresses the offer names.
    let addrs: Vec<Multiaddr> = node
        .key_server_addrs()
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let listen: Vec<Multiaddr> = node
        .listen_addrs()
        .iter()
        .map(|a| {
            let mut a: Multiaddr = a.parse().unwrap();
            a.pop(); // the /p2p/ suffix
            a
        })
        .collect();
    assert!(!addrs.is_empty());
    if key_listen.is_some() {
        assert_eq!(addrs, listen, "keys on the main listener");
    } else {
        assert!(
            addrs.iter().all(|a| !listen.contains(a)),
            "keys on their own listener: {addrs:?} vs {listen:?}"
        );
    }

    // The rogue: a bare swarm with a real channel naming the creator.
    let (rogue, _events, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            discovery: false,
            ..Config::default()
        },
        &mut Registry::default(),
    )
    .unwrap();
    tokio::spawn(event_loop.run());
    let eve = keypair("//Eve").unwrap();
    let voucher_key = SigningKey::from_bytes(&[42; 32]);
    let expires = client.finalized_number().await.unwrap() as u32 + 1_000;
    let deposit = 10_000_000_000; // 0.01 TICK
    let ch = client
        .open(
            &eve,
            voucher_key.verifying_key().to_bytes(),
            &OpenTerms::single(creator_account, deposit, expires),
        )
        .await
        .unwrap()
        .outcome
        .id;
    // A channel that pays someone else.
    let other = client
        .open(
            &eve,
            voucher_key.verifying_key().to_bytes(),
            &OpenTerms::single(account_id(&keypair("//Dave").unwrap()), deposit, expires),
        )
        .await
        .unwrap()
        .outcome
        .id;
    let sign = |key: &SigningKey, chain: [u8; 32], channel: u64, payee: [u8; 32], amount: u128| {
        let v = Voucher::sign(key, chain, channel, payee, amount);
        Payment {
            cumulative: v.cumulative,
            signature: Sig(v.signature),
        }
    };
    let epoch = epoch_at(now_ms(), 6);
    let ask = |channel: u64, epoch: u64, payment: Option<Payment>| KeyRequest {
        stream: stream.clone(),
        epoch,
        channel,
        payment,
        holder: None,
    };
    let request = |r: KeyRequest| {
        let rogue = rogue.clone();
        let addrs = addrs.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(20), rogue.request_key(server, addrs, r))
                .await
                .expect("answered")
                .expect("delivered")
        }
    };
    let refused = |r: KeyResponse| match r {
        KeyResponse::Refused(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };

    // No payment at all: refused, the first request must carry a voucher.
    let why = refused(request(ask(ch, epoch, None)).await);
    assert!(
        matches!(&why, KeyRefusal::BadVoucher(r) if r.contains("must carry a voucher")),
        "{why:?}"
    );
    // A voucher for 1 planck: one epoch of credit, then nothing more.
    let one = sign(&voucher_key, genesis, ch, creator_account.0, 1);
    assert!(matches!(
        request(ask(ch, epoch, Some(one.clone()))).await,
        KeyResponse::Granted { .. }
    ));
    assert_eq!(
        refused(request(ask(ch, epoch + 1, Some(one))).await),
        KeyRefusal::Unpaid {
            required: 6_000_000,
            paid: 1
        }
    );
    // The channel is now bound to this peer: another one cannot use it
    // (someone who read the channel id on chain, spending its credit).
    let (thief, _thief_events, thief_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            discovery: false,
            ..Config::default()
        },
        &mut Registry::default(),
    )
    .unwrap();
    tokio::spawn(thief_loop.run());
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        thief.request_key(server, addrs.clone(), ask(ch, epoch, None)),
    )
    .await
    .unwrap()
    .unwrap();
    let why = refused(r);
    assert!(
        matches!(&why, KeyRefusal::BadChannel(r) if r.contains("in use by another peer")),
        "{why:?}"
    );
    thief.shutdown().await.unwrap();
    // Forged (another key), for another payee, for another chain: the
    // request names neither payee nor chain (the offer does), so each is a
    // signature that does not verify for this channel, payee and chain.
    for bad in [
        sign(
            &SigningKey::from_bytes(&[7; 32]),
            genesis,
            ch,
            creator_account.0,
            6_000_000,
        ),
        sign(&voucher_key, genesis, ch, [9; 32], 6_000_000),
        sign(&voucher_key, [8; 32], ch, creator_account.0, 6_000_000),
    ] {
        let why = refused(request(ask(ch, epoch + 1, Some(bad))).await);
        assert!(
            matches!(&why, KeyRefusal::BadVoucher(r) if r.contains("signature does not verify")),
            "{why:?}"
        );
    }
    // More than the deposit.
    let why = refused(
        request(ask(
            ch,
            epoch + 1,
            Some(sign(
                &voucher_key,
                genesis,
                ch,
                creator_account.0,
                deposit + 1,
            )),
        ))
        .await,
    );
    assert!(
        matches!(&why, KeyRefusal::BadVoucher(r) if r.contains("exceeds the deposit")),
        "{why:?}"
    );
    // Channels that do not pay this creator, or do not exist.
    let why = refused(request(ask(other, epoch, None)).await);
    assert!(
        matches!(&why, KeyRefusal::BadChannel(r) if r.contains("does not name this stream's payee")),
        "{why:?}"
    );
    let why = refused(request(ask(999, epoch, None)).await);
    assert!(
        matches!(&why, KeyRefusal::BadChannel(r) if r.contains("does not exist")),
        "{why:?}"
    );
    // Nothing bad was stored: only the 1-planck voucher.
    let held = node.earnings().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].cumulative, 1);

    // A good voucher buys the next epoch and is stored; an older one is
    // refused afterwards and the same one again changes nothing.
    let good = sign(&voucher_key, genesis, ch, creator_account.0, 6_000_000);
    assert!(matches!(
        request(ask(ch, epoch + 1, Some(good.clone()))).await,
        KeyResponse::Granted { .. }
    ));
    let older = sign(&voucher_key, genesis, ch, creator_account.0, 5_000_000);
    let why = refused(request(ask(ch, epoch + 1, Some(older))).await);
    assert!(
        matches!(&why, KeyRefusal::BadVoucher(r) if r.contains("older")),
        "{why:?}"
    );
    assert!(matches!(
        request(ask(ch, epoch + 1, Some(good))).await,
        KeyResponse::Granted { .. }
    ));
    let held = node.earnings().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].channel, held[0].cumulative), (ch, 6_000_000));
    // 6 µTICK is not worth a claim fee (0.0014 TICK): not claimed yet.
    assert_eq!(client.channel(ch).await.unwrap().unwrap().paid, 0);
    // 0.003 TICK is: the node's settlement check claims it by itself.
    let big = sign(&voucher_key, genesis, ch, creator_account.0, 3_000_000_000);
    assert!(matches!(
        request(ask(ch, epoch + 1, Some(big))).await,
        KeyResponse::Granted { .. }
    ));
    vilokanam_testnet::wait_until(
        "claimed when worth the fee",
        Duration::from_secs(30),
        || async {
            // On chain, and recorded by the node (after the claim returned).
            Ok(
                client.channel(ch).await?.map(|c| c.paid) == Some(3_000_000_000)
                    && node.earnings()?[0].claimed == 3_000_000_000,
            )
        },
    )
    .await
    .unwrap();
    assert_eq!(node.claim().await.unwrap(), 0, "nothing left to claim");
    // 1,000 planck more: at shutdown a claim would cost more than it
    // brings, so it is not claimed; the creator gives it up and closes the
    // channel, so that the payer has the rest of its deposit back at once.
    let tip = sign(&voucher_key, genesis, ch, creator_account.0, 3_000_001_000);
    assert!(matches!(
        request(ask(ch, epoch + 1, Some(tip))).await,
        KeyResponse::Granted { .. }
    ));
    let before = client.channel(ch).await.unwrap().expect("open");
    assert_eq!(before.paid, 3_000_000_000);
    node.shutdown().await.unwrap();
    assert!(
        client.channel(ch).await.unwrap().is_none(),
        "closed at shutdown, the tip not claimed at a loss"
    );
    rogue.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}
