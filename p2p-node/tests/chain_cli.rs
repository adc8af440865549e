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

/// Pay per second, end to end, with real processes and the dev chain: a
/// creator (Bob's account) publishes a paid stream; a viewer two hops
/// away (Alice's account, behind a relay) watches with a budget: one
/// channel on chain, a voucher per second played, keys bought per epoch
/// from the creator's node. Its HLS decodes; the relay holds only
/// ciphertext. Afterwards the creator holds exactly what the viewer
/// spent, claims it at shutdown and closes the channel, and on chain
/// Bob received exactly that and Alice got the rest of her deposit back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_pays_per_second_and_the_creator_is_paid_on_chain() {
    use vilokanam_chain::account::{account_id, keypair};
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let rpc = chain.ws_url.clone();
    let client = vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.clone()))
        .await
        .expect("connect");
    let (alice, bob) = (
        account_id(&keypair("//Alice").unwrap()),
        account_id(&keypair("//Bob").unwrap()),
    );
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut t = vilokanam_testnet::Testnet::new(bin, None).expect("testnet");
    // Accounts before the daemons start (they read them at start).
    for (i, uri) in [(0, "//Bob"), (2, "//Alice")] {
        let d = t.root().join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        ok(&vilokanam(&d, &rpc, &["account", "import", uri]).await);
    }
    let with_chain = vec!["--chain-rpc".to_string(), rpc.clone()];
    for (i, relay) in [(0usize, false), (1, true), (2, false)] {
        t.spawn(vilokanam_testnet::NodeOptions {
            relay,
            bootstrap: if i == 0 { vec![] } else { vec![i - 1] },
            extra: with_chain.clone(),
            ..Default::default()
        })
        .await
        .expect("daemon");
    }
    t.wait_connected().await.expect("connected");
    let clip = t.root().join("sample.ts");
    std::fs::write(&clip, vilokanam_testnet::FIXTURE).unwrap();
    let clip = clip.to_string_lossy().into_owned();
    let creator_dir = t.node(0).unwrap().data_dir.to_string_lossy().into_owned();
    let mut publisher = t
        .publish(
            0,
            &[
                "--name",
                "paid",
                "--input",
                &clip,
                "--realtime",
                "--loop",
                "--price",
                "200µTICK/s",
                "--epoch-secs",
                "2",
                "--data-dir",
                &creator_dir,
                "--chain-rpc",
                &rpc,
            ],
            std::process::Stdio::null(),
        )
        .expect("publish");
    let stream = t.node(0).unwrap().stream("paid");
    let viewer = t.api(2).unwrap();
    vilokanam_testnet::wait_until(
        "the viewer hears the offer",
        std::time::Duration::from_secs(30),
        || async {
            Ok(viewer
                .stream(&stream)
                .await
                .map(|s| s.offer.is_some())
                .unwrap_or(false))
        },
    )
    .await
    .unwrap();
    let alice_before = client.balance(&alice).await.unwrap();
    let bob_before = client.balance(&bob).await.unwrap();
    // Watch with a budget: one channel on chain.
    let api2 = t.node(2).unwrap().api_addr.clone();
    let out = tokio::process::Command::new(bin)
        .args(["watch", &stream, "--budget", "0.1TICK", "--api", &api2])
        .output()
        .await
        .unwrap();
    assert!(ok(&out).contains("/live.m3u8"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("paying 200 µTICK/s to 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty from a budget of 0.1 TICK"),
        "{said}"
    );
    let channels = client.channels().await.unwrap();
    assert_eq!(channels.len(), 1, "one channel for the session");
    let channel = channels[0].clone();
    assert_eq!((channel.payer, channel.deposit), (alice, 100_000_000_000));
    // Play like a player for a while: every new segment of the playlist.
    let dir = tempfile::tempdir().unwrap();
    let mut fetched = std::collections::BTreeSet::new();
    let mut decoded = 0;
    let started = std::time::Instant::now();
    let mut last_error = None;
    while started.elapsed() < std::time::Duration::from_secs(12) {
        let list = viewer.playlist(&stream).await;
        if let Err(e) = &list {
            last_error = Some(e.to_string());
        }
        if let Ok(list) = list {
            for seq in vilokanam_testnet::segment_seqs(&list) {
                if fetched.insert(seq) {
                    let seg = viewer
                        .segment_file(&stream, seq)
                        .await
                        .unwrap()
                        .expect("held");
                    if decoded < 3 && which_ffprobe() {
                        let p = dir.path().join(format!("{seq}.ts"));
                        std::fs::write(&p, &seg).unwrap();
                        assert!(
                            ffprobe_decodes(&p),
                            "segment {seq} of the paying viewer decodes"
                        );
                        decoded += 1;
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if fetched.is_empty() {
        let _ = publisher.start_kill();
        let out = publisher.wait_with_output().await.unwrap();
        panic!(
            "nothing played (last playlist error: {last_error:?}); publisher: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(fetched.len() >= 8, "played {} segments", fetched.len());
    // The relay holds the same chunks, as ciphertext only.
    let relay = t.api(1).unwrap();
    let any = *fetched.iter().next().unwrap();
    assert!(
        relay.segment_file(&stream, any).await.is_err(),
        "the relay cannot serve it as video"
    );
    // What the viewer paid, and what the creator holds.
    let spending = viewer.spending().await.unwrap();
    assert_eq!(spending.len(), 1);
    let spent: u128 = spending[0].spent.parse().unwrap();
    assert!(spending[0].seconds_paid >= 8, "{spending:?}");
    assert!(
        spent >= 200_000_000 * u128::from(spending[0].seconds_paid),
        "{spending:?}"
    );
    ok(&tokio::process::Command::new(bin)
        .args(["unwatch", &stream, "--api", &api2])
        .output()
        .await
        .unwrap());
    // The same on /metrics, on both sides.
    assert_eq!(
        viewer
            .metric("vilokanam_node_spent_planck", &[])
            .await
            .unwrap(),
        spent as f64
    );
    let creator = t.api(0).unwrap();
    assert!(
        creator
            .metric("vilokanam_node_keys_granted", &[])
            .await
            .unwrap()
            >= 2.0
    );
    vilokanam_testnet::wait_until(
        "the creator holds the last voucher",
        std::time::Duration::from_secs(10),
        || async {
            let e = creator.earnings().await?;
            Ok(e.len() == 1 && e[0].accrued == spent.to_string())
        },
    )
    .await
    .unwrap();
    // Ctrl-C on the creator: it claims and closes the channel.
    let mut events = Box::pin(client.watch_events().await.unwrap());
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    t.stop(0).await.expect("creator stops");
    let mut claimed = None;
    let mut closed = None;
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        use futures::StreamExt;
        while closed.is_none() {
            for ev in events.next().await.expect("events").expect("batch").1 {
                match ev {
                    vilokanam_chain::TickEvent::Claimed {
                        channel: c,
                        claimed: x,
                    } if c == channel.id => claimed = Some(x),
                    vilokanam_chain::TickEvent::Closed {
                        channel: c,
                        closed: x,
                    } if c == channel.id => closed = Some(x),
                    _ => {}
                }
            }
        }
    })
    .await
    .expect("claim and close within 30 s");
    let closed = closed.expect("closed");
    // On chain, exactly what the viewer signed went to its only payee,
    // Bob (the claim's own event may fall between two blocks the event
    // stream reports; `paid` at close is the sum of all claims), and the
    // rest of the deposit back to Alice.
    if let Some(c) = claimed {
        assert_eq!((c.payee, c.amount), (bob, spent));
    }
    assert_eq!(closed.paid, spent);
    assert_eq!(closed.refunded, channel.deposit - spent);
    assert!(client.channel(channel.id).await.unwrap().is_none());
    let alice_after = client.balance(&alice).await.unwrap();
    assert_eq!(
        alice_after.reserved, alice_before.reserved,
        "the deposit is released"
    );
    let alice_loss =
        (alice_before.free + alice_before.reserved) - (alice_after.free + alice_after.reserved);
    // What she watched, plus the one fee of opening (under 0.01 TICK).
    assert!(
        alice_loss > spent && alice_loss - spent < 10_000_000_000,
        "Alice -{alice_loss} for {spent}"
    );
    let bob_after = client.balance(&bob).await.unwrap();
    assert_ne!(bob_after.free, bob_before.free);
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
    let clip = t.root().join("sample.ts");
    std::fs::write(&clip, vilokanam_testnet::FIXTURE).unwrap();
    let clip = clip.to_string_lossy().into_owned();
    let creator_dir = t.node(0).unwrap().data_dir.to_string_lossy().into_owned();
    let mut publisher = t
        .publish(
            0,
            &[
                "--name",
                "paid",
                "--input",
                &clip,
                "--realtime",
                "--loop",
                "--price",
                "1µTICK/s",
                "--data-dir",
                &creator_dir,
                "--chain-rpc",
                &rpc,
            ],
            std::process::Stdio::null(),
        )
        .expect("publish");
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
