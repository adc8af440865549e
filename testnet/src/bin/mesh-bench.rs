//! Mesh benchmark: real `vilokanam daemon` processes on loopback carrying a
//! ~4 Mbit/s H.264 stream. Prints figures; asserts nothing.
//!
//! ```text
//! cargo build --release -p vilokanam
//! cargo run --release -p vilokanam-testnet --bin mesh-bench
//! ```
//!
//! 1. A line of 5 nodes: publish-to-playable latency at 1, 2, 3 and 4 hops
//!    (p50, p99), and the CPU time and peak RSS of a middle relay.
//! 2. A 10-node mesh (Kademlia discovery): download amplification, i.e.
//!    bytes each node received from the network ÷ stream bytes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use vilokanam_testnet::bench::{clk_tck, percentile, proc_usage};
use vilokanam_testnet::{make_test_clip, stream_id_of, wait_until, NodeOptions, Testnet};

async fn publish(t: &mut Testnet, clip: &str, name: &str) -> Result<tokio::process::Child> {
    let mut p = t.publish(
        0,
        &["--name", name, "--input", clip, "--realtime"],
        Stdio::null(),
    )?;
    stream_id_of(&mut p).await?;
    Ok(p)
}

async fn finish(p: &mut tokio::process::Child) -> Result<()> {
    let s = tokio::time::timeout(Duration::from_secs(120), p.wait()).await??;
    if !s.success() {
        bail!("publish failed: {s}");
    }
    Ok(())
}

async fn stream_of(t: &Testnet, name: &str) -> Result<String> {
    Ok(t.node(0)?.stream(name))
}

#[tokio::main]
async fn main() -> Result<()> {
    let bin = std::env::args()
        .skip_while(|a| a != "--bin")
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .unwrap_or_default()
                .with_file_name("vilokanam")
        });
    if !bin.exists() {
        bail!(
            "{} not found: cargo build --release -p vilokanam first",
            bin.display()
        );
    }
    let seconds = 30;
    let scratch = tempfile::tempdir()?;
    let clip = scratch.path().join("clip.ts");
    println!("making a {seconds} s 1280x720 H.264 clip at 4 Mbit/s with ffmpeg …");
    if !make_test_clip(&clip, seconds, 4000, "1280x720")? {
        bail!("the benchmark needs ffmpeg (apt-get install ffmpeg)");
    }
    let clip_s = clip.to_string_lossy().into_owned();

    // 1. Line of 5: latency per hop count, relay CPU and RSS.
    let mut t = Testnet::line(&bin, 5).await?;
    let name = "bench-line";
    let stream = stream_of(&t, name).await?;
    for i in 1..5 {
        t.api(i)?.watch(&stream).await?;
    }
    let relay_pid = t.node(2)?.pid;
    let (cpu0, _) = proc_usage(relay_pid)?;
    let t0 = Instant::now();
    let mut p = publish(&mut t, &clip_s, name).await?;
    finish(&mut p).await?;
    let last = t
        .api(0)?
        .chunks(&stream)
        .await?
        .last()
        .map(|c| c.seq)
        .unwrap_or(0);
    let viewer = t.api(4)?;
    wait_until("last chunk at 4 hops", Duration::from_secs(30), || async {
        Ok(viewer.chunks(&stream).await?.last().map(|c| c.seq) == Some(last))
    })
    .await?;
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, hwm) = proc_usage(relay_pid)?;
    let cpu = (cpu1 - cpu0) as f64 / clk_tck();
    let chunks = t.api(0)?.chunks(&stream).await?;
    let stream_bytes: u64 = chunks.iter().map(|c| u64::from(c.size)).sum();
    let media_s: f64 = chunks.iter().map(|c| f64::from(c.duration_us) / 1e6).sum();
    println!();
    println!(
        "## line of 5 nodes: {} chunks, {:.2} Mbit/s of chunk payload",
        chunks.len(),
        stream_bytes as f64 * 8.0 / media_s / 1e6
    );
    println!("| hops | chunks | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for hops in 1..5 {
        let chunks = t.api(hops)?.chunks(&stream).await?;
        let mut lat: Vec<u64> = chunks
            .iter()
            .map(|c| c.ready_at_ms.saturating_sub(c.published_at_ms))
            .collect();
        lat.sort_unstable();
        println!(
            "| {hops} | {} | {} | {} | {} |",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0)
        );
    }
    println!();
    println!(
        "relay (node 2 of the line, serving node 3): CPU {:.2} s over {:.1} s wall = {:.1} % of one core; peak RSS {:.1} MiB",
        cpu,
        wall,
        cpu / wall * 100.0,
        hwm as f64 / 1024.0
    );
    t.shutdown().await?;

    // 2. 10-node mesh: download amplification.
    let mut t = Testnet::new(&bin, None)?;
    for i in 0..10usize {
        let bootstrap = match i {
            0 => vec![],
            1 => vec![0],
            _ => vec![i - 1, (i * 7) % i],
        };
        t.spawn(NodeOptions {
            relay: true,
            discovery: true,
            bootstrap,
            ..NodeOptions::default()
        })
        .await?;
    }
    t.wait_connected().await?;
    let name = "bench-mesh";
    let stream = stream_of(&t, name).await?;
    let mut before = vec![];
    for i in 0..10 {
        before.push(
            t.api(i)?
                .metric("libp2p_bandwidth_bytes_total", &["direction=\"Inbound\""])
                .await?,
        );
    }
    let mut p = publish(&mut t, &clip_s, name).await?;
    finish(&mut p).await?;
    let chunks = t.api(0)?.chunks(&stream).await?;
    let last = chunks.last().map(|c| c.seq).unwrap_or(0);
    let stream_bytes: u64 = chunks.iter().map(|c| u64::from(c.size)).sum();
    for i in 1..10 {
        let api = t.api(i)?;
        wait_until("last chunk everywhere", Duration::from_secs(30), || async {
            Ok(api.chunks(&stream).await?.last().map(|c| c.seq) == Some(last))
        })
        .await?;
    }
    let mut amps = vec![];
    let mut degrees = vec![];
    for (i, b) in before.iter().enumerate().skip(1) {
        let api = t.api(i)?;
        let after = api
            .metric("libp2p_bandwidth_bytes_total", &["direction=\"Inbound\""])
            .await?;
        amps.push((after - b) / stream_bytes as f64);
        degrees.push(api.peers().await?.len());
    }
    let mut sorted = amps.clone();
    sorted.sort_by(f64::total_cmp);
    println!();
    println!(
        "## 10-node mesh: {} chunks, {stream_bytes} stream bytes",
        chunks.len()
    );
    println!("peers per node (1-9): {degrees:?}");
    println!(
        "download amplification (all inbound transport bytes ÷ stream bytes), nodes 1-9: min {:.3} median {:.3} max {:.3}",
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    println!(
        "per node: {}",
        amps.iter()
            .map(|a| format!("{a:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    t.shutdown().await?;
    Ok(())
}
