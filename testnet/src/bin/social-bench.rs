//! Community benchmarks; prints figures, asserts nothing.
//!
//! - `search`: the node's search index (tantivy, in memory) filled with
//!   `--docs` streams (titles and tags drawn from a word list, a name per
//!   creator), then `--queries` queries of one or two words, one tag, or a
//!   word and a tag: the time of each query (p50/p99/max).
//! - `dht`: `--nodes` libp2p nodes in this process (loopback, discovery
//!   on) around one bootstrap node; a bare Kademlia put of `--records`
//!   profiles (no gossip), then each resolved by a node that joined after
//!   the puts and holds nothing: the time of each lookup.
//! - `feed`: real `vilokanam` daemons in a line of `--hops` + 1 (no
//!   discovery); the last node's user follows the first node's creator;
//!   the first node goes live `--rounds` times (a `vilokanam publish` of
//!   the shipped fixture, four stream names in turn, each ended before the
//!   next starts):
//!   the time from starting the publisher to the follower's `live`
//!   notification (server-sent event).
//!
//! ```text
//! cargo build --release -p vilokanam -p vilokanam-testnet --bin social-bench
//! target/release/social-bench search --docs 10000 --queries 2000
//! target/release/social-bench dht --nodes 20 --records 50
//! target/release/social-bench feed --hops 4 --rounds 20 --bin target/release/vilokanam
//! ```

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use prometheus_client::registry::Registry;
use vilokanam_storage::search::{Doc, DocKind, SearchIndex, SearchQuery};
use vilokanam_swarm::libp2p::kad::{self, Quorum};
use vilokanam_swarm::libp2p::swarm::SwarmEvent;
use vilokanam_swarm::libp2p::{identity, Multiaddr};
use vilokanam_swarm::protocols::live::actor::unix_ms;
use vilokanam_swarm::protocols::social::{Profile, SocialRecord};
use vilokanam_swarm::{Config, Event};
use vilokanam_testnet::bench::percentile;
use vilokanam_testnet::{NodeOptions, Testnet, FIXTURE};

const WORDS: &[&str] = &[
    "chess",
    "speedrun",
    "cooking",
    "music",
    "piano",
    "guitar",
    "retro",
    "strategy",
    "puzzle",
    "racing",
    "football",
    "coding",
    "rust",
    "painting",
    "drawing",
    "science",
    "space",
    "travel",
    "fitness",
    "yoga",
    "poker",
    "horror",
    "minecraft",
    "tetris",
    "opening",
    "endgame",
    "blitz",
    "tutorial",
    "live",
    "jam",
    "ranked",
    "casual",
    "marathon",
    "review",
    "news",
    "talk",
    "podcast",
    "drums",
    "jazz",
    "synth",
    "garden",
    "baking",
    "pasta",
    "sushi",
    "climbing",
    "cycling",
    "hiking",
    "astronomy",
    "physics",
    "history",
];

fn flag(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name}: not a number")),
        None => Ok(default),
    }
}

fn report(what: &str, mut us: Vec<u64>) {
    us.sort_unstable();
    println!(
        "{what}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        us.len(),
        percentile(&us, 0.5) as f64 / 1000.0,
        percentile(&us, 0.99) as f64 / 1000.0,
        us.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}

fn word(r: &mut u64) -> &'static str {
    // xorshift: reproducible without a seeded RNG dependency.
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    WORDS[(*r % WORDS.len() as u64) as usize]
}

