//! Key-service benchmark: one creator `vilokanam daemon` selling the epoch
//! keys of a paid stream to N paying viewers, each a real libp2p node
//! (this process runs them all) with its own channel on the dev chain.
//! Prints figures; asserts nothing.
//!
//! ```text
//! cargo build --release -p vilokanam
//! cargo run --release -p vilokanam-testnet --bin key-bench -- --viewers 1000 --secs 60 --wave 100
//! ```
//!
//! Each viewer does what a watching viewer's node does once per epoch: it
//! signs a voucher for the epochs it has (the key server's rule: `n`
//! epochs paid before the `n+1`-th key) and asks the creator's node for
//! the current epoch's key over `/vilokanam/keys/2`, at a random phase in
//! the epoch. The creator's node checks each channel on the chain once,
//! each voucher as the pallet would, stores the best one in sled
//! (flushed) before answering, and seals the key. Measured over `--secs`
//! after every viewer has its first key: the creator daemon's CPU time
//! (from `/proc`), its peak RSS, answers and refusals, and the latency of
//! a key request as a viewer sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use vilokanam_chain::account::{account_id, keypair};
use vilokanam_chain::dev_chain::{BlockMode, DevChain, DevChainParts};
use vilokanam_chain::{Endpoint, OpenTerms, Settlement, Voucher};
use vilokanam_swarm::libp2p::{identity, Multiaddr, PeerId};
use vilokanam_swarm::protocols::keys::paywall::epoch_at;
use vilokanam_swarm::protocols::keys::wire::{KeyRefusal, KeyRequest, KeyResponse, Payment};
use vilokanam_swarm::wire::Sig;
use vilokanam_swarm::StreamId;
use vilokanam_testnet::bench::{clk_tck, percentile, proc_usage};
use vilokanam_testnet::{wait_until, NodeOptions, Testnet};

/// Planck per second of the benchmark's stream (1 µTICK/s).
const PRICE: u128 = 1_000_000;
/// Each viewer's deposit (1 TICK: far more than a run spends).
const DEPOSIT: u128 = 1_000_000_000_000;

struct Args {
    viewers: usize,
    secs: u64,
    epoch_secs: u32,
    /// Viewers started per wave; the next wave starts when this one has
    /// its first keys (each first key costs the creator chain queries).
    wave: usize,
    /// Sell keys on the creator's main listener (`key_listen = []`)
    /// instead of its key-only listener.
    main_listener: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        viewers: 1000,
        secs: 60,
        epoch_secs: 6,
        wave: usize::MAX,
        main_listener: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--viewers" => a.viewers = v.parse()?,
            "--secs" => a.secs = v.parse()?,
            "--epoch-secs" => a.epoch_secs = v.parse()?,
            "--wave" => a.wave = v.parse::<usize>()?.max(1),
            // Read by `daemon_binary`.
            "--bin" => {}
            "--key-listener" => match v.as_str() {
                "own" => a.main_listener = false,
                "main" => a.main_listener = true,
                _ => bail!("--key-listener own|main"),
            },
            _ => bail!(
                "unknown flag {flag} (--viewers N, --secs S, --epoch-secs E, --wave W, --key-listener own|main)"
            ),
        }
    }
    Ok(a)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the viewers saw, shared by their tasks.
