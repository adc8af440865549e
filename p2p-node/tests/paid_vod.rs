//! Paid VODs on the real dev chain (our runtime under chopsticks): the VOD
//! of a paid stream keeps its ciphertext, and plays only for the creator
//! and for a viewer that pays for it per second, with the same vouchers and
//! epoch keys as live. The creator's node keeps selling the keys after a
//! restart, for epochs older than any live key window; a viewer that
//! never saw the stream
//! fetches the ciphertext over Bitswap, pays, and gets the published bytes
//! back, which ffprobe decodes from its URL; the creator ends up holding
//! exactly what the viewer signed.
//!
//! Skips (or fails under `VILOKANAM_REQUIRE=1`) without the dev chain.

mod common;

use std::time::Duration;

use common::Running;
use vilokanam::config::NodeConfig;
use vilokanam::node::payments::ChainAccess;
use vilokanam_api::{OfferInfo, StartRequest, WatchRequest};
use vilokanam_chain::account::{account_id, keypair};
use vilokanam_chain::test_utils::{parts_for_test, skip_or_require, DevChain};
use vilokanam_chain::{Endpoint, Settlement};
use vilokanam_media::fixtures::SAMPLE_TS;
use vilokanam_media::ts::Segmenter;
use vilokanam_swarm::protocols::keys::paywall::epoch_at;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const PRICE: u128 = 1_000_000; // 1 µTICK/s

