//! The `vilokanam account|chain|channel` commands, run as real processes
//! against the dev chain (our runtime's wasm under chopsticks). Like
//! `chain/tests/dev_chain.rs`, this skips only when the dev chain's parts
//! are missing and `VILOKANAM_REQUIRE_CHAIN` is not `1`.

use std::path::Path;
use std::process::Output;

use vilokanam_chain::test_utils::{parts_for_test, DevChain};

const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

async fn vilokanam(dir: &Path, rpc: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_vilokanam"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(["--chain-rpc", rpc])
        .env_remove("VILOKANAM_CHAIN_SPEC")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("vilokanam runs")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "unexpected success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_chain_and_channel_commands() {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // No account yet: a precise error, nothing created.
    let err = failed(&vilokanam(d, &rpc, &["channel", "list"]).await);
    assert!(err.contains("no chain account"), "{err}");
    let err = failed(&vilokanam(d, &rpc, &["account", "import", "not a seed phrase"]).await);
    assert!(
        err.contains("secret URI") || err.contains("seed phrase"),
        "{err}"
    );
    assert!(!d.join("account.key").exists());

    let out = ok(&vilokanam(d, &rpc, &["account", "import", "//Alice"]).await);
    assert!(
        out.contains("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"),
        "{out}"
    );
    let err = failed(&vilokanam(d, &rpc, &["account", "import", "//Bob"]).await);
    assert!(err.contains("--force"), "{err}");

    // From stdin, so a real seed phrase stays out of `ps` and history.
    let other = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vilokanam"))
        .args(["account", "import", "--data-dir"])
        .arg(other.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"//Charlie\n").await.unwrap();
    }
    let out = ok(&child.wait_with_output().await.unwrap());
    assert!(
        out.contains("5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y"),
        "{out}"
    );

    let out = ok(&vilokanam(d, &rpc, &["chain", "status"]).await);
    assert!(out.contains("vilokanam_dev"), "{out}");
    assert!(out.contains("open channels:  0"), "{out}");

    let out = ok(&vilokanam(
        d,
        &rpc,
        &[
            "channel",
            "open",
            "--payee",
            BOB,
            "--deposit",
            "0.0001TICK",
            "--expires-in",
            "100",
        ],
    )
    .await);
    assert!(out.contains("opened channel 0"), "{out}");
    // The voucher key is this node's identity key.
    assert!(d.join("identity.key").exists());

    let out = ok(&vilokanam(d, &rpc, &["channel", "top-up", "0", "0.0001TICK"]).await);
    assert!(
        out.contains("deposit now 0.0002 TICK, collateral 0 TICK"),
        "{out}"
    );
    let out = ok(&vilokanam(d, &rpc, &["channel", "list"]).await);
    assert!(out.contains("channel 0") && out.contains("(you)"), "{out}");
    assert!(out.contains("deposit:        0.0002 TICK"), "{out}");
    assert!(out.contains("payees:         1 of 1 bound"), "{out}");
    let out = ok(&vilokanam(d, &rpc, &["account"]).await);
    assert!(out.contains("held:    0.0002 TICK"), "{out}");

    // A channel for a creator and two relays needs collateral for the
    // relays' caps; too little is refused before anything is sent.
    let three = |collateral: &'static str| {
        [
            "channel",
            "open",
            "--payee",
            BOB,
            "--max-payees",
            "3",
            "--payee-cap",
            "0.00001TICK",
            "--deposit",
            "0.0001TICK",
            "--collateral",
            collateral,
        ]
    };
    let err = failed(&vilokanam(d, &rpc, &three("0.00001TICK")).await);
    assert!(
        err.contains("below the 0.00002 TICK these terms need"),
        "{err}"
    );
    let out = ok(&vilokanam(d, &rpc, &three("0.00002TICK")).await);
    assert!(out.contains("opened channel 1"), "{out}");
    assert!(out.contains("collateral:     0.00002 TICK"), "{out}");
    assert!(out.contains("payees:         1 of 3 bound"), "{out}");

    // The payer may not close before expiry: the pallet's reason is shown.
    let err = failed(&vilokanam(d, &rpc, &["channel", "close", "0"]).await);
    assert!(err.contains("ChannelNotExpired"), "{err}");
    let err = failed(&vilokanam(d, &rpc, &["channel", "top-up", "9", "1TICK"]).await);
    assert!(err.contains("channel 9 does not exist"), "{err}");
    let err = failed(&vilokanam(d, &rpc, &["channel", "top-up", "0", "1.5XTICK"]).await);
    assert!(err.contains("not an amount"), "{err}");

    chain.stop().await.unwrap();
}

