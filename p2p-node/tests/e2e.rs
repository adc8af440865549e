//! End-to-end tests: real `vilokanam` daemon processes on loopback, real
//! MPEG-TS, real players' parser (ffprobe).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use vilokanam_api::reqwest::Method;
use vilokanam_testnet::{make_test_clip, wait_until, Api, ChunkInfo, NodeOptions, Testnet};

const BIN: &str = env!("CARGO_BIN_EXE_vilokanam");

async fn stream_of(api: &Api, name: &str) -> Result<String> {
    Ok(format!("{}-{name}", api.id().await?.creator_key))
}

async fn publish_clip(
    t: &mut Testnet,
    node: usize,
    name: &str,
    clip: &std::path::Path,
) -> Result<()> {
    let clip = clip.to_string_lossy().into_owned();
    let mut p = t.publish(
        node,
        &[
            "--name",
            name,
            "--title",
            "e2e",
            "--input",
            &clip,
            "--realtime",
        ],
        Stdio::null(),
    )?;
    let out = tokio::time::timeout(Duration::from_secs(90), p.wait())
        .await
        .context("publish did not finish")??;
    ensure!(out.success(), "publish failed: {out}");
    Ok(())
}

async fn wait_ended(api: &Api, stream: &str) -> Result<()> {
    wait_until(
        "the viewer's playlist to end",
        Duration::from_secs(30),
        || async { Ok(api.playlist(stream).await?.contains("#EXT-X-ENDLIST")) },
    )
    .await
}

fn seqs(c: &[ChunkInfo]) -> Vec<u64> {
    c.iter().map(|c| c.seq).collect()
}

fn ffprobe(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("ffprobe")
        .args(args)
        .output()
        .context("running ffprobe")?;
    ensure!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn count_frames(target: &str) -> Result<u64> {
    let out = ffprobe(&[
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
        target,
    ])?;
    // ffprobe lists the stream once per program and once on its own.
    out.lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("frame count {out:?}"))
}

fn first_frame_is_key(path: &str) -> Result<bool> {
    let out = ffprobe(&[
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "frame=key_frame",
        "-of",
        "csv=p=0",
        path,
    ])?;
    let first = out
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    Ok(first.trim().trim_end_matches(',') == "1")
}

/// The main acceptance test: 4 daemons in a line, viewer 3 hops
/// from the creator; byte-identical segments in order with no gap, and
/// ffprobe decodes the viewer's playlist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_of_four_plays_byte_identical_stream() -> Result<()> {
    let mut t = Testnet::line(BIN, 4).await?;
    let viewer = t.api(3)?;
    // The viewer is not directly connected to the creator.
    let creator_peer = t.node(0)?.peer_id.clone();
    ensure!(
        viewer
            .peers()
            .await?
            .iter()
            .all(|p| p.peer_id != creator_peer),
        "viewer must be ≥ 2 hops away"
    );
    let stream = stream_of(&t.api(0)?, "line").await?;
    viewer.watch(&stream).await?;
    let clip = t.root().join("clip.ts");
    make_test_clip(&clip, 8, 600, "320x180")?;
    publish_clip(&mut t, 0, "line", &clip).await?;
    wait_ended(&viewer, &stream).await?;

    let published = t.api(0)?.chunks(&stream).await?;
    let received = viewer.chunks(&stream).await?;
    ensure!(
        published.len() >= 6,
        "creator published {} chunks",
        published.len()
    );
    let expected: Vec<u64> = (0..published.len() as u64).collect();
    assert_eq!(seqs(&published), expected);
    assert_eq!(
        seqs(&received),
        expected,
        "viewer got every chunk, in order, no gap"
    );
    let mut all = vec![];
    for (p, r) in published.iter().zip(&received) {
        assert_eq!(p.cid, r.cid);
        let a = t
            .api(0)?
            .segment_file(&stream, p.seq)
            .await?
            .context("creator segment")?;
        let b = viewer
            .segment_file(&stream, r.seq)
            .await?
            .context("viewer segment")?;
        assert!(
            a == b,
            "segment {} differs between creator and viewer",
            p.seq
        );
        all.extend(b);
    }
    // Every relay in between held the chunks too (it relayed them).
    for relay in 1..3 {
        assert_eq!(
            seqs(&t.api(relay)?.chunks(&stream).await?),
            expected,
            "relay {relay}"
        );
    }
    // Players can decode what the viewer's node serves.
    let joined = t.root().join("viewer.ts");
    std::fs::write(&joined, &all)?;
    assert_eq!(
        count_frames(&joined.to_string_lossy())?,
        8 * 30,
        "every frame of the 8 s clip decodes"
    );
    let listed = count_frames(&viewer.playlist_url(&stream))?;
    assert!(
        listed >= 5 * 30,
        "ffprobe decoded {listed} frames from the live playlist"
    );
    // The path stayed 3 hops long throughout: no shortcut was dialled.
    assert!(
        viewer
            .peers()
            .await?
            .iter()
            .all(|p| p.peer_id != creator_peer),
        "viewer connected to the creator directly"
    );
    t.shutdown().await
}

