//! Glass-to-glass latency benchmark: real `vilokanam daemon` processes on
//! loopback and hls.js in headless Chromium as the player. Prints figures;
//! asserts nothing.
//!
//! ```text
//! cargo build --release -p vilokanam
//! . scripts/lib.sh && ensure_chopsticks   # Node 22, playwright-core, hls.js
//! cargo run --release -p vilokanam-testnet --bin latency-bench -- --seconds 60
//! ```
//!
//! A line of 4 nodes (node 0 creates; node 1 is one hop away, node 3
//! three). Node 0 publishes two copies of a live signal side by side, one
//! with LL-HLS parts of 300 ms (`--part-ms 300`) and one with 1 s segments
//! only (`--part-ms 0`); nodes 1 and 3 watch both. Four players (hls.js,
//! `lowLatencyMode`) play the four combinations one after the other (four
//! browsers at once would measure a 2-core machine); each samples,
//! once a second while playing, the wall clock minus the
//! `EXT-X-PROGRAM-DATE-TIME` of the frame on screen. The program date is
//! the creator's clock when the frame reached its node, so the figure is
//! glass-to-glass minus the encoder's own delay (one frame with x264
//! `zerolatency`; the shipped fixture, used without ffmpeg, has none).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use vilokanam_testnet::bench::{arg, daemon_binary};
use vilokanam_testnet::browser::{quantile, BrowserPlayer};
use vilokanam_testnet::{ffmpeg_available, stream_id_of, wait_until, Testnet, FIXTURE};

#[tokio::main]
async fn main() -> Result<()> {
    let bin = daemon_binary()?;
    let seconds: u32 = arg("--seconds")
        .map_or(Ok(60), |s| s.parse())
        .context("--seconds")?;
    let player = BrowserPlayer::locate().context("the browser player (see scripts/lib.sh)")?;
    let mut t = Testnet::line(&bin, 4).await?;
    let live = ffmpeg_available();
    let clip = t.root().join("sample.ts");
    std::fs::write(&clip, FIXTURE)?;
    let clip = clip.to_string_lossy().into_owned();
    println!(
        "source: {}",
        if live {
            "ffmpeg live signal (x264 zerolatency, 1 s GOP), one encoder per stream"
        } else {
            "the shipped fixture looped in real time (no ffmpeg)"
        }
    );
    let mut publishers = vec![];
    let mut streams = vec![];
    for (name, part_ms) in [("parts", "300"), ("segments", "0")] {
        let mut args = vec!["--name", name, "--part-ms", part_ms];
        let stdin = if live {
            args.extend(["--input", "-"]);
            t.live_signal()?
        } else {
            args.extend(["--input", &clip, "--realtime", "--loop"]);
            Stdio::null()
        };
        let mut p = t.publish(0, &args, stdin)?;
        streams.push((name, stream_id_of(&mut p).await?));
        publishers.push(p);
    }
    let mut runs = vec![];
    for viewer in [1usize, 3] {
        let api = t.api(viewer)?;
        for (name, stream) in &streams {
            let url = api.watch(stream).await?;
            wait_until(
                "a first segment at the viewer",
                Duration::from_secs(30),
                || async { Ok(!api.chunks(stream).await?.is_empty()) },
            )
            .await?;
            runs.push((viewer, *name, stream.clone(), url));
        }
    }
    // One player at a time: four browsers decoding at once on a small
    // machine measure the machine, not the stream.
    println!(
        "playing {} streams for {seconds} s each, one after the other",
        runs.len()
    );
    let mut rows = vec![];
    for (viewer, name, stream, url) in runs {
        let api = t.api(viewer)?;
        // The node's own view of its latency, sampled alongside.
        let sampler = tokio::spawn(async move {
            let mut v = vec![];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for _ in 0..seconds {
                tick.tick().await;
                if let Ok(Some(ms)) = api.stream(&stream).await.map(|i| i.latency_ms) {
                    v.push(ms as f64);
                }
            }
            v
        });
        let report = player.play(&url, seconds).await;
        let node = sampler.await.unwrap_or_default();
        rows.push((viewer, name, report, node));
    }
    println!();
    println!("| viewer | stream | glass-to-glass p50 | p95 | samples | node latency p50 | player errors |");
    println!("|---|---|---|---|---|---|---|");
    for (viewer, name, report, node) in &rows {
        let hops = if *viewer == 1 { "1 hop" } else { "3 hops" };
        match report {
            Ok(r) => {
                let s = |q| {
                    r.latency_quantile(q)
                        .map_or("-".into(), |v| format!("{:.2} s", v / 1000.0))
                };
                let n = quantile(node, 0.5).map_or("-".into(), |v| format!("{:.2} s", v / 1000.0));
                println!(
                    "| node {viewer} ({hops}) | {name} | {} | {} | {} | {n} | {} |",
                    s(0.5),
                    s(0.95),
                    r.latencies.len(),
                    if r.errors.is_empty() {
                        "none".to_owned()
                    } else {
                        r.errors.join(", ")
                    }
                );
            }
            Err(e) => println!("| node {viewer} ({hops}) | {name} | failed: {e} | | | | |"),
        }
    }
    for mut p in publishers {
        let _ = p.start_kill();
        let _ = p.wait().await;
    }
    Ok(())
}