/// `publish --price` against the real dev chain: the payee defaults to the
/// node's chain account and the chain's genesis hash is read from the
/// chain; both arrive signed at a viewer, whose `vilokanam streams` shows
/// the price. Bad prices and a missing account are refused up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_stream_announces_its_price_payee_and_chain() {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let genesis =
        vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.clone()))
            .await
            .expect("connect")
            .genesis();
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::line(bin, 2)
        .await
        .expect("testnet");
    let creator_dir = t.node(0).unwrap().data_dir.clone();
    let clip = t.root().join("sample.ts");
    std::fs::write(&clip, vilokanam_testnet::FIXTURE).unwrap();
    let clip = clip.to_string_lossy().into_owned();
    let dir = creator_dir.to_string_lossy().into_owned();
    let publish = |t: &mut vilokanam_testnet::Testnet, extra: &[&str]| {
        let mut args = vec!["--name", "paid", "--input", &clip, "--realtime", "--loop"];
        args.extend_from_slice(extra);
        t.publish(0, &args, std::process::Stdio::null())
            .expect("publish runs")
    };
    // Runs a publish that must fail, and returns its stderr.
    let refused = async |t: &mut vilokanam_testnet::Testnet, extra: &[&str]| {
        let out = publish(t, extra).wait_with_output().await.unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A price per minute, and a paid stream with no payout account.
    let err = refused(&mut t, &["--price", "2µTICK/min"]).await;
    assert!(err.contains("per second"), "{err}");
    let err = refused(&mut t, &["--price", "2000TICK/s"]).await;
    assert!(err.contains("above the limit"), "{err}");
    let err = refused(
        &mut t,
        &[
            "--price",
            "0",
            "--payee",
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        ],
    )
    .await;
    assert!(err.contains("are for a paid stream"), "{err}");
    let err = refused(
        &mut t,
        &[
            "--price",
            "2µTICK/s",
            "--data-dir",
            &dir,
            "--chain-rpc",
            &rpc,
        ],
    )
    .await;
    assert!(
        err.contains("a paid stream needs a payout account"),
        "{err}"
    );
    assert!(
        t.api(0).unwrap().streams().await.unwrap().is_empty(),
        "nothing was started"
    );

    ok(&vilokanam(&creator_dir, &rpc, &["account", "import", "//Alice"]).await);
    let mut p = publish(
        &mut t,
        &[
            "--price",
            "2µTICK/s",
            "--data-dir",
            &dir,
            "--chain-rpc",
            &rpc,
        ],
    );
    let viewer = t.api(1).unwrap();
    let creator_key = t.node(0).unwrap().creator_key.clone();
    let stream = format!("{creator_key}-paid");
    vilokanam_testnet::wait_until(
        "the viewer hears the offer",
        std::time::Duration::from_secs(30),
        || async {
            Ok(viewer
                .streams()
                .await?
                .iter()
                .any(|s| s.id == stream && s.offer.is_some()))
        },
    )
    .await
    .unwrap();
    let offer = viewer.stream(&stream).await.unwrap().offer.unwrap();
    assert_eq!(offer.price_per_sec, "2000000");
    assert_eq!(
        offer.payee,
        "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
    );
    assert_eq!(offer.genesis, format!("0x{}", hex::encode(genesis)));
    // The viewer's CLI (API commands take no chain flags).
    let api1 = t.node(1).unwrap().api_addr.clone();
    let cli = async |args: &[&str]| {
        tokio::process::Command::new(bin)
            .args(args)
            .args(["--api", &api1])
            .output()
            .await
            .unwrap()
    };
    let listing = ok(&cli(&["streams"]).await);
    assert!(
        listing.contains("2 µTICK/s to 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"),
        "{listing}"
    );
    // `watch --max-price` below the price: refused with the price.
    let err = failed(&cli(&["watch", &stream, "--max-price", "1µTICK/s"]).await);
    assert!(
        err.contains("costs 2 µTICK/s, above the limit of 1 µTICK/s"),
        "{err}"
    );
    let out = cli(&["watch", &stream, "--max-price", "2µTICK/s"]).await;
    assert!(ok(&out).contains("/live.m3u8"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("this stream is paid"));
    let _ = p.start_kill();
    let _ = p.wait().await;
    t.shutdown().await.unwrap();
}

/// What a test player got of a stream.
#[derive(Debug, Default)]
struct Played {
    /// Segments served, with their media seconds.
    segments: std::collections::BTreeMap<u64, f64>,
    /// The first refusal, when the picture stopped.
    refused: Option<String>,
    /// Segments served after the first refusal (a picture that came back).
    after_refusal: usize,
    /// Segments ffprobe decoded.
    decoded: usize,
    /// The last playlist error, if no playlist came.
    playlist_error: Option<String>,
}

impl Played {
    fn media_secs(&self) -> f64 {
        self.segments.values().sum()
    }
}

/// Plays `stream` at `viewer` for `secs` as a player would: the playlist
/// every 500 ms, then each segment in it not fetched yet, in order. A
/// refused segment is the end of the picture: its reason is kept, and the
/// player keeps trying the next ones (none may be served after it). The
/// first three segments served go through ffprobe.
async fn play(viewer: &vilokanam_api::ApiClient, stream: &str, secs: u64) -> Played {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Played::default();
    let mut tried = std::collections::BTreeSet::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        match viewer.playlist(stream).await {
            Err(e) => p.playlist_error = Some(e.to_string()),
            Ok(list) => {
                for (seq, duration) in vilokanam_testnet::segment_durations(&list) {
                    if !tried.insert(seq) {
                        continue;
                    }
                    match viewer.segment_file(stream, seq).await {
                        Ok(Some(seg)) => {
                            if p.refused.is_some() {
                                p.after_refusal += 1;
                            }
                            p.segments.insert(seq, duration);
                            if p.decoded < 3 && which_ffprobe() {
                                let f = dir.path().join(format!("{seq}.ts"));
                                std::fs::write(&f, &seg).unwrap();
                                assert!(ffprobe_decodes(&f), "segment {seq} decodes");
                                p.decoded += 1;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            p.refused.get_or_insert(e.to_string());
                        }
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    p
}

/// Pay per second, end to end, with real processes and the dev chain: a
/// creator (Bob's account) publishes a stream at 1 mTICK/s with 1 s
/// epochs; viewer A (Alice, two hops away behind a relay) watches with a
/// budget of 0.1 TICK, viewer B (Charlie, one hop) with 6 s of budget and
/// no top-up, so it stops paying mid-stream. Each opens one channel on
/// chain; vouchers pay the media time played; keys are bought per epoch
/// from the creator's node. Both HLS outputs decode; the relay holds only
/// ciphertext; B's picture ends when its budget does, with the reason,
/// within one epoch. Afterwards the creator holds exactly what each
/// viewer spent, which is the seconds each watched × the price (within
/// one second), and at shutdown claims and closes both channels: on
/// chain Bob received exactly that and each viewer got exactly the rest
/// of its deposit back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_viewers_pay_for_the_seconds_they_watched_and_the_chain_settles_exactly() {
    use vilokanam_chain::account::{account_id, keypair};
    const PRICE: u128 = 1_000_000_000; // 1 mTICK/s in planck
    const BUDGET_A: u128 = 100 * PRICE;
    const BUDGET_B: u128 = 6 * PRICE;
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let client = vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.clone()))
        .await
        .expect("connect");
    let (alice, bob, charlie) = (
        account_id(&keypair("//Alice").unwrap()),
        account_id(&keypair("//Bob").unwrap()),
        account_id(&keypair("//Charlie").unwrap()),
    );
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    // Accounts before the daemons start (they read them at start).
    for (i, uri) in [(0, "//Bob"), (2, "//Alice"), (3, "//Charlie")] {
        let d = t.root().join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        ok(&vilokanam(&d, &rpc, &["account", "import", uri]).await);
    }
    let with_chain = vec!["--chain-rpc".to_string(), rpc.clone()];
    // 0 creator, 1 relay (behind 0), 2 viewer A (behind 1), 3 viewer B
    // (behind 0).
    for (relay, bootstrap) in [
        (false, vec![]),
        (true, vec![0]),
        (false, vec![1]),
        (false, vec![0]),
    ] {
        t.spawn(vilokanam_testnet::NodeOptions {
            relay,
            bootstrap,
            extra: with_chain.clone(),
            ..Default::default()
        })
        .await
        .expect("daemon");
    }
    t.wait_connected().await.expect("connected");
    let mut publisher = t.publish_paid(0, "1mTICK/s", 1, &rpc).expect("publish");
    let stream = t.node(0).unwrap().stream("paid");
    let (a, b) = (t.api(2).unwrap(), t.api(3).unwrap());
    for v in [&a, &b] {
        vilokanam_testnet::wait_until(
            "the viewer hears the offer",
            std::time::Duration::from_secs(30),
            || async {
                Ok(v.stream(&stream)
                    .await
                    .map(|s| s.offer.is_some())
                    .unwrap_or(false))
            },
        )
        .await
        .unwrap();
    }
    let before = [
        client.balance(&alice).await.unwrap(),
        client.balance(&bob).await.unwrap(),
        client.balance(&charlie).await.unwrap(),
    ];
    // Watch with a budget: one channel on chain per viewer.
    let (api_a, api_b) = (
        t.node(2).unwrap().api_addr.clone(),
        t.node(3).unwrap().api_addr.clone(),
    );
    for (api, budget) in [(&api_a, "0.1TICK"), (&api_b, "0.006TICK")] {
        let out = tokio::process::Command::new(bin)
            .args(["watch", &stream, "--budget", budget, "--api", api])
            .output()
            .await
            .unwrap();
        assert!(ok(&out).contains("/live.m3u8"));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!("paying 1 mTICK/s to {BOB} from a budget of")),
            "{said}"
        );
    }
    let channels = client.channels().await.unwrap();
    assert_eq!(channels.len(), 2, "one channel per viewer session");
    let channel_of = |who: &vilokanam_chain::AccountId| {
        channels
            .iter()
            .find(|c| &c.payer == who)
            .cloned()
            .expect("the viewer's channel")
    };
    let (chan_a, chan_b) = (channel_of(&alice), channel_of(&charlie));
    assert_eq!((chan_a.deposit, chan_b.deposit), (BUDGET_A, BUDGET_B));
    // Both play at once: A for 14 s, B for 16 s (past its 6 s of budget).
    let (played_a, played_b) = tokio::join!(play(&a, &stream, 14), play(&b, &stream, 16));
    if played_a.segments.is_empty() || played_b.segments.is_empty() {
        let _ = publisher.start_kill();
        let out = publisher.wait_with_output().await.unwrap();
        panic!(
            "nothing played: A {played_a:?}, B {played_b:?}; publisher: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (secs_a, secs_b) = (played_a.media_secs(), played_b.media_secs());
    eprintln!("A watched {secs_a:.2} s ({played_a:?}), B {secs_b:.2} s ({played_b:?})");
    assert!(played_a.segments.len() >= 8, "{played_a:?}");
    assert!(played_a.refused.is_none(), "{played_a:?}");
    // B stopped paying when its budget ran out: the picture ended with
    // the reason, within one epoch (1 s) of the 6 s it paid for, and did
    // not come back.
    let reason = played_b.refused.clone().expect("B's picture ends");
    assert!(reason.contains("budget exhausted"), "{reason}");
    assert_eq!(played_b.after_refusal, 0, "{played_b:?}");
    assert!(secs_b <= 6.0 + 1.0, "B watched {secs_b} s on 6 s of budget");
    // The relay holds the same chunks, as ciphertext only.
    let relay = t.api(1).unwrap();
    let any = *played_a.segments.keys().next().unwrap();
    assert!(
        relay.segment_file(&stream, any).await.is_err(),
        "the relay cannot serve it as video"
    );
    // What each viewer paid: the seconds it watched × the price, within
    // one second (a partial first epoch is paid in full).
    let mut spent = Vec::new();
    for (v, secs, budget) in [(&a, secs_a, BUDGET_A), (&b, secs_b, BUDGET_B)] {
        let s = v.spending().await.unwrap();
        assert_eq!(s.len(), 1, "{s:?}");
        let x: u128 = s[0].spent.parse().unwrap();
        let watched = (secs * PRICE as f64) as u128;
        assert!(
            x + PRICE >= watched && x <= watched + PRICE,
            "spent {x} for {secs} s watched at {PRICE}/s: {s:?}"
        );
        assert!(x <= budget);
        assert!(
            (s[0].seconds_paid as f64 - secs).abs() <= 1.0,
            "{s:?} for {secs} s"
        );
        assert_eq!(
            v.metric("vilokanam_node_spent_planck", &[]).await.unwrap(),
            x as f64
        );
        spent.push(x);
    }
    // Paid-viewers-only chat: A, who pays, chats (its messages carry the
    // pass the creator's key server signed with its keys); the relay, which
    // pays nothing, is refused with the reason.
    let creator_api = t.api(0).unwrap();
    creator_api
        .chat_moderate(&stream, &vilokanam_api::ChatModerate::PaidOnly { on: true })
        .await
        .unwrap();
    let relay_api = t.api(1).unwrap();
    for v in [&relay_api, &a] {
        vilokanam_testnet::wait_until(
            "paid-only mode applied",
            std::time::Duration::from_secs(20),
            || async {
                Ok(v.chat(&stream).await?.actions.iter().any(|x| {
                    matches!(x.action, vilokanam_api::ChatModerate::PaidOnly { on: true })
                }))
            },
        )
        .await
        .unwrap();
    }
    let e = relay_api
        .chat_send(&stream, "free rider")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("paid-viewers-only"), "{e}");
    a.chat_send(&stream, "a paying viewer says hi")
        .await
        .unwrap();
    vilokanam_testnet::wait_until(
        "the payer's message at the creator",
        std::time::Duration::from_secs(20),
        || async {
            Ok(creator_api
                .chat(&stream)
                .await?
                .messages
                .iter()
                .any(|m| m.text == "a paying viewer says hi"))
        },
    )
    .await
    .unwrap();
    for api in [&api_a, &api_b] {
        ok(&tokio::process::Command::new(bin)
            .args(["unwatch", &stream, "--api", api])
            .output()
            .await
            .unwrap());
    }
    let creator = t.api(0).unwrap();
    assert!(
        creator
            .metric("vilokanam_node_keys_granted", &[])
            .await
            .unwrap()
            >= 8.0
    );
    vilokanam_testnet::wait_until(
        "the creator holds each viewer's last voucher",
        std::time::Duration::from_secs(10),
        || async {
            let e = creator.earnings().await?;
            let held = |ch: u64| {
                e.iter()
                    .find(|r| r.channel == ch)
                    .map(|r| r.accrued.clone())
            };
            Ok(held(chan_a.id) == Some(spent[0].to_string())
                && held(chan_b.id) == Some(spent[1].to_string()))
        },
    )
    .await
    .unwrap();
    // Ctrl-C on the creator: it claims and closes both channels.
    let mut events = Box::pin(client.watch_events().await.unwrap());
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    t.stop(0).await.expect("creator stops");
    let mut closed = std::collections::BTreeMap::new();
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        use futures::StreamExt;
        while closed.len() < 2 {
            for ev in events.next().await.expect("events").expect("batch").1 {
                if let vilokanam_chain::TickEvent::Closed {
                    channel: c,
                    closed: x,
                } = ev
                {
                    closed.insert(c, x);
                }
            }
        }
    })
    .await
    .expect("both channels claimed and closed within 60 s");
    // On chain: exactly what each viewer signed was paid, the rest of
    // each deposit refunded, nothing left on hold.
    for (chan, x) in [(&chan_a, spent[0]), (&chan_b, spent[1])] {
        let c = &closed[&chan.id];
        assert_eq!((c.paid, c.refunded), (x, chan.deposit - x), "{c:?}");
        assert!(client.channel(chan.id).await.unwrap().is_none());
    }
    let after = [
        client.balance(&alice).await.unwrap(),
        client.balance(&bob).await.unwrap(),
        client.balance(&charlie).await.unwrap(),
    ];
    for (i, x) in [(0, spent[0]), (2, spent[1])] {
        assert_eq!(after[i].reserved, before[i].reserved, "deposit released");
        let loss = (before[i].free + before[i].reserved) - (after[i].free + after[i].reserved);
        // What it watched, plus the one fee of opening (under 0.01 TICK).
        assert!(
            loss > x && loss - x < 10_000_000_000,
            "viewer {i}: -{loss} for {x}"
        );
    }
    // Bob: what both signed, less his claim and close fees.
    let gain = after[1].free - before[1].free;
    let total = spent[0] + spent[1];
    assert!(
        gain < total && total - gain < 20_000_000_000,
        "Bob +{gain} for {total}"
    );
    eprintln!(
        "settled: A paid {} for {secs_a:.2} s, B {} for {secs_b:.2} s; Bob +{gain} after fees",
        spent[0], spent[1]
    );
    t.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}

