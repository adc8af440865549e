//! VODs with real `vilokanam` processes: a creator daemon SIGKILLed while
//! it records loses at most the chunk it was flushing, and its next start
//! builds the VOD from the rest (ffprobe decodes it; `vilokanam vod ls` and
//! `vod export --car` work on it); a `--record` relay that never published
//! builds the same VOD, byte for byte the same root CID, from what it
//! relayed when the creator ends the stream, and knows the creator's
//! signed record from its announcement (`vod ls --heard`).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use vilokanam_chain::test_utils::skip_or_require;
use vilokanam_storage::unixfs::car;
use vilokanam_testnet::{wait_until, Api, NodeOptions, Testnet};

const BIN: &str = env!("CARGO_BIN_EXE_vilokanam");

fn fixture() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/media/fixtures/sample.ts").to_owned()
}

async fn recorded(api: &Api) -> Result<f64> {
    Ok(api
        .metric("vilokanam_node_chunks_recorded_total", &[])
        .await?)
}

async fn ffprobe_duration(url: &str) -> Option<f64> {
    let found = std::process::Command::new("ffprobe")
        .arg("-version")
        .output();
    skip_or_require("ffprobe", found.map_err(|e| e.to_string()))?;
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .await
        .ok()?;
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_killed_mid_recording_gets_its_vod_at_the_next_start() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    t.spawn(NodeOptions::default()).await?;
    let input = fixture();
    let mut publish = t.publish(
        0,
        &[
            "--name",
            "rec",
            "--input",
            &input,
            "--realtime",
            "--loop",
            "--part-ms",
            "0",
        ],
        Stdio::null(),
    )?;
    let api = t.api(0)?;
    wait_until("7 chunks recorded", Duration::from_secs(60), || {
        let api = api.clone();
        async move { Ok(recorded(&api).await? >= 7.0) }
    })
    .await?;
    let n = recorded(&api).await?;
    t.kill(0).await?;
    let _ = publish.kill().await;

    t.restart(0, NodeOptions::default()).await?;
    let api = t.api(0)?;
    wait_until(
        "the VOD of the cut-off recording",
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move { Ok(!api.vods().await?.is_empty()) }
        },
    )
    .await?;
    let vod = api.vods().await?.remove(0);
    // At most the chunk being flushed at the kill is lost (and one more
    // may have been recorded after the metric was read).
    ensure!(
        vod.segments as f64 >= n - 1.0 && vod.segments as f64 <= n + 1.0,
        "{} segments after {n} recorded",
        vod.segments
    );
    ensure!(vod.signed, "built on the creator's node");
    if let Some(d) = ffprobe_duration(&api.vod_url(&vod.root)).await {
        ensure!(
            (d - vod.duration_ms as f64 / 1000.0).abs() < 1.5,
            "ffprobe {d} s vs {} ms",
            vod.duration_ms
        );
    }
    // The CLI: list, export a CAR that holds the whole DAG.
    let addr = t.node(0)?.api_addr.clone();
    let ls = tokio::process::Command::new(BIN)
        .args(["vod", "ls", "--api", &addr])
        .output()
        .await?;
    ensure!(
        String::from_utf8_lossy(&ls.stdout).contains(&vod.root),
        "vod ls: {ls:?}"
    );
    let file = t.root().join("vod.car");
    let ex = tokio::process::Command::new(BIN)
        .args(["vod", "export", &vod.root, "--car"])
        .arg(&file)
        .args(["--api", &addr])
        .output()
        .await?;
    ensure!(
        ex.status.success(),
        "vod export: {}",
        String::from_utf8_lossy(&ex.stderr)
    );
    let (root, blocks) = car::read(&std::fs::read(&file)?)?;
    ensure!(root.to_string() == vod.root);
    ensure!(blocks.iter().map(|(_, b)| b.len() as u64).sum::<u64>() == vod.bytes);
    t.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_relay_builds_the_same_vod_as_the_creator() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    t.spawn(NodeOptions::default()).await?;
    t.spawn(NodeOptions {
        relay: true,
        bootstrap: vec![0],
        extra: vec!["--record".into()],
        ..NodeOptions::default()
    })
    .await?;
    t.wait_connected().await?;
    let input = fixture();
    let mut publish = t.publish(
        0,
        &[
            "--name",
            "rel",
            "--input",
            &input,
            "--realtime",
            "--part-ms",
            "0",
        ],
        Stdio::null(),
    )?;
    let status = tokio::time::timeout(Duration::from_secs(60), publish.wait())
        .await
        .context("publish did not finish")??;
    ensure!(status.success());
    let creator = t.api(0)?;
    let relay = t.api(1)?;
    wait_until("both VODs", Duration::from_secs(20), || {
        let (c, r) = (creator.clone(), relay.clone());
        async move { Ok(!c.vods().await?.is_empty() && !r.vods().await?.is_empty()) }
    })
    .await?;
    let mine = creator.vods().await?.remove(0);
    let theirs = relay.vods().await?.remove(0);
    ensure!(!theirs.signed, "the relay cannot sign as the creator");
    // The relay joined on the announcement: it may have missed the first
    // chunk; with every chunk it is the same VOD, so the same CID.
    ensure!(
        theirs.segments + 1 >= mine.segments,
        "{theirs:?} vs {mine:?}"
    );
    if theirs.segments == mine.segments {
        ensure!(
            theirs.root == mine.root,
            "same files, same root: {theirs:?} vs {mine:?}"
        );
    }
    // The creator announced its VOD: the relay knows the signed record
    // (`vilokanam vod ls --heard`).
    wait_until("the relay heard the VOD", Duration::from_secs(10), || {
        let (r, root) = (relay.clone(), mine.root.clone());
        async move { Ok(r.heard_vods().await?.iter().any(|v| v.root == root)) }
    })
    .await?;
    let heard = relay.heard_vods().await?.remove(0);
    ensure!(heard.signed && heard.title == mine.title, "{heard:?}");
    let addr = t.node(1)?.api_addr.clone();
    let ls = tokio::process::Command::new(BIN)
        .args(["vod", "ls", "--heard", "--api", &addr])
        .output()
        .await?;
    ensure!(
        String::from_utf8_lossy(&ls.stdout).contains(&mine.root),
        "vod ls --heard: {ls:?}"
    );
    t.shutdown().await?;
    Ok(())
}
