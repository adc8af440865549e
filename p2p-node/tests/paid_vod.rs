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
use vilokanam_storage::unixfs::{self, Cid, CidVersion};
use vilokanam_storage::Store;
use vilokanam_swarm::protocols::keys::paywall::epoch_at;
use vilokanam_swarm::protocols::live::wire::GossipMessage;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const PRICE: u128 = 1_000_000; // 1 µTICK/s

/// Builds a VOD directory as the creator's node lays it out (playlist,
/// paywall, `000/` segments) into `store`; returns its root.
fn repackage(store: &Store, playlist: &[u8], paywall: &[u8], segs: &[Vec<u8>]) -> String {
    let mut blocks = vec![];
    let mut sink = |c: &Cid, b: &[u8]| {
        blocks.push((*c, b.to_vec()));
        Ok(())
    };
    let v1 = CidVersion::V1;
    let pl = unixfs::import_file(playlist, v1, &mut sink).unwrap();
    let pw = unixfs::import_file(paywall, v1, &mut sink).unwrap();
    let entries: Vec<(String, unixfs::Entry)> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("{i:06}.ts"),
                unixfs::import_file(s, v1, &mut sink).unwrap(),
            )
        })
        .collect();
    let dir = unixfs::import_directory(&entries, v1, &mut sink).unwrap();
    let root = unixfs::import_directory(
        &[
            ("index.m3u8".into(), pl),
            ("paywall.json".into(), pw),
            ("000".into(), dir),
        ],
        v1,
        &mut sink,
    )
    .unwrap();
    store.recordings.write_blocks(&blocks, None).unwrap();
    // Kept as a VOD of this node's (what is not is collected at start).
    store
        .vods
        .put(&vilokanam_storage::VodRecord {
            root: root.cid.to_string(),
            stream: String::new(),
            creator: String::new(),
            title: String::new(),
            duration_ms: 0,
            segments: segs.len() as u64,
            bytes: root.tsize,
            created_ms: 0,
            signature: String::new(),
            ipfs_pinned: None,
            price_per_sec: 0,
        })
        .unwrap();
    root.cid.to_string()
}

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

    // The same ciphertext repackaged by someone else, served by a third
    // node: a paywall whose segment 1 claims to last 30 s (a dearer
    // segment), and one whose segment 1 is segment 2's bytes. Refused
    // before anything is paid.
    let file = |p: String| {
        let node = a.node.clone();
        let root = vod.root.clone();
        async move { node.vod_file(&root, &p).await.unwrap() }
    };
    let playlist = file("index.m3u8".into()).await;
    let paywall = file("paywall.json".into()).await;
    let mut sealed_segs = vec![];
    for i in 0..segs.len() {
        sealed_segs.push(file(format!("000/{i:06}.ts")).await);
    }
    let mut dearer: serde_json::Value = serde_json::from_slice(&paywall).unwrap();
    let raw = hex::decode(dearer["segments"][1].as_str().unwrap()).unwrap();
    let GossipMessage::Chunk(mut h) = GossipMessage::decode(&raw).unwrap() else {
        panic!("a chunk header")
    };
    h.header.duration_us = 30_000_000;
    dearer["segments"][1] = hex::encode(GossipMessage::Chunk(h).encode()).into();
    let mut swapped = sealed_segs.clone();
    swapped[1] = sealed_segs[2].clone();
    let f_dir = tempfile::tempdir().unwrap();
    let forged = {
        let store = vilokanam_storage::Store::open(f_dir.path()).unwrap();
        let r = [
            repackage(
                &store,
                &playlist,
                &serde_json::to_vec(&dearer).unwrap(),
                &sealed_segs,
            ),
            repackage(&store, &playlist, &paywall, &swapped),
        ];
        store.flush().unwrap();
        r
    };
    let b_addr = b.api.id().await.unwrap().listen[0].clone();
    let f = Running::start_in(
        f_dir,
        NodeConfig {
            bootstrap: vec![b_addr],
            ..config()
        },
        None,
    )
    .await;
    vilokanam_testnet::wait_until("F connected to B", Duration::from_secs(10), || {
        let api = f.api.clone();
        async move { Ok(!api.peers().await?.is_empty()) }
    })
    .await
    .unwrap();
    for root in &forged {
        // Segment 0 is genuine in both: it plays (paid already).
        assert!(b.api.vod_file(root, "000/000000.ts").await.unwrap() == segs[0].data);
        let e = b.api.vod_file(root, "000/000001.ts").await.unwrap_err();
        assert!(
            e.to_string().contains("not as its creator signed it"),
            "{root}: {e}"
        );
    }
    let after: u128 = b.api.spending().await.unwrap()[0].spent.parse().unwrap();
    assert_eq!(after, spent, "nothing paid for a forged segment");
    f.stop().await;

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