fn config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        announce_interval_secs: 1,
        // Keys on the main listener: the offer's key-server addresses are
        // those of the first run, and a viewer connected to the restarted
        // node opens its key session on that connection.
        key_listen: Some(vec![]),
        ..NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_vod_plays_only_for_its_payer_and_pays_its_creator() {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let chain = DevChain::start(&parts).await.expect("dev chain");
    let client = Settlement::connect(&Endpoint::Rpc(chain.ws_url.clone()))
        .await
        .unwrap();
    let access = |uri: &str| {
        Some(ChainAccess {
            endpoint: Endpoint::Rpc(chain.ws_url.clone()),
            account: Some(uri.into()),
        })
    };
    let creator_account = account_id(&keypair("//Ferdie").unwrap());
    let a = Running::start_in(tempfile::tempdir().unwrap(), config(), access("//Ferdie")).await;

    // A paid stream, published and ended: its VOD is built from the
    // ciphertext the mesh carried.
    let offer = OfferInfo {
        price_per_sec: PRICE.to_string(),
        payee: creator_account.to_string(),
        genesis: format!("0x{}", hex::encode(client.genesis())),
        // Short epochs: the live window of keys (12 s back) is soon past.
        epoch_secs: 1,
        key_servers: vec![],
    };
    let start = StartRequest {
        title: "a paid show".into(),
        tags: vec![],
        codec: String::new(),
        offer: Some(offer),
    };
    let stream = a.api.start("show", &start).await.unwrap().stream;
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut segs = s.push(SAMPLE_TS).unwrap();
    segs.extend(s.finish().unwrap());
    for seg in &segs {
        let q = vilokanam_api::SegmentQuery {
            duration_us: seg.duration.as_micros() as u32,
            discontinuity: false,
        };
        a.api.segment("show", &q, seg.data.clone()).await.unwrap();
    }
    a.api.end("show").await.unwrap();
    let vod = a.api.vods().await.unwrap().remove(0);
    assert_eq!(vod.price_per_sec.as_deref(), Some("1000000"), "{vod:?}");
    assert_eq!(vod.stream, stream);
    assert!(vod.signed);
    assert_eq!(vod.segments, segs.len() as u64);
    // The blocks are ciphertext; the creator plays it in clear.
    let sealed = a.node.vod_file(&vod.root, "000/000000.ts").await.unwrap();
    assert_ne!(sealed, segs[0].data);
    assert_eq!(sealed.len(), segs[0].data.len() + 16, "AEAD tag");
    assert!(a.node.vod_file(&vod.root, "paywall.json").await.is_ok());
    assert_eq!(
        a.api.vod_file(&vod.root, "000/000000.ts").await.unwrap(),
        segs[0].data
    );

    // The creator's node restarts: no live stream, the VOD's keys on sale.
    let a = Running::start_in(a.stop().await, config(), access("//Ferdie")).await;
    // The VOD's epochs are older than any live key window (12 s back):
    // only an archive serves their keys.
    let cid = vod.root.parse().unwrap();
    let paywall = a.node.paid_vod(&cid).await.unwrap().expect("paid");
    let last = paywall
        .segments
        .iter()
        .filter_map(|s| s.header.header.epoch)
        .max()
        .unwrap();
    vilokanam_testnet::wait_until(
        "the live key window is past",
        Duration::from_secs(30),
        || async move { Ok(epoch_at(now_ms(), 1) > last + 13) },
    )
    .await
    .unwrap();
    let a_addr = a.api.id().await.unwrap().listen[0].clone();
    let b = Running::start_in(
        tempfile::tempdir().unwrap(),
        NodeConfig {
            bootstrap: vec![a_addr],
            ..config()
        },
        access("//Charlie"),
    )
    .await;
    vilokanam_testnet::wait_until("B connected to A", Duration::from_secs(10), || {
        let api = b.api.clone();
        async move { Ok(!api.peers().await?.is_empty()) }
    })
    .await
    .unwrap();

    // Not paying: neither the playlist nor a segment, with the price.
    for path in ["index.m3u8", "000/000001.ts"] {
        let e = b.api.vod_file(&vod.root, path).await.unwrap_err();
        assert_eq!(e.status(), Some(402), "{path}: {e}");
        assert!(e.to_string().contains("is paid (1 µTICK/s)"), "{e}");
    }
    let e = b
        .api
        .vod_watch(&vod.root, &WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(402), "{e}");
    assert!(e.to_string().contains("budget"), "{e}");
    let e = b
        .api
        .vod_watch(
            &vod.root,
            &WatchRequest {
                max_price_per_sec: Some((PRICE - 1).to_string()),
                budget: Some("100000000".into()),
                top_up_to: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(402), "{e}");
    assert!(
        client.channels().await.unwrap().is_empty(),
        "nothing opened"
    );

    // Paying: one channel, every segment back as published.
    let w = b
        .api
        .vod_watch(
            &vod.root,
            &WatchRequest {
                max_price_per_sec: None,
                budget: Some("100000000".into()), // 100 s
                top_up_to: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(w.stream, stream);
    assert_eq!(client.channels().await.unwrap().len(), 1);
    assert!(b
        .api
        .vod_file(&vod.root, "index.m3u8")
        .await
        .unwrap()
        .starts_with(b"#EXTM3U"));
    for (i, seg) in segs.iter().enumerate() {
        let got = b
            .api
            .vod_file(&vod.root, &format!("000/{i:06}.ts"))
            .await
            .unwrap();
        assert!(
            got == seg.data,
            "segment {i} decrypted to the published bytes"
        );
    }
    // A player on B's URL decodes it (segments already paid: not again).
    let ffprobe = std::process::Command::new("ffprobe")
        .arg("-version")
        .output();
    if skip_or_require("ffprobe", ffprobe.map_err(|e| e.to_string())).is_some() {
        let url = b.api.vod_url(&vod.root);
        let out = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration"])
            .args(["-of", "csv=p=0"])
            .arg(&url)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "ffprobe {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!((d - vod.duration_ms as f64 / 1000.0).abs() < 1.0, "{d} s");
    }
    // A page from another site may not make B decrypt (and pay); a page
    // on this machine may.
    let seg_url = b
        .api
        .vod_url(&vod.root)
        .replace("index.m3u8", "000/000000.ts");
    let http = vilokanam_api::reqwest::Client::new();
    let foreign = http
        .get(&seg_url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let local = http
        .get(&seg_url)
        .header("Origin", "http://127.0.0.1:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
    assert!(local.bytes().await.unwrap() == segs[0].data);
    // B paid for the VOD's time, once.
    let total_us: u128 = segs.iter().map(|s| s.duration.as_micros()).sum();
    let spending = b.api.spending().await.unwrap();
    assert_eq!(spending.len(), 1, "{spending:?}");
    let spent: u128 = spending[0].spent.parse().unwrap();
    assert_eq!(
        spent,
        (PRICE * total_us).div_ceil(1_000_000),
        "{spending:?}"
    );
    // What B keeps is ciphertext, as any IPFS peer would get it.
    let held = b.node.vod_file(&vod.root, "000/000000.ts").await.unwrap();
    assert_eq!(held, sealed);

    // Done: the last voucher reaches the creator, who holds exactly it.
    b.api.vod_unwatch(&vod.root).await.unwrap();
    vilokanam_testnet::wait_until(
        "the creator holds B's last voucher",
        Duration::from_secs(20),
        || async {
            Ok(a.api.earnings().await?.first().map(|e| e.accrued.clone())
                == Some(spent.to_string()))
        },
    )
    .await
    .unwrap();
    b.stop().await;
    a.stop().await;
    chain.stop().await.unwrap();
}