fn search(docs: usize, queries: usize) -> Result<()> {
    let ix = SearchIndex::new()?;
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    let t0 = Instant::now();
    for i in 0..docs {
        let creator = format!("{:064x}", i % (docs / 4).max(1));
        let title = format!("{} {} {} #{i}", word(&mut r), word(&mut r), word(&mut r));
        let tags = vec![word(&mut r).to_owned(), word(&mut r).to_owned()];
        ix.upsert(Doc {
            kind: if i % 5 == 0 {
                DocKind::Vod
            } else {
                DocKind::Stream
            },
            id: format!("doc{i}"),
            creator: creator.clone(),
            title,
            tags,
            at_ms: i as u64,
        })?;
        if i % 4 == 0 {
            ix.set_name(&creator, &format!("{} {}", word(&mut r), word(&mut r)))?;
        }
    }
    ix.commit()?;
    println!("indexed {docs} documents in {:?}", t0.elapsed());
    let mut times = Vec::with_capacity(queries);
    let mut hits = 0usize;
    for i in 0..queries {
        let q = match i % 4 {
            0 => SearchQuery {
                text: Some(word(&mut r).into()),
                tag: None,
                limit: 20,
            },
            1 => SearchQuery {
                text: Some(format!("{} {}", word(&mut r), word(&mut r))),
                tag: None,
                limit: 20,
            },
            2 => SearchQuery {
                text: None,
                tag: Some(word(&mut r).into()),
                limit: 20,
            },
            _ => SearchQuery {
                text: Some(word(&mut r).into()),
                tag: Some(word(&mut r).into()),
                limit: 20,
            },
        };
        let t = Instant::now();
        hits += ix.search(&q)?.len();
        times.push(t.elapsed().as_micros() as u64);
    }
    report(
        &format!(
            "search over {docs} documents ({:.1} hits per query)",
            hits as f64 / queries as f64
        ),
        times,
    );
    Ok(())
}

async fn swarm_node(
    discovery: bool,
) -> Result<(
    vilokanam_swarm::Client,
    Multiaddr,
    tokio::sync::mpsc::Receiver<Event>,
)> {
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        discovery,
        ..Config::default()
    };
    let (client, mut rx, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        config,
        &mut Registry::default(),
    )?;
    tokio::spawn(event_loop.run());
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Event::Listening(a))) => {
                let addr = a
                    .with_p2p(client.peer_id())
                    .map_err(|_| anyhow::anyhow!("p2p"))?;
                return Ok((client, addr, rx));
            }
            Ok(Some(_)) => {}
            _ => bail!("no listen address in 10 s"),
        }
    }
}

/// Drains a node's events (the channel must not fill).
fn drain(mut rx: tokio::sync::mpsc::Receiver<Event>) {
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
}

async fn dht(nodes: usize, records: usize) -> Result<()> {
    let (boot, boot_addr, rx) = swarm_node(true).await?;
    drain(rx);
    let mut all = vec![boot];
    for _ in 1..nodes {
        let (c, _, rx) = swarm_node(true).await?;
        drain(rx);
        c.dial(boot_addr.clone()).await?;
        all.push(c);
    }
    // A bare Kademlia peer puts the records: no gossip, the DHT only.
    let mut swarm = vilokanam_swarm::build_swarm(
        identity::Keypair::generate_ed25519(),
        &Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            ..Config::default()
        },
        &mut Registry::default(),
    )?;
    let boot_peer = all[0].peer_id();
    swarm
        .behaviour_mut()
        .kad
        .add_address(&boot_peer, boot_addr.clone());
    swarm.dial(boot_addr.clone())?;
    // Let Kademlia learn the others through the bootstrap node.
    let _ = swarm.behaviour_mut().kad.bootstrap();
    let boot_deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < boot_deadline {
        if let Ok(SwarmEvent::Behaviour(vilokanam_swarm::behaviour::BehaviourEvent::Kad(
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(_),
                step,
                ..
            },
        ))) = tokio::time::timeout(Duration::from_secs(10), swarm.select_next_some()).await
        {
            if step.last {
                break;
            }
        }
    }
    let now = unix_ms();
    let mut keys = Vec::new();
    let mut put_times = Vec::new();
    for i in 0..records {
        let key = SigningKey::from_bytes(&{
            let mut b = [7u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            b
        });
        let record = SocialRecord::Profile(
            Profile {
                creator: key.verifying_key().to_bytes(),
                version: now,
                expires_ms: now + 3_600_000,
                name: format!("creator {i}"),
                bio: String::new(),
                avatar: None,
            }
            .sign(&key)?,
        );
        let k = record.key();
        keys.push(k);
        let t = Instant::now();
        let id = swarm
            .behaviour_mut()
            .kad
            .put_record(kad::Record::new(k.to_bytes(), record.encode()), Quorum::One)?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), swarm.select_next_some()).await {
                Ok(SwarmEvent::Behaviour(vilokanam_swarm::behaviour::BehaviourEvent::Kad(
                    kad::Event::OutboundQueryProgressed {
                        id: qid,
                        result: kad::QueryResult::PutRecord(r),
                        ..
                    },
                ))) if qid == id => {
                    r.map_err(|e| anyhow::anyhow!("put {i}: {e}"))?;
                    break;
                }
                Ok(_) => {}
                Err(_) => bail!("put {i}: no answer in 30 s"),
            }
        }
        put_times.push(t.elapsed().as_micros() as u64);
    }
    let pump = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    report(&format!("DHT put (quorum 1, {nodes} nodes)"), put_times);
    // Resolved by a node that joined after the puts and holds nothing.
    let (late, _, mut rx) = swarm_node(true).await?;
    late.dial(boot_addr.clone()).await?;
    // Its routing table has the bootstrap node (identify, then Kademlia).
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Event::DhtPeer(p))) if p == boot_peer => break,
            Ok(Some(_)) => {}
            _ => bail!("the late node never had the bootstrap node in its routing table"),
        }
    }
    drain(rx);
    let mut times = Vec::new();
    let mut found = 0;
    for k in &keys {
        let t = Instant::now();
        if late.social_get(*k).await?.is_some() {
            found += 1;
        }
        times.push(t.elapsed().as_micros() as u64);
    }
    report(
        &format!(
            "DHT resolve at a node holding nothing ({found}/{} found)",
            keys.len()
        ),
        times,
    );
    pump.abort();
    Ok(())
}