#[derive(Default)]
struct Tally {
    granted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    /// Request latencies (µs) while measuring.
    latencies: Mutex<Vec<u64>>,
    measuring: std::sync::atomic::AtomicBool,
    first_keys: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// One viewer: its own libp2p node, channel and voucher key.
struct Viewer {
    client: vilokanam_swarm::Client,
    voucher_key: ed25519_dalek::SigningKey,
    channel: u64,
}

#[allow(clippy::too_many_arguments)]
async fn run_viewer(
    v: Viewer,
    stream: StreamId,
    server: PeerId,
    addrs: Vec<Multiaddr>,
    genesis: [u8; 32],
    payee: [u8; 32],
    epoch_secs: u32,
    phase_ms: u64,
    tally: Arc<Tally>,
) {
    let epoch_ms = u64::from(epoch_secs) * 1000;
    let mut keys_had: u128 = 0;
    // What the key server asked for when a grant was lost on the way (a
    // timeout after the server gave the key): paid at once, as a
    // viewer's node does.
    let mut owed: u128 = 0;
    let mut last_epoch = None;
    let mut got_first = false;
    loop {
        // Wake at this viewer's phase in the next epoch.
        let now = now_ms();
        let next = (now / epoch_ms) * epoch_ms + phase_ms;
        let at = if next > now { next } else { next + epoch_ms };
        tokio::time::sleep(Duration::from_millis(at - now)).await;
        let epoch = epoch_at(now_ms(), epoch_secs);
        if last_epoch == Some(epoch) {
            continue;
        }
        let cumulative = (keys_had * u128::from(epoch_secs) * PRICE).max(owed).max(1);
        let voucher = Voucher::sign(&v.voucher_key, genesis, v.channel, payee, cumulative);
        let request = KeyRequest {
            stream: stream.clone(),
            epoch,
            channel: v.channel,
            payment: Some(Payment {
                cumulative,
                signature: Sig(voucher.signature),
            }),
            holder: None,
        };
        let started = Instant::now();
        let r = v.client.request_key(server, addrs.clone(), request).await;
        let took = started.elapsed().as_micros() as u64;
        match r {
            Ok(KeyResponse::Granted { .. }) => {
                if !got_first {
                    got_first = true;
                    tally.first_keys.fetch_add(1, Ordering::Relaxed);
                }
                keys_had += 1;
                last_epoch = Some(epoch);
                if tally.measuring.load(Ordering::Relaxed) {
                    tally.granted.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = tally.latencies.lock() {
                        l.push(took);
                    }
                }
            }
            Ok(KeyResponse::Refused(KeyRefusal::Unpaid { required, .. })) => {
                // The server counts a key this viewer never received:
                // count it too, and pay for it.
                owed = owed.max(required);
                keys_had = keys_had.max(required / (u128::from(epoch_secs) * PRICE));
                tally.refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok(KeyResponse::Refused(reason)) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = tally.last_error.lock() {
                    *e = Some(format!("refused: {reason:?}"));
                }
            }
            Err(e) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = tally.last_error.lock() {
                    *l = Some(e.to_string());
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let bin = vilokanam_testnet::bench::daemon_binary()?;
    let work = tempfile::tempdir()?;
    let parts = DevChainParts::for_testnet(work.path()).await?;
    let chain = DevChain::start_with(&parts, BlockMode::Batch).await?;
    let client = Settlement::connect(&Endpoint::Rpc(chain.ws_url.clone())).await?;
    let genesis = client.genesis();
    let creator_account = keypair("//Alice")?;
    let payee = account_id(&creator_account).0;

    // The creator: a daemon with room for every viewer's connection.
    let mut t = Testnet::new(&bin, None)?;
    let dir = t.root().join("node0");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "max_connections = {}\n{}",
            a.viewers + 64,
            if a.main_listener {
                "key_listen = []\n"
            } else {
                ""
            }
        ),
    )?;
    let import = tokio::process::Command::new(&bin)
        .args(["account", "import", "//Alice", "--data-dir"])
        .arg(&dir)
        .args(["--chain-rpc", &chain.ws_url])
        .output()
        .await?;
    if !import.status.success() {
        bail!(
            "account import: {}",
            String::from_utf8_lossy(&import.stderr)
        );
    }
    t.spawn(NodeOptions {
        extra: vec!["--chain-rpc".into(), chain.ws_url.clone()],
        ..Default::default()
    })
    .await?;
    let mut publisher = t.publish_paid(0, "1µTICK/s", a.epoch_secs, &chain.ws_url)?;
    let node = t.node(0)?;
    let (creator_pid, server): (u32, PeerId) = (node.pid, node.peer_id.parse()?);
    let stream: StreamId = node.stream("paid").parse().map_err(anyhow::Error::msg)?;
    let api = t.api(0)?;
    // Where a viewer buys keys: the addresses the offer names (the
    // creator's key-only listener unless it runs with `key_listen = []`).
    let addrs: Vec<Multiaddr> = api
        .id()
        .await?
        .key_addrs
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    println!("key server addresses: {addrs:?}");
    let sid = stream.to_string();
    wait_until(
        "the paid stream is live",
        Duration::from_secs(30),
        || async {
            Ok(api
                .stream(&sid)
                .await
                .map(|s| s.offer.is_some())
                .unwrap_or(false))
        },
    )
    .await?;

    // The viewers' channels, opened by eleven dev accounts at once (the
    // chain batches what arrives together).
    let payers = [
        "//Bob",
        "//Charlie",
        "//Dave",
        "//Eve",
        "//Ferdie",
        "//Bob//stash",
        "//Charlie//stash",
        "//Dave//stash",
        "//Eve//stash",
        "//Ferdie//stash",
        "//Alice//stash",
    ];
    let opened = Instant::now();
    let expires_at = u32::try_from(client.finalized_number().await?)? + 100_000;
    let keys: Vec<ed25519_dalek::SigningKey> = (0..a.viewers)
        .map(|_| ed25519_dalek::SigningKey::from_bytes(&rand::random()))
        .collect();
    let mut opening = tokio::task::JoinSet::new();
    for (p, uri) in payers.iter().enumerate() {
        let client = client.clone();
        let account = keypair(uri)?;
        let mine: Vec<(usize, [u8; 32])> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| i % payers.len() == p)
            .map(|(i, k)| (i, k.verifying_key().to_bytes()))
            .collect();
        opening.spawn(async move {
            let mut out = Vec::new();
            for (i, key) in mine {
                let terms = OpenTerms::single(payee.into(), DEPOSIT, expires_at);
                let r = client.open(&account, key, &terms).await?;
                out.push((i, r.outcome.id));
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    let mut channels = vec![0u64; a.viewers];
    while let Some(r) = opening.join_next().await {
        for (i, id) in r?? {
            channels[i] = id;
        }
    }
    println!(
        "opened {} channels in {:.1} s",
        a.viewers,
        opened.elapsed().as_secs_f64()
    );

    // The creator's own cost of publishing the paid stream (no viewers
    // yet), to tell the key service's share apart.
    let (b0, _) = proc_usage(creator_pid)?;
    let base_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (b1, _) = proc_usage(creator_pid)?;
    let baseline = (b1 - b0) as f64 / clk_tck() / base_started.elapsed().as_secs_f64();

    // The viewers' nodes.
    let tally = Arc::new(Tally::default());
    let epoch_ms = u64::from(a.epoch_secs) * 1000;
    let warm = Instant::now();
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 && i % a.wave == 0 {
            // Let this wave's first requests (and their channel checks on
            // the chain) finish before the next wave starts.
            let wave_started = Instant::now();
            while (tally.first_keys.load(Ordering::Relaxed) as usize) < i
                && wave_started.elapsed() < Duration::from_secs(120)
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            println!(
                "{} of {i} viewers have a first key after {:.1} s",
                tally.first_keys.load(Ordering::Relaxed),
                warm.elapsed().as_secs_f64()
            );
        }
        let config = vilokanam_swarm::Config {
            discovery: false,
            event_buffer: 16,
            event_backlog: 64,
            ..Default::default()
        };
        let (client, mut events, event_loop) = vilokanam_swarm::new(
            identity::Keypair::generate_ed25519(),
            config,
            &mut prometheus_client::registry::Registry::default(),
        )?;
        tokio::spawn(event_loop.run());
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        let v = Viewer {
            client,
            voucher_key: key,
            channel: channels[i],
        };
        let phase = rand::random::<u64>() % epoch_ms;
        tokio::spawn(run_viewer(
            v,
            stream.clone(),
            server,
            addrs.clone(),
            genesis,
            payee,
            a.epoch_secs,
            phase,
            tally.clone(),
        ));
    }
    while (tally.first_keys.load(Ordering::Relaxed) as usize) < a.viewers {
        // Each first request has the creator's node check the channel on
        // the chain (one snapshot: channel, payees, block); on chopsticks, whose storage queries
        // take tens of ms each on one JS thread, a thousand of them take
        // minutes. Viewers refused or timed out retry the next epoch.
        if warm.elapsed() > Duration::from_secs(900) {
            bail!(
                "only {} of {} viewers got a first key in 900 s (last error: {:?})",
                tally.first_keys.load(Ordering::Relaxed),
                a.viewers,
                tally.last_error.lock().ok().and_then(|e| e.clone())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "every viewer has its first key after {:.1} s ({} refused, {} failed meanwhile)",
        warm.elapsed().as_secs_f64(),
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );

    // Measure.
    let (cpu0, _) = proc_usage(creator_pid)?;
    let me = std::process::id();
    let (own0, _) = proc_usage(me)?;
    tally.refused.store(0, Ordering::Relaxed);
    tally.failed.store(0, Ordering::Relaxed);
    tally.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.secs)).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let wall = started.elapsed().as_secs_f64();
    let (cpu1, hwm) = proc_usage(creator_pid)?;
    let (own1, _) = proc_usage(me)?;
    let tck = clk_tck();
    let creator_cpu = (cpu1 - cpu0) as f64 / tck;
    let mut lat = tally
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    lat.sort_unstable();
    let granted = tally.granted.load(Ordering::Relaxed);
    println!(
        "viewers: {}, epoch {} s, {wall:.1} s measured",
        a.viewers, a.epoch_secs
    );
    println!(
        "keys granted: {granted} ({:.1}/s; {:.2}/s per viewer), refused {}, failed {}",
        granted as f64 / wall,
        granted as f64 / wall / a.viewers as f64,
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );
    println!(
        "creator daemon: CPU {creator_cpu:.2} s = {:.1} % of one core ({:.1} % before any viewer: publishing the stream), peak RSS {:.1} MiB",
        100.0 * creator_cpu / wall,
        100.0 * baseline,
        hwm as f64 / 1024.0
    );
    println!(
        "key request latency at the viewer: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.5) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "this process ({} viewer nodes): CPU {:.1} % of one core",
        a.viewers,
        100.0 * (own1 - own0) as f64 / tck / wall
    );
    if let Ok(Some(e)) = tally.last_error.lock().map(|e| e.clone()) {
        println!("last error seen: {e}");
    }
    let _ = publisher.start_kill();
    let _ = publisher.wait().await;
    t.kill(0).await?;
    chain.stop().await?;
    Ok(())
}
