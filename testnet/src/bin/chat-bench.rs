//! Chat latency benchmark: N libp2p nodes (this process runs them all, on
//! loopback) in a random mesh (each dials `--degree` earlier ones) take
//! part in one stream's chat; `--senders` keys, each on a random node,
//! send `--messages` each, one every `--gap-ms`. For every (node, message)
//! the time from the sender's `chat_send` to the node's
//! `Event::ChatMessage` is one sample. Prints figures; asserts nothing.
//!
//! ```text
//! cargo run --release -p vilokanam-testnet --bin chat-bench -- --nodes 20 --senders 20 --messages 10
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use prometheus_client::registry::Registry;
use vilokanam_swarm::libp2p::{identity, Multiaddr};
use vilokanam_swarm::protocols::chat::wire::{chat_topic, find_pow, ChatMessage};
use vilokanam_swarm::protocols::live::actor::unix_ms;
use vilokanam_swarm::{Client, Config, Event, StreamId};
use vilokanam_testnet::bench::percentile;

struct Args {
    nodes: usize,
    degree: usize,
    senders: usize,
    messages: u64,
    gap_ms: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        nodes: 20,
        degree: 3,
        senders: 20,
        messages: 10,
        gap_ms: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v: u64 = it
            .next()
            .with_context(|| format!("{k} needs a value"))?
            .parse()
            .with_context(|| format!("{k}: not a number"))?;
        match k.as_str() {
            "--nodes" => a.nodes = v as usize,
            "--degree" => a.degree = v as usize,
            "--senders" => a.senders = v as usize,
            "--messages" => a.messages = v,
            "--gap-ms" => a.gap_ms = v,
            _ => bail!("unknown flag {k} (--nodes, --degree, --senders, --messages, --gap-ms)"),
        }
    }
    if a.nodes < 2 || a.senders == 0 || a.messages == 0 {
        bail!("--nodes ≥ 2, --senders ≥ 1 and --messages ≥ 1");
    }
    Ok(a)
}

/// A message: its sender and the sender's counter.
type MsgId = ([u8; 32], u64);
/// Arrivals by message: (node, instant), one per node that showed it.
type Arrivals = Arc<Mutex<HashMap<MsgId, Vec<(usize, Instant)>>>>;

struct Node {
    client: Client,
    addr: Multiaddr,
    /// Peers in the chat topic, as this node saw them subscribe.
    in_chat: Arc<Mutex<usize>>,
}

async fn start(index: usize, topic: String, arrivals: Arrivals) -> Result<Node> {
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        discovery: false,
        ..Config::default()
    };
    let (client, mut rx, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        config,
        &mut Registry::default(),
    )?;
    tokio::spawn(event_loop.run());
    let in_chat = Arc::new(Mutex::new(0));
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let counted = in_chat.clone();
    tokio::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Listening(a) => {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(a);
                    }
                }
                Event::Subscribed { topic: t, .. } if t == topic => {
                    *counted.lock().expect("lock") += 1;
                }
                Event::ChatMessage { message, .. } => {
                    let m = &message.message;
                    arrivals
                        .lock()
                        .expect("lock")
                        .entry((m.sender, m.seq))
                        .or_default()
                        .push((index, Instant::now()));
                }
                _ => {}
            }
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), addr_rx)
        .await
        .context("no listen address in 10 s")??;
    Ok(Node {
        client,
        addr,
        in_chat,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let creator = SigningKey::from_bytes(&[1; 32]);
    let stream = StreamId::new(creator.verifying_key().to_bytes(), "bench")?;
    let topic = chat_topic(&stream);
    let arrivals: Arrivals = Arc::default();
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..a.nodes {
        let n = start(i, topic.clone(), arrivals.clone()).await?;
        for _ in 0..a.degree.min(i) {
            let j = (rand::random::<u64>() % i as u64) as usize;
            let _ = n.client.dial(nodes[j].addr.clone()).await;
        }
        nodes.push(n);
    }
    for n in &nodes {
        n.client.chat_join(stream.clone()).await?;
    }
    // Wait (bounded) until every node saw at least one peer join the chat,
    // then one second of heartbeats for the mesh to form.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|n| *n.in_chat.lock().expect("lock") == 0) {
        if Instant::now() > deadline {
            bail!("some node saw no peer in the chat within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let keys: Vec<(SigningKey, u64, usize)> = (0..a.senders)
        .map(|i| {
            let k = SigningKey::from_bytes(&[(i as u8).wrapping_add(10); 32]);
            let pow = find_pow(&k.verifying_key().to_bytes());
            (k, pow, (rand::random::<u64>() % a.nodes as u64) as usize)
        })
        .collect();
    let sent: Arc<Mutex<HashMap<MsgId, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (key, pow, at) in keys {
        let client = nodes[at].client.clone();
        let (stream, sent, n, gap) = (stream.clone(), sent.clone(), a.messages, a.gap_ms);
        tasks.push(tokio::spawn(async move {
            // Spread the senders' phases over one gap.
            let phase = rand::random::<u64>() % gap.max(1);
            tokio::time::sleep(Duration::from_millis(phase)).await;
            let me = key.verifying_key().to_bytes();
            for seq in 1..=n {
                let m = ChatMessage {
                    stream: stream.clone(),
                    sender: me,
                    seq,
                    sent_ms: unix_ms(),
                    text: format!("message {seq}"),
                    pow,
                    follow: None,
                    pass: None,
                }
                .sign(&key)?;
                sent.lock().expect("lock").insert((me, seq), Instant::now());
                client.chat_send(m).await?;
                tokio::time::sleep(Duration::from_millis(gap)).await;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let total = a.senders as u64 * a.messages;
    let want = total as usize * a.nodes;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: usize = arrivals.lock().expect("lock").values().map(Vec::len).sum();
        if got >= want || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = sent.lock().expect("lock").clone();
    let arrivals = arrivals.lock().expect("lock").clone();
    let mut samples: Vec<u64> = Vec::new();
    for (id, at) in &sent {
        for (_, t) in arrivals.get(id).into_iter().flatten() {
            samples.push(t.saturating_duration_since(*at).as_micros() as u64);
        }
    }
    samples.sort_unstable();
    let duplicates: usize = arrivals
        .values()
        .map(|v| {
            let mut nodes: Vec<usize> = v.iter().map(|(n, _)| *n).collect();
            let all = nodes.len();
            nodes.sort_unstable();
            nodes.dedup();
            all - nodes.len()
        })
        .sum();
    println!(
        "chat-bench: {} nodes (degree {}), {} senders × {} messages every {} ms, {:.1} s",
        a.nodes,
        a.degree,
        a.senders,
        a.messages,
        a.gap_ms,
        started.elapsed().as_secs_f64()
    );
    println!(
        "deliveries: {} of {} (every node, sender's own included); shown twice at a node: {}",
        samples.len(),
        want,
        duplicates
    );
    println!(
        "latency send → shown, ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&samples, 0.50) as f64 / 1000.0,
        percentile(&samples, 0.90) as f64 / 1000.0,
        percentile(&samples, 0.99) as f64 / 1000.0,
        samples.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    Ok(())
}
