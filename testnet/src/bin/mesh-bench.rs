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
//!
//! With `--payments` it runs the line twice instead, without and with
//! relay fees (the dev chain, every node charging 1 mTICK/MiB and paying
//! its upstream), and prints what payments cost: amplification, latency
//! per hop, relay CPU, vouchers per MiB and per second.
//!
//! With `--parts` it runs the line twice, with whole segments only
//! (`--part-ms 0`) and with LL-HLS parts of 300 ms, and prints what parts
//! cost: amplification, relay CPU and RSS, gossip messages per second,
//! and the delay from a part's end at the creator to its listing at each
//! hop (an LL-HLS client with blocking reloads at every node).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use vilokanam_testnet::bench::{clk_tck, percentile, proc_usage};
use vilokanam_testnet::{make_test_clip, stream_id_of, wait_until, NodeOptions, Testnet};

async fn publish(
    t: &mut Testnet,
    clip: &str,
    name: &str,
    part_ms: &str,
) -> Result<tokio::process::Child> {
    let mut p = t.publish(
        0,
        &[
            "--name",
            name,
            "--input",
            clip,
            "--realtime",
            "--part-ms",
            part_ms,
        ],
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

/// The accounts of the line's nodes when fees are on (all funded at the
/// dev chain's genesis).
const ACCOUNTS: [&str; 5] = ["//Alice", "//Bob", "//Charlie", "//Dave", "//Eve"];
/// Every node but the last charges this per MiB and pays up to `MAX_FEE`.
const FEE: &str = "1mTICK/MiB";
const MAX_FEE: &str = "5mTICK/MiB";

/// What one run of the line measured.
struct LineFigures {
    /// Publish-to-playable at 1 to 4 hops: (chunks, p50, p99, max) ms.
    hops: Vec<(usize, u64, u64, u64)>,
    /// Relay (node 2) CPU seconds, wall seconds, peak RSS KiB.
    relay: (f64, f64, u64),
    /// Inbound transport bytes ÷ stream bytes at nodes 1 to 4.
    amplification: Vec<f64>,
    stream_bytes: u64,
    media_s: f64,
    /// Bandwidth vouchers signed by nodes 1 to 4, in all.
    vouchers: f64,
    /// Payload bytes served by nodes 0 to 3, in all.
    served: f64,
    /// With fees: planck per bandwidth claim, claims made, MiB per claim.
    claims: Option<(u128, usize, f64)>,
    /// With parts: delay from a part's end at the creator to its listing
    /// at hops 1 to 4: (parts, p50, p99) ms.
    part_delay: Vec<(usize, u64, u64)>,
    /// Gossip messages on the stream topic validated by the relay, per
    /// second of media.
    gossip_per_s: f64,
}

/// What an LL-HLS playlist of ours says of its segment in progress: its
/// media sequence number and the end time (creator's clock, unix ms) of
/// each listed part.
fn open_parts(list: &str) -> Option<(u64, Vec<u64>)> {
    let mut msn: u64 = list
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .parse()
        .ok()?;
    let mut pdt = None;
    let mut ends = vec![];
    for line in list.lines() {
        if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = parse_iso8601_ms(d);
            ends.clear();
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            let d: f64 = rest.split(',').next()?.parse().ok()?;
            let start = ends.last().copied().or(pdt)?;
            ends.push(start + (d * 1000.0).round() as u64);
        } else if !line.starts_with('#') && !line.is_empty() {
            // A complete segment: what follows is the next one.
            msn += 1;
            ends.clear();
            pdt = None;
        }
    }
    Some((msn, ends))
}

/// Unix ms of `2026-12-07T01:50:21.123Z` (what our playlists write).
fn parse_iso8601_ms(s: &str) -> Option<u64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (h, mi, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs as u64 * 1000 + ms.parse::<u64>().ok()?)
}