/// A relay dies mid-stream; the viewer has a second path and keeps playing
/// without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_stream_playback_continues() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    t.spawn(NodeOptions::default()).await?; // 0: creator
    for _ in 0..2 {
        t.spawn(NodeOptions {
            relay: true,
            bootstrap: vec![0],
            ..Default::default()
        })
        .await?; // 1, 2: relays
    }
    t.spawn(NodeOptions {
        bootstrap: vec![1, 2],
        ..Default::default()
    })
    .await?; // 3: viewer
    t.wait_connected().await?;
    let viewer = t.api(3)?;
    let stream = stream_of(&t.api(0)?, "kill").await?;
    viewer.watch(&stream).await?;
    let clip = t.root().join("clip.ts");
    make_test_clip(&clip, 10, 600, "320x180")?;
    let clip_s = clip.to_string_lossy().into_owned();
    let mut publish = t.publish(
        0,
        &["--name", "kill", "--input", &clip_s, "--realtime"],
        Stdio::null(),
    )?;
    wait_until("viewer has 3 chunks", Duration::from_secs(30), || async {
        Ok(viewer.chunks(&stream).await?.len() >= 3)
    })
    .await?;
    let before = viewer.chunks(&stream).await?.len();
    // The relay about to die is carrying the stream (it holds its chunks).
    assert!(
        !t.api(1)?.chunks(&stream).await?.is_empty(),
        "relay 1 was on the path"
    );
    t.kill(1).await?;
    let status = tokio::time::timeout(Duration::from_secs(60), publish.wait()).await??;
    ensure!(status.success(), "publish failed: {status}");
    wait_ended(&viewer, &stream).await?;
    let published = seqs(&t.api(0)?.chunks(&stream).await?);
    let received = seqs(&viewer.chunks(&stream).await?);
    assert_eq!(received, published, "no gap after the relay died");
    assert!(
        received.len() > before + 3,
        "playback continued after the kill"
    );
    t.shutdown().await
}

/// A viewer that joins mid-stream starts at a keyframe chunk near the live
/// edge and then follows without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_joining_mid_stream_starts_at_keyframe() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    t.spawn(NodeOptions::default()).await?;
    t.spawn(NodeOptions {
        bootstrap: vec![0],
        ..Default::default()
    })
    .await?;
    t.wait_connected().await?;
    let creator = t.api(0)?;
    let viewer = t.api(1)?;
    let stream = stream_of(&creator, "mid").await?;
    let clip = t.root().join("clip.ts");
    make_test_clip(&clip, 9, 600, "320x180")?;
    let clip_s = clip.to_string_lossy().into_owned();
    let mut publish = t.publish(
        0,
        &["--name", "mid", "--input", &clip_s, "--realtime"],
        Stdio::null(),
    )?;
    wait_until("creator has 3 chunks", Duration::from_secs(30), || async {
        Ok(creator.chunks(&stream).await?.len() >= 3)
    })
    .await?;
    viewer.watch(&stream).await?;
    let status = tokio::time::timeout(Duration::from_secs(60), publish.wait()).await??;
    ensure!(status.success());
    wait_ended(&viewer, &stream).await?;
    let got = seqs(&viewer.chunks(&stream).await?);
    let first = *got.first().context("viewer got nothing")?;
    assert!(first >= 2, "joined at chunk {first}, not the start");
    let last = *got.last().context("empty")?;
    assert_eq!(
        got,
        (first..=last).collect::<Vec<_>>(),
        "no gap after joining"
    );
    assert_eq!(Some(&last), seqs(&creator.chunks(&stream).await?).last());
    let seg = viewer
        .segment_file(&stream, first)
        .await?
        .context("first segment")?;
    let path = t.root().join("first.ts");
    std::fs::write(&path, seg)?;
    assert!(
        first_frame_is_key(&path.to_string_lossy())?,
        "first playable segment starts at a keyframe"
    );
    t.shutdown().await
}