fn which_ffprobe() -> bool {
    vilokanam_chain::test_utils::skip_or_require(
        "ffprobe",
        std::process::Command::new("ffprobe")
            .arg("-version")
            .output()
            .map(|_| ())
            .map_err(|e| format!("ffprobe not on PATH: {e}")),
    )
    .is_some()
}

fn ffprobe_decodes(p: &Path) -> bool {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(p)
        .output()
        .expect("ffprobe");
    out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| !l.trim().is_empty())
}

/// Crash safety of earnings: the creator's node is SIGKILLed after it
/// accepted vouchers and before it claimed (nothing reached the chain).
/// Restarted from its data directory, it still holds the best voucher,
/// and `vilokanam earnings --claim` claims exactly it on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_killed_before_claiming_still_holds_and_claims_its_vouchers() {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let client = vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.clone()))
        .await
        .expect("connect");
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    for (i, uri) in [(0, "//Charlie"), (1, "//Dave")] {
        let d = t.root().join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        ok(&vilokanam(&d, &rpc, &["account", "import", uri]).await);
    }
    let opts = |bootstrap: Vec<usize>| vilokanam_testnet::NodeOptions {
        bootstrap,
        extra: vec!["--chain-rpc".to_string(), rpc.clone()],
        ..Default::default()
    };
    t.spawn(opts(vec![])).await.expect("creator");
    t.spawn(opts(vec![0])).await.expect("viewer");
    t.wait_connected().await.expect("connected");
    let mut publisher = t.publish_paid(0, "1µTICK/s", 6, &rpc).expect("publish");
    let stream = t.node(0).unwrap().stream("paid");
    let viewer = t.api(1).unwrap();
    vilokanam_testnet::wait_until("the offer", std::time::Duration::from_secs(30), || async {
        Ok(viewer
            .stream(&stream)
            .await
            .map(|s| s.offer.is_some())
            .unwrap_or(false))
    })
    .await
    .unwrap();
    // A budget of 5 s, topped up by 5 s at a time up to 20 s.
    let req = vilokanam_api::WatchRequest {
        max_price_per_sec: None,
        budget: Some("5000000".into()),
        top_up_to: Some("20000000".into()),
    };
    viewer.watch_with(&stream, &req).await.unwrap();
    // Play a few segments, then stop: the last voucher goes to the creator.
    // Like a player: poll the playlist, fetch each new segment.
    let mut played = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let spent_now = async || -> u128 {
        viewer
            .spending()
            .await
            .ok()
            .and_then(|s| s.first().and_then(|s| s.spent.parse().ok()))
            .unwrap_or(0)
    };
    // Play past the first budget (5 s), so that the node tops up.
    while played.len() < 5 || spent_now().await <= 6_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "played past the first budget within 40 s"
        );
        if let Ok(list) = viewer.playlist(&stream).await {
            for seq in vilokanam_testnet::segment_seqs(&list) {
                if played.insert(seq) {
                    viewer.segment_file(&stream, seq).await.unwrap();
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let spending = viewer.spending().await.unwrap();
    let spent: u128 = spending[0].spent.parse().unwrap();
    // Past the first budget: the node topped the channel up, on chain.
    assert!(spent > 5_000_000, "{spending:?}");
    assert_eq!(spending[0].budget, "10000000", "{spending:?}");
    assert_eq!(
        client.channels().await.unwrap()[0].deposit,
        10_000_000,
        "one top-up"
    );
    viewer.unwatch(&stream).await.unwrap();
    let creator = t.api(0).unwrap();
    vilokanam_testnet::wait_until(
        "the creator holds it",
        std::time::Duration::from_secs(10),
        || async {
            Ok(creator.earnings().await?.first().map(|e| e.accrued.clone())
                == Some(spent.to_string()))
        },
    )
    .await
    .unwrap();
    let channel = client.channels().await.unwrap()[0].clone();
    // SIGKILL: no claim at shutdown.
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    t.kill(0).await.unwrap();
    assert_eq!(
        client.channel(channel.id).await.unwrap().unwrap().paid,
        0,
        "nothing claimed"
    );
    t.restart(0, opts(vec![])).await.expect("restart");
    let api0 = t.node(0).unwrap().api_addr.clone();
    let out = ok(&tokio::process::Command::new(bin)
        .args(["earnings", "--claim", "--api", &api0])
        .output()
        .await
        .unwrap());
    assert!(
        out.contains(&format!(
            "claimed {} now",
            vilokanam_chain::format_amount(spent)
        )),
        "{out}"
    );
    assert!(out.contains("pending 0 TICK"), "{out}");
    assert_eq!(
        client.channel(channel.id).await.unwrap().unwrap().paid,
        spent
    );
    t.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}

/// Waits for the `Closed` event of `channel` (from `events`).
async fn closed_event(
    events: &mut (impl futures::Stream<
        Item = Result<(u64, Vec<vilokanam_chain::TickEvent>), vilokanam_chain::SettlementError>,
    > + Unpin),
    channel: u64,
    what: &str,
) -> vilokanam_chain::Closed {
    use futures::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            for ev in events.next().await.expect("events").expect("batch").1 {
                if let vilokanam_chain::TickEvent::Closed { channel: c, closed } = ev {
                    if c == channel {
                        return closed;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 60 s"))
}

/// Plays `stream` at `viewer` until it paid for `min_secs` of it.
async fn play_for(viewer: &vilokanam_api::ApiClient, stream: &str, min_secs: u64) -> u128 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut fetched = std::collections::BTreeSet::new();
    loop {
        let paid = viewer
            .spending()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.stream == stream && s.state == vilokanam_api::SpendingState::Watching)
            .map(|s| (s.seconds_paid, s.spent.parse::<u128>().unwrap()));
        if let Some((secs, spent)) = paid {
            if secs >= min_secs {
                return spent;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "paid {paid:?} of {min_secs} s within 60 s"
        );
        if let Ok(list) = viewer.playlist(stream).await {
            for seq in vilokanam_testnet::segment_seqs(&list) {
                if fetched.insert(seq) {
                    viewer.segment_file(stream, seq).await.unwrap();
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The viewer gets the rest of its deposit back when it is done, with no
/// transaction of its own when the creator is up, and by itself when the
/// creator never settles:
/// 1. Alice watches, stops; the creator's node, no longer asked for keys
///    (`close_idle_secs` = 3), claims what she signed and closes her
///    channel while it keeps running: she gets exactly the rest back, and
///    her `spending` says the creator closed it.
/// 2. Charlie watches; the creator's node is SIGKILLed (it never
///    closes: with a short `channel_grace_blocks` (20) the channel is near
///    expiry from the start, so the creator may have claimed what it held,
///    but no more); Charlie stops watching and his node is stopped. After
///    the channel's expiry his node, restarted, closes the channel itself
///    from the record on disk and gets exactly the rest back (what the
///    creator did not claim in time is forfeit); `vilokanam spending`
///    says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_gets_the_rest_back_when_done_and_by_itself_after_expiry() {
    use vilokanam_chain::account::{account_id, keypair};
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let client = vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.clone()))
        .await
        .expect("connect");
    let (alice, charlie) = (
        account_id(&keypair("//Alice").unwrap()),
        account_id(&keypair("//Charlie").unwrap()),
    );
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    let configs = [
        "claim_check_secs = 1\nclose_idle_secs = 3\n",
        "claim_check_secs = 1\nchannel_grace_blocks = 20\n",
        "claim_check_secs = 1\nchannel_grace_blocks = 20\n",
    ];
    for (i, uri) in [(0, "//Bob"), (1, "//Alice"), (2, "//Charlie")] {
        let d = t.root().join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.toml"), configs[i]).unwrap();
        ok(&vilokanam(&d, &rpc, &["account", "import", uri]).await);
    }
    let opts = |bootstrap: Vec<usize>| vilokanam_testnet::NodeOptions {
        bootstrap,
        extra: vec!["--chain-rpc".to_string(), rpc.clone()],
        ..Default::default()
    };
    t.spawn(opts(vec![])).await.expect("creator");
    t.spawn(opts(vec![0])).await.expect("viewer Alice");
    t.spawn(opts(vec![0])).await.expect("viewer Charlie");
    t.wait_connected().await.expect("connected");
    let mut publisher = t.publish_paid(0, "1mTICK/s", 1, &rpc).expect("publish");
    let stream = t.node(0).unwrap().stream("paid");
    let (a, c) = (t.api(1).unwrap(), t.api(2).unwrap());
    for v in [&a, &c] {
        vilokanam_testnet::wait_until("the offer", std::time::Duration::from_secs(30), || async {
            Ok(v.stream(&stream)
                .await
                .map(|s| s.offer.is_some())
                .unwrap_or(false))
        })
        .await
        .unwrap();
    }
    let budget = vilokanam_api::WatchRequest {
        max_price_per_sec: None,
        budget: Some("50000000000".into()), // 0.05 TICK: 50 s
        top_up_to: None,
    };
    let mut events = Box::pin(client.watch_events().await.unwrap());

    // 1. Alice is done: the creator closes her channel while it runs.
    let alice_before = client.balance(&alice).await.unwrap();
    a.watch_with(&stream, &budget).await.unwrap();
    let chan_a = client.channels().await.unwrap()[0].clone();
    assert_eq!(chan_a.payer, alice);
    play_for(&a, &stream, 6).await;
    a.unwatch(&stream).await.unwrap();
    let spent_a: u128 = a.spending().await.unwrap()[0].spent.parse().unwrap();
    let closed = closed_event(&mut events, chan_a.id, "the creator closes Alice's channel").await;
    assert_eq!(
        (closed.paid, closed.refunded),
        (spent_a, chan_a.deposit - spent_a)
    );
    let alice_after = client.balance(&alice).await.unwrap();
    assert_eq!(alice_after.reserved, alice_before.reserved, "nothing held");
    vilokanam_testnet::wait_until(
        "Alice's node sees the channel closed",
        std::time::Duration::from_secs(30),
        || async { Ok(a.spending().await?[0].state == vilokanam_api::SpendingState::Closed) },
    )
    .await
    .unwrap();

    // 2. The creator never settles Charlie's channel: he takes it back.
    let charlie_before = client.balance(&charlie).await.unwrap();
    c.watch_with(&stream, &budget).await.unwrap();
    let chan_c = client
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|ch| ch.payer == charlie)
        .expect("Charlie's channel");
    let spent_c = play_for(&c, &stream, 3).await;
    assert!(spent_c > 0);
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    t.kill(0).await.unwrap();
    c.unwatch(&stream).await.unwrap();
    let s = c.spending().await.unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        (s[0].state, s[0].expires_at),
        (vilokanam_api::SpendingState::Ended, chan_c.expires_at),
        "{s:?}"
    );
    // Before expiry nothing happens; his node goes down with the record
    // on disk.
    t.stop(2).await.unwrap();
    let now = client.finalized_number().await.unwrap();
    assert!(now < u64::from(chan_c.expires_at));
    vilokanam_chain::test_utils::new_blocks(&client, chan_c.expires_at - now as u32)
        .await
        .unwrap();
    t.restart(2, opts(vec![]))
        .await
        .expect("Charlie's node again");
    let closed = closed_event(&mut events, chan_c.id, "Charlie's node reclaims").await;
    // What the creator claimed before it died (a claim it sent just
    // before the SIGKILL may land after it): never more than was signed.
    let claimed_c = closed.paid;
    assert!(claimed_c <= spent_c, "{closed:?} for {spent_c} signed");
    assert_eq!(
        closed.refunded,
        chan_c.deposit - claimed_c,
        "exactly the rest of the deposit comes back"
    );
    let charlie_after = client.balance(&charlie).await.unwrap();
    assert_eq!(charlie_after.reserved, charlie_before.reserved);
    let loss = (charlie_before.free + charlie_before.reserved)
        - (charlie_after.free + charlie_after.reserved);
    assert!(
        loss >= claimed_c && loss - claimed_c < 10_000_000_000,
        "what the creator claimed, and the fees of open and close: -{loss}"
    );
    let api2 = t.node(2).unwrap().api_addr.clone();
    vilokanam_testnet::wait_until(
        "Charlie's node records the reclaim",
        std::time::Duration::from_secs(30),
        || async {
            Ok(t.api(2)?.spending().await?[0].state == vilokanam_api::SpendingState::Reclaimed)
        },
    )
    .await
    .unwrap();
    let out = ok(&tokio::process::Command::new(bin)
        .args(["spending", "--api", &api2])
        .output()
        .await
        .unwrap());
    assert!(
        out.contains(&format!(
            "settled: reclaimed {} after expiry",
            vilokanam_chain::format_amount(chan_c.deposit - claimed_c)
        )),
        "{out}"
    );
    t.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}

/// A paid VOD with real processes: a creator daemon publishes a paid
/// stream (`vilokanam publish`, the fixture in real time) and ends it; its
/// VOD is paid. A second daemon that never watched the stream plays it
/// through the CLI: `vod play` without a budget fails with the node's
/// reason, `vod play --budget` gives the URL whose segments play in clear
/// (each decrypted after paying for it; ffprobe decodes it), `vod stop` sends
/// the last voucher, which the creator then holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_vod_plays_through_the_cli_for_its_payer() {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    for (i, uri) in [(0, "//Bob"), (1, "//Dave")] {
        let d = t.root().join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        ok(&vilokanam(&d, &rpc, &["account", "import", uri]).await);
    }
    let opts = |bootstrap: Vec<usize>| vilokanam_testnet::NodeOptions {
        bootstrap,
        extra: vec!["--chain-rpc".to_string(), rpc.clone()],
        ..Default::default()
    };
    t.spawn(opts(vec![])).await.expect("creator");
    let creator = t.api(0).unwrap();
    let mut publisher = t.publish_paid(0, "1µTICK/s", 6, &rpc).expect("publish");
    vilokanam_testnet::wait_until(
        "4 chunks recorded",
        std::time::Duration::from_secs(60),
        || {
            let api = creator.clone();
            async move {
                Ok(api
                    .metric("vilokanam_node_chunks_recorded_total", &[])
                    .await?
                    >= 4.0)
            }
        },
    )
    .await
    .unwrap();
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    creator.end("paid").await.unwrap();
    let vod = creator.vods().await.unwrap().remove(0);
    assert_eq!(vod.price_per_sec.as_deref(), Some("1000000"), "{vod:?}");
    // The viewer starts after the stream ended.
    t.spawn(opts(vec![0])).await.expect("viewer");
    t.wait_connected().await.expect("connected");
    let api = t.node(1).unwrap().api_addr.clone();
    let cli = |args: Vec<&str>| {
        let api = api.clone();
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        async move {
            tokio::process::Command::new(bin)
                .args(&args)
                .args(["--api", &api])
                .output()
                .await
                .expect("vilokanam runs")
        }
    };
    let said = failed(&cli(vec!["vod", "play", &vod.root]).await);
    assert!(said.contains("is paid (1 µTICK/s)"), "{said}");
    let out = cli(vec!["vod", "play", &vod.root, "--budget", "0.01TICK"]).await;
    let url = ok(&out).trim().to_owned();
    assert!(url.ends_with("/index.m3u8"), "{url}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("paying from a budget of"), "{stderr}");
    // Played as a player does: every segment, MPEG-TS in clear.
    let viewer = t.api(1).unwrap();
    for i in 0..vod.segments {
        let seg = viewer
            .vod_file(&vod.root, &format!("000/{i:06}.ts"))
            .await
            .unwrap();
        assert!(
            seg.len() % 188 == 0 && seg.chunks(188).all(|p| p[0] == 0x47),
            "segment {i} is not MPEG-TS in clear"
        );
    }
    if which_ffprobe() {
        let out = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration"])
            .args(["-of", "csv=p=0", &url])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!((d - vod.duration_ms as f64 / 1000.0).abs() < 1.0, "{d} s");
    }
    let spending = viewer.spending().await.unwrap();
    let spent: u128 = spending[0].spent.parse().unwrap();
    // Each second once; but the key server counts whole epochs (6 s): a
    // VOD whose seconds straddle an epoch boundary has its first epoch paid
    // in full when the second key is bought (the rule of live, see
    // docs/PAYMENTS.md), so a 4 s VOD costs 4 s or one whole epoch,
    // depending on where the recording fell on the epoch clock.
    let media = (1_000_000 * u128::from(vod.duration_ms)).div_ceil(1_000);
    let epoch = 6 * 1_000_000;
    assert!(
        spent.abs_diff(media) <= 1_000_000 || (vod.duration_ms < 6_000 && spent == epoch),
        "{spent} spent for {} ms",
        vod.duration_ms
    );
    ok(&cli(vec!["vod", "stop", &vod.root]).await);
    vilokanam_testnet::wait_until(
        "the creator holds the last voucher",
        std::time::Duration::from_secs(20),
        || async {
            Ok(creator.earnings().await?.first().map(|e| e.accrued.clone())
                == Some(spent.to_string()))
        },
    )
    .await
    .unwrap();
    t.shutdown().await.unwrap();
    chain.stop().await.unwrap();
}