async fn feed(bin: &str, hops: usize, rounds: usize) -> Result<()> {
    let mut t = Testnet::new(bin, None)?;
    t.spawn(NodeOptions::default()).await?;
    for i in 1..=hops {
        t.spawn(NodeOptions {
            bootstrap: vec![i - 1],
            ..NodeOptions::default()
        })
        .await?;
    }
    t.wait_connected().await?;
    let creator = t.api(0)?.id().await?.creator_key;
    let follower = t.api(hops)?;
    follower.follow(&creator, true).await?;
    let clip = t.root().join("sample.ts");
    std::fs::write(&clip, FIXTURE)?;
    let clip = clip.to_string_lossy().into_owned();
    let mut times = Vec::new();
    for r in 0..rounds {
        let mut events = follower.feed_events().await?;
        // Four stream names, each started again after its end: a relay
        // tracks at most 8 streams per creator (`max_streams_per_creator`),
        // ended ones included, so a 9th new name would not travel.
        let name = format!("round{}", r % 4);
        let t0 = Instant::now();
        let mut publish = t.publish(
            0,
            &["--name", &name, "--input", &clip, "--realtime", "--loop"],
            Stdio::null(),
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, events.next()).await {
                Ok(Some(Ok(vilokanam_api::FeedEvent::Live(item))))
                    if item.stream.ends_with(&name) =>
                {
                    times.push(t0.elapsed().as_micros() as u64);
                    break;
                }
                Ok(Some(Ok(_))) => {}
                _ => bail!("round {r}: no notification in 30 s"),
            }
        }
        // End it (SIGINT: the publisher announces the end).
        if let Some(pid) = publish.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), publish.wait()).await;
    }
    report(
        &format!("go-live to a follower's notification, {hops} hops, real daemons"),
        times,
    );
    t.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("search") => search(
            flag(&args, "--docs", 10_000)? as usize,
            flag(&args, "--queries", 2_000)? as usize,
        ),
        Some("dht") => {
            dht(
                flag(&args, "--nodes", 20)? as usize,
                flag(&args, "--records", 50)? as usize,
            )
            .await
        }
        Some("feed") => {
            let bin = args
                .iter()
                .position(|a| a == "--bin")
                .and_then(|i| args.get(i + 1))
                .cloned()
                .unwrap_or_else(|| "target/release/vilokanam".into());
            feed(
                &bin,
                flag(&args, "--hops", 4)? as usize,
                flag(&args, "--rounds", 20)? as usize,
            )
            .await
        }
        _ => bail!("usage: social-bench search|dht|feed [flags] (see the source's header)"),
    }
}