/// Follows `stream`'s playlist at `api` as an LL-HLS client does (blocking
/// reloads for the next part) until `stop`; returns, for every part, the
/// delay from its end at the creator to the answer that listed it (ms).
async fn follow_parts(
    api: vilokanam_testnet::Api,
    stream: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<u64> {
    let http = vilokanam_api::reqwest::Client::new();
    let mut seen = std::collections::HashSet::new();
    let mut delays = vec![];
    let mut next: Option<(u64, usize)> = None;
    while !*stop.borrow() {
        let mut url = api.playlist_url(&stream);
        if let Some((msn, part)) = next {
            url.push_str(&format!("?_HLS_msn={msn}&_HLS_part={part}"));
        }
        let answer = tokio::select! {
            r = http.get(&url).timeout(Duration::from_secs(10)).send() => r,
            _ = stop.changed() => break,
        };
        let list = match answer {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            // 503 (nothing came in time) or not yet watched: ask again
            // without a directive after a short pause.
            _ => {
                next = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let now = vilokanam_swarm::protocols::live::actor::unix_ms();
        let Some((msn, ends)) = open_parts(&list) else {
            next = None;
            continue;
        };
        for (k, end) in ends.iter().enumerate() {
            if seen.insert((msn, k)) {
                delays.push(now.saturating_sub(*end));
            }
        }
        next = Some((msn, ends.len()));
    }
    delays
}

/// A line of 5 (node 0 publishes, nodes 1-4 watch); with `chain`, every
/// node has a dev account, nodes 0-3 charge [`FEE`] and every node pays.
async fn line(
    bin: &std::path::Path,
    clip: &str,
    chain: Option<&str>,
    part_ms: &str,
) -> Result<LineFigures> {
    let mut t = Testnet::new(bin, None)?;
    for (i, account) in ACCOUNTS.iter().enumerate() {
        let mut extra = vec![];
        if let Some(rpc) = chain {
            t.import_account(i, account, rpc).await?;
            extra.extend(["--chain-rpc", rpc, "--max-fee", MAX_FEE]);
            if i < 4 {
                extra.extend(["--fee", FEE]);
            }
        }
        t.spawn(NodeOptions {
            relay: true,
            bootstrap: if i == 0 { vec![] } else { vec![i - 1] },
            extra: extra.into_iter().map(String::from).collect(),
            ..NodeOptions::default()
        })
        .await?;
    }
    t.wait_connected().await?;
    let name = "bench-line";
    let stream = stream_of(&t, name).await?;
    for i in 1..5 {
        t.api(i)?.watch(&stream).await?;
    }
    let inbound = "libp2p_bandwidth_bytes_total";
    let mut before = vec![];
    for i in 1..5 {
        before.push(
            t.api(i)?
                .metric(inbound, &["direction=\"Inbound\""])
                .await?,
        );
    }
    let relay_pid = t.node(2)?.pid;
    let (cpu0, _) = proc_usage(relay_pid)?;
    let gossip = "vilokanam_swarm_gossip";
    let gossip0 = t.api(2)?.metric(gossip, &["kind=\"chunk\""]).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut followers = vec![];
    for hop in 1..5 {
        followers.push(tokio::spawn(follow_parts(
            t.api(hop)?,
            stream.clone(),
            stop_rx.clone(),
        )));
    }
    let t0 = Instant::now();
    let mut p = publish(&mut t, clip, name, part_ms).await?;
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
    let gossip1 = t.api(2)?.metric(gossip, &["kind=\"chunk\""]).await?;
    let _ = stop_tx.send(true);
    let mut part_delay = vec![];
    for f in followers {
        let mut d = f.await.unwrap_or_default();
        d.sort_unstable();
        part_delay.push((d.len(), percentile(&d, 0.5), percentile(&d, 0.99)));
    }
    let cpu = (cpu1 - cpu0) as f64 / clk_tck();
    let chunks = t.api(0)?.chunks(&stream).await?;
    let stream_bytes: u64 = chunks.iter().map(|c| u64::from(c.size)).sum();
    let media_s: f64 = chunks.iter().map(|c| f64::from(c.duration_us) / 1e6).sum();
    let mut hops = vec![];
    for hop in 1..5 {
        let chunks = t.api(hop)?.chunks(&stream).await?;
        let mut lat: Vec<u64> = chunks
            .iter()
            .map(|c| c.ready_at_ms.saturating_sub(c.published_at_ms))
            .collect();
        lat.sort_unstable();
        hops.push((
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0),
        ));
    }
    let mut amplification = vec![];
    let mut vouchers = 0.0;
    let mut served = 0.0;
    for i in 1..5 {
        let api = t.api(i)?;
        let after = api.metric(inbound, &["direction=\"Inbound\""]).await?;
        amplification.push((after - before[i - 1]) / stream_bytes as f64);
        vouchers += api
            .metric("vilokanam_node_bandwidth_vouchers_out", &[])
            .await?;
    }
    for i in 0..4 {
        served += t
            .api(i)?
            .metric("vilokanam_swarm_payload_bytes_out", &[])
            .await?;
    }
    // What one bandwidth claim costs on chain (a claim that binds a late
    // payee): every server claims what it holds now, and the fee is what
    // its balance lacks of what it claimed.
    let mut claims = None;
    if let Some(rpc) = chain {
        let client =
            vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(rpc.to_owned()))
                .await?;
        // Every payer pays what verified last before the claims.
        for i in 1..5 {
            t.api(i)?.unwatch(&stream).await?;
        }
        let (mut fees, mut count, mut claimed_mib) = (0u128, 0usize, 0.0);
        for (i, uri) in ACCOUNTS.iter().enumerate().take(4) {
            let me = vilokanam_chain::account::account_id(&vilokanam_chain::account::keypair(uri)?);
            let api = t.api(i)?;
            let before = client.balance(&me).await?;
            let held = api.earnings().await?;
            let n = held
                .iter()
                .filter(|e| e.stream == "bandwidth" && e.accrued != e.claimed)
                .count();
            let got: u128 = api.claim().await?.parse().unwrap_or(0);
            let after = client.balance(&me).await?;
            let total = |b: &vilokanam_chain::AccountBalance| b.free + b.reserved;
            fees += (total(&before) + got).saturating_sub(total(&after));
            count += n;
            claimed_mib +=
                api.metric("vilokanam_swarm_payload_bytes_out", &[]).await? / 1_048_576.0;
        }
        claims = Some((
            fees / count.max(1) as u128,
            count,
            claimed_mib / count.max(1) as f64,
        ));
    }
    t.shutdown().await?;
    Ok(LineFigures {
        hops,
        relay: (cpu, wall, hwm),
        amplification,
        stream_bytes,
        media_s,
        vouchers,
        served,
        claims,
        part_delay,
        gossip_per_s: (gossip1 - gossip0) / media_s,
    })
}

/// Prints what parts cost: the line without and with them.
fn compare_parts(off: &LineFigures, on: &LineFigures) {
    print_line(on, " with LL-HLS parts of 300 ms");
    println!();
    println!("## parts on vs off (same clip, same line)");
    common_rows(off, on);
    println!(
        "| gossip messages/s on the stream topic at the relay | {:.2} | {:.2} | ×{:.1} |",
        off.gossip_per_s,
        on.gossip_per_s,
        on.gossip_per_s / off.gossip_per_s.max(1e-9)
    );
    println!(
        "| segment publish-to-playable p50 at 4 hops (ms) | {} | {} | {:+} ms |",
        off.hops[3].1,
        on.hops[3].1,
        on.hops[3].1 as i64 - off.hops[3].1 as i64
    );
    println!();
    println!("delay from a part's end at the creator to its listing (blocking reload answered):");
    println!("| hops | parts | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (i, (n, p50, p99)) in on.part_delay.iter().enumerate() {
        println!("| {} | {n} | {p50} | {p99} |", i + 1);
    }
    let per_hop = (on.part_delay[3].1 as f64 - on.part_delay[0].1 as f64) / 3.0;
    println!("p50 per hop (hops 1→4): {per_hop:.1} ms per part");
}

fn print_line(f: &LineFigures, label: &str) {
    println!();
    println!(
        "## line of 5 nodes{label}: {} chunks, {:.2} Mbit/s of chunk payload",
        f.hops[0].0,
        f.stream_bytes as f64 * 8.0 / f.media_s / 1e6
    );
    println!("| hops | chunks | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (i, (n, p50, p99, max)) in f.hops.iter().enumerate() {
        println!("| {} | {n} | {p50} | {p99} | {max} |", i + 1);
    }
    let (cpu, wall, hwm) = f.relay;
    println!();
    println!(
        "relay (node 2 of the line, serving node 3): CPU {cpu:.2} s over {wall:.1} s wall = {:.1} % of one core; peak RSS {:.1} MiB",
        cpu / wall * 100.0,
        hwm as f64 / 1024.0
    );
    println!(
        "download amplification (inbound transport bytes ÷ stream bytes), nodes 1-4: {}",
        f.amplification
            .iter()
            .map(|a| format!("{a:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// The rows of an on-vs-off table every comparison has: amplification,
/// relay CPU and peak RSS.
fn common_rows(off: &LineFigures, on: &LineFigures) {
    println!("| figure | off | on | difference |");
    println!("|---|---|---|---|");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (a0, a1) = (mean(&off.amplification), mean(&on.amplification));
    println!(
        "| amplification, mean of nodes 1-4 | {a0:.4} | {a1:.4} | {:+.2} % |",
        (a1 / a0 - 1.0) * 100.0
    );
    let cpu = |f: &LineFigures| f.relay.0 / f.relay.1 * 100.0;
    println!(
        "| relay CPU (% of one core) | {:.2} | {:.2} | {:+.2} points |",
        cpu(off),
        cpu(on),
        cpu(on) - cpu(off)
    );
    println!(
        "| relay peak RSS (MiB) | {:.1} | {:.1} | {:+.1} |",
        off.relay.2 as f64 / 1024.0,
        on.relay.2 as f64 / 1024.0,
        (on.relay.2 as f64 - off.relay.2 as f64) / 1024.0
    );
}

/// Prints both runs and what payments cost.
fn compare(off: &LineFigures, on: &LineFigures) {
    print_line(
        on,
        &format!(" with relay fees ({FEE} per node, every node paying)"),
    );
    println!();
    println!("## payments on vs off (same clip, same line)");
    common_rows(off, on);
    // Latency added per hop: the slope of p50 over hop count.
    let per_hop = |f: &LineFigures| (f.hops[3].1 as f64 - f.hops[0].1 as f64) / 3.0;
    println!(
        "| p50 latency per hop (ms, hops 1→4) | {:.1} | {:.1} | {:+.1} ms |",
        per_hop(off),
        per_hop(on),
        per_hop(on) - per_hop(off)
    );
    println!(
        "| p50 at 4 hops (ms) | {} | {} | {:+} ms |",
        off.hops[3].1,
        on.hops[3].1,
        on.hops[3].1 as i64 - off.hops[3].1 as i64
    );
    let mib = on.served / 1_048_576.0;
    let pay = vilokanam_swarm::wire::ChunkRequest::Pay(vilokanam_swarm::BandwidthPayment {
        channel: u64::from(u32::MAX),
        cumulative: u128::from(u64::MAX),
        signature: vilokanam_swarm::wire::Sig([0; 64]),
    })
    .encode()
    .len();
    println!();
    println!(
        "vouchers: {:.0} signed by nodes 1-4 for {mib:.1} MiB served = {:.2} vouchers per MiB, {:.2} vouchers/s per paying node over {:.1} s of media; a voucher is {pay} bytes on the wire (request body) = {:.0} voucher bytes per MiB served",
        on.vouchers,
        on.vouchers / mib,
        on.vouchers / 4.0 / on.media_s,
        on.media_s,
        on.vouchers * pay as f64 / mib
    );
    if let Some((fee, n, mib_per_claim)) = on.claims {
        println!(
            "bandwidth claims: {n}, {} each on chain (binding a late payee); a claim pays for itself from a fee of (claim fee ÷ MiB it claims): at this run's {mib_per_claim:.1} MiB per claim {}; at one viewer-hour of 4 Mbit/s (1,717 MiB) per claim {}",
            vilokanam_chain::format_amount(fee),
            vilokanam_chain::format_fee((fee as f64 / mib_per_claim).ceil() as u64),
            vilokanam_chain::format_fee((fee as f64 / 1717.0).ceil() as u64)
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let bin = vilokanam_testnet::bench::daemon_binary()?;
    let payments = std::env::args().any(|a| a == "--payments");
    let parts = std::env::args().any(|a| a == "--parts");
    let seconds = 30;
    let scratch = tempfile::tempdir()?;
    let clip = scratch.path().join("clip.ts");
    println!("making a {seconds} s 1280x720 H.264 clip at 4 Mbit/s with ffmpeg …");
    if !make_test_clip(&clip, seconds, 4000, "1280x720")? {
        bail!("the benchmark needs ffmpeg (apt-get install ffmpeg)");
    }
    let clip_s = clip.to_string_lossy().into_owned();

    // 1. Line of 5: latency per hop count, relay CPU and RSS, and the
    // same line again with relay fees on (each node pays its upstream).
    let off = line(&bin, &clip_s, None, "0").await?;
    print_line(&off, "");
    if parts {
        let on = line(&bin, &clip_s, None, "300").await?;
        compare_parts(&off, &on);
        return Ok(());
    }
    if payments {
        let scratch = tempfile::tempdir()?;
        let parts = vilokanam_chain::dev_chain::DevChainParts::for_testnet(scratch.path()).await?;
        let chain = vilokanam_chain::dev_chain::DevChain::start(&parts).await?;
        let on = line(&bin, &clip_s, Some(&chain.ws_url), "0").await;
        chain.stop().await?;
        compare(&off, &on?);
        return Ok(());
    }

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
    let mut p = publish(&mut t, &clip_s, name, "0").await?;
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