/// Garbage, truncated and oversized input: clear errors, nothing published,
/// the node keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_media_input_is_refused_with_a_reason() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    t.spawn(NodeOptions::default()).await?;
    let api = t.api(0)?;

    // Garbage file: publish fails, no stream is even announced.
    let garbage = t.root().join("garbage.bin");
    std::fs::write(
        &garbage,
        b"\x89PNG\r\n\x1a\n this is not a video".repeat(100),
    )?;
    let g = garbage.to_string_lossy().into_owned();
    let out = t
        .publish(0, &["--name", "junk", "--input", &g], Stdio::null())?
        .wait_with_output()
        .await?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an MPEG-TS stream: expected sync byte 0x47 at byte offset"),
        "{err}"
    );
    assert!(api.streams().await?.is_empty(), "garbage announced nothing");

    // Truncated file: the complete segments are published, then a clear error.
    let clip = t.root().join("clip.ts");
    make_test_clip(&clip, 3, 300, "160x90")?;
    let bytes = std::fs::read(&clip)?;
    let cut = t.root().join("cut.ts");
    std::fs::write(&cut, &bytes[..bytes.len() / 188 * 188 - 100])?;
    let c = cut.to_string_lossy().into_owned();
    let out = t
        .publish(0, &["--name", "cut", "--input", &c], Stdio::null())?
        .wait_with_output()
        .await?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("truncated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stream = stream_of(&api, "cut").await?;
    let cut_chunks = api.chunks(&stream).await?;
    assert!(
        !cut_chunks.is_empty(),
        "the complete segments before the cut were published"
    );
    for c in cut_chunks {
        let seg = api.segment_file(&stream, c.seq).await?.context("segment")?;
        let p = t.root().join(format!("cut{}.ts", c.seq));
        std::fs::write(&p, seg)?;
        assert!(
            first_frame_is_key(&p.to_string_lossy())?,
            "only whole keyframe segments were published"
        );
    }

    // Direct API misuse: garbage segment, oversized body, unknown stream.
    let (code, body) = api
        .raw(
            Method::POST,
            "/api/v0/publish/cut/segment?duration_us=1000000",
            b"garbage".to_vec(),
        )
        .await?;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("segment refused"), "{body}");
    let (code, _) = api
        .raw(
            Method::POST,
            "/api/v0/publish/cut/segment?duration_us=1000000",
            vec![0x47; 9 * 1024 * 1024],
        )
        .await?;
    assert_eq!(code, 413, "oversized segment");
    let (code, body) = api
        .raw(
            Method::POST,
            "/api/v0/publish/nope/segment?duration_us=1000000",
            vilokanam_media::fixtures::SAMPLE_TS[..188 * 200].to_vec(),
        )
        .await?;
    assert_eq!(code, 409, "{body}");
    // Still alive and serving.
    api.id().await?;
    t.shutdown().await
}

/// The same stream over QUIC only: three daemons that neither listen nor
/// dial on TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_only_nodes_stream_end_to_end() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    for i in 0..3usize {
        t.spawn(NodeOptions {
            relay: true,
            quic_only: true,
            bootstrap: if i == 0 { vec![] } else { vec![i - 1] },
            ..Default::default()
        })
        .await?;
    }
    t.wait_connected().await?;
    for i in 0..3 {
        let node = t.node(i)?;
        ensure!(node.tcp_addr().is_none(), "node {i} listens on TCP");
        ensure!(node.quic_addr().is_some(), "node {i} has no QUIC address");
    }
    let viewer = t.api(2)?;
    let stream = stream_of(&t.api(0)?, "quic").await?;
    viewer.watch(&stream).await?;
    let clip = t.root().join("clip.ts");
    make_test_clip(&clip, 4, 400, "320x180")?;
    publish_clip(&mut t, 0, "quic", &clip).await?;
    wait_ended(&viewer, &stream).await?;
    let published = t.api(0)?.chunks(&stream).await?;
    let received = viewer.chunks(&stream).await?;
    ensure!(!published.is_empty());
    assert_eq!(seqs(&received), seqs(&published));
    for (p, r) in published.iter().zip(&received) {
        assert_eq!(p.cid, r.cid, "chunk {}", p.seq);
    }
    t.shutdown().await
}
