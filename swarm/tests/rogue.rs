//! A rogue peer on a stream's topic: forged headers, corrupt payloads and
//! oversized messages. Honest in-process nodes on loopback must reject all
//! of it, never forward it, keep delivering the real stream, and score the
//! rogue down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, request_response, Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, Notify};
use vilokanam_swarm::behaviour::BehaviourEvent;
use vilokanam_swarm::wire::{ChunkRequest, ChunkResponse, GossipMessage, Sig};
use vilokanam_swarm::{Chunk, ChunkCid, ChunkHeader, Client, Config, Event, StreamId};

fn local_config() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        discovery: false,
        ..Config::default()
    }
}

/// Records a node's events and wakes waiters on each one.
#[derive(Clone, Default)]
struct Events {
    list: Arc<Mutex<Vec<Event>>>,
    notify: Arc<Notify>,
}

impl Events {
    fn spawn(mut rx: mpsc::Receiver<Event>) -> Self {
        let e = Events::default();
        let e2 = e.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                e2.list.lock().expect("lock").push(ev);
                e2.notify.notify_waiters();
            }
        });
        e
    }

    fn snapshot(&self) -> Vec<Event> {
        self.list.lock().expect("lock").clone()
    }

    /// Waits (for events, not time) until `cond` holds, at most 30 s.
    async fn wait(&self, what: &str, cond: impl Fn(&[Event]) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Register interest before checking, so an event that lands in
            // between still wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(&self.snapshot()) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("timed out waiting for {what}");
            }
        }
    }

    fn listen_addr(&self) -> Option<Multiaddr> {
        self.snapshot().into_iter().find_map(|e| match e {
            Event::Listening(a) => Some(a),
            _ => None,
        })
    }

    fn ready(&self) -> HashMap<u64, Bytes> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Event::ChunkReady(c) => Some((c.seq(), c.payload.clone())),
                _ => None,
            })
            .collect()
    }

    fn rejections(&self) -> Vec<(PeerId, String)> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Event::Rejected { peer, reason } => Some((peer, reason)),
                _ => None,
            })
            .collect()
    }
}

struct Honest {
    client: Client,
    events: Events,
    addr: Multiaddr,
}

async fn honest() -> Result<Honest> {
    let mut registry = Registry::default();
    let (client, rx, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        local_config(),
        &mut registry,
    )?;
    tokio::spawn(event_loop.run());
    let events = Events::spawn(rx);
    events
        .wait("listening", |e| {
            e.iter().any(|e| matches!(e, Event::Listening(_)))
        })
        .await?;
    let addr = events
        .listen_addr()
        .context("listen addr")?
        .with_p2p(client.peer_id())
        .expect("p2p");
    Ok(Honest {
        client,
        events,
        addr,
    })
}

enum RogueCmd {
    Publish(Vec<u8>),
}

/// A rogue that relays real headers instantly (without checking them), so
/// that honest peers ask it for payloads, and then serves garbage.
async fn rogue(
    stream: StreamId,
    dial: Vec<Multiaddr>,
) -> Result<(PeerId, mpsc::Sender<RogueCmd>, Arc<Mutex<u64>>)> {
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let mut swarm = vilokanam_swarm::build_swarm(key, &local_config(), &mut Registry::default())?;
    let topic = IdentTopic::new(stream.topic());
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    for a in dial {
        swarm.dial(a)?;
    }
    let (tx, mut rx) = mpsc::channel(8);
    let served = Arc::new(Mutex::new(0u64));
    let served2 = served.clone();
    tokio::spawn(async move {
        let mut headers: HashMap<ChunkCid, vilokanam_swarm::SignedHeader> = HashMap::new();
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(RogueCmd::Publish(data)) => { let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data); }
                    None => return,
                },
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(libp2p::gossipsub::Event::Message { propagation_source, message_id, message })) => {
                        if let Ok(GossipMessage::Chunk(h)) = GossipMessage::decode(&message.data) {
                            headers.insert(h.header.cid, h);
                        }
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Chunks(request_response::Event::Message { message: request_response::Message::Request { request, channel, .. }, .. })) => {
                        let resp = match request {
                            ChunkRequest::ByCid(cid) => match headers.get(&cid) {
                                Some(h) => {
                                    *served2.lock().expect("lock") += 1;
                                    ChunkResponse::Found { header: h.clone(), payload: Bytes::from(vec![0x47u8; h.header.size as usize]) }
                                }
                                None => ChunkResponse::NotFound,
                            },
                            _ => ChunkResponse::NotFound,
                        };
                        let _ = swarm.behaviour_mut().chunks.send_response(channel, resp);
                    }
                    _ => {}
                },
            }
        }
    });
    Ok((peer, tx, served))
}

fn chunk(key: &SigningKey, stream: &StreamId, seq: u64) -> Chunk {
    let payload = Bytes::from(format!("chunk {seq} ").repeat(5000));
    let header = ChunkHeader {
        stream: stream.clone(),
        seq,
        duration_us: 1_000_000,
        cid: ChunkCid::of(&payload),
        size: payload.len() as u32,
        published_at_ms: 0,
        discontinuity: false,
    }
    .sign(key)
    .expect("valid header");
    Chunk { header, payload }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_peer_is_rejected_scored_down_and_never_relayed() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("vilokanam_swarm=debug")
        .with_test_writer()
        .try_init();
    let creator_key = SigningKey::from_bytes(&[42; 32]);
    let stream = StreamId::new(creator_key.verifying_key().to_bytes(), "live")?;

    let c = honest().await?;
    let h = honest().await?;
    let v = honest().await?;
    let v2 = honest().await?;
    // C — H — V — V2 is the honest path; the rogue R sits between C and V.
    h.client.dial(c.addr.clone()).await?;
    v.client.dial(h.addr.clone()).await?;
    v2.client.dial(v.addr.clone()).await?;
    // Everyone follows the stream from its first chunk (they joined before
    // it began, as a viewer who saw the announcement does).
    for n in [&c, &h, &v, &v2] {
        n.client.join_from(stream.clone(), Some(0)).await?;
    }
    let (rogue_peer, rogue_tx, served) =
        rogue(stream.clone(), vec![c.addr.clone(), v.addr.clone()]).await?;

    // Wait until every node sees its neighbours subscribed to the topic.
    let topic = stream.topic();
    let expect: [(&Honest, Vec<PeerId>); 4] = [
        (&c, vec![h.client.peer_id(), rogue_peer]),
        (&h, vec![c.client.peer_id(), v.client.peer_id()]),
        (
            &v,
            vec![h.client.peer_id(), v2.client.peer_id(), rogue_peer],
        ),
        (&v2, vec![v.client.peer_id()]),
    ];
    for (node, want) in &expect {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let peers = node.client.peers().await?;
            let on_topic = |p: &PeerId| {
                peers
                    .iter()
                    .any(|i| i.peer_id == p.to_string() && i.topics.contains(&topic))
            };
            if want.iter().all(on_topic) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("topic subscriptions did not propagate: {peers:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Real chunks; the rogue relays each header at once and then serves
    // a corrupt payload for it.
    let mut published = HashMap::new();
    for seq in 0..8u64 {
        let ch = chunk(&creator_key, &stream, seq);
        published.insert(seq, ch.payload.clone());
        c.client.publish(ch).await?;
        let ready = |e: &Events| e.ready().contains_key(&seq);
        v2.events
            .wait(&format!("chunk {seq} at V2"), |_| ready(&v2.events))
            .await?;
    }

    // A forged header: the rogue signs a header for the creator's stream
    // with its own key.
    let rogue_key = SigningKey::from_bytes(&[7; 32]);
    let mut forged = ChunkHeader {
        stream: StreamId::new(rogue_key.verifying_key().to_bytes(), "live")?,
        seq: 8,
        duration_us: 1_000_000,
        cid: ChunkCid::of(b"evil"),
        size: 4,
        published_at_ms: 0,
        discontinuity: false,
    }
    .sign(&rogue_key)?;
    forged.header.stream = stream.clone();
    rogue_tx
        .send(RogueCmd::Publish(GossipMessage::Chunk(forged).encode()))
        .await?;
    // An oversized message (10 KiB, over the 4 KiB application limit).
    rogue_tx
        .send(RogueCmd::Publish(vec![1u8; 10 * 1024]))
        .await?;
    // A header with a bad signature outright.
    let mut bad_sig = chunk(&creator_key, &stream, 9).header;
    bad_sig.signature = Sig([9; 64]);
    rogue_tx
        .send(RogueCmd::Publish(GossipMessage::Chunk(bad_sig).encode()))
        .await?;

    let rejected_by = |n: &Honest, what: &'static str| {
        let n = n.events.clone();
        async move {
            n.wait(what, |_| {
                n.rejections()
                    .iter()
                    .any(|(p, r)| *p == rogue_peer && r.contains(what))
            })
            .await
        }
    };
    rejected_by(&v, "bad signature").await?;
    rejected_by(&c, "bad signature").await?;
    rejected_by(&v, "exceeds").await?;
    rejected_by(&c, "exceeds").await?;

    // More real chunks after the attack still reach everyone intact.
    for seq in 10..14u64 {
        let ch = chunk(&creator_key, &stream, seq);
        published.insert(seq, ch.payload.clone());
        c.client.publish(ch).await?;
    }
    for (name, node) in [("H", &h), ("V", &v), ("V2", &v2)] {
        let want: Vec<u64> = published.keys().copied().collect();
        let waited = node
            .events
            .wait(&format!("every chunk at {name}"), |_| {
                let got = node.events.ready();
                want.iter().all(|s| got.contains_key(s))
            })
            .await;
        if let Err(e) = waited {
            let got = node.events.ready();
            let missing: Vec<u64> = want
                .iter()
                .copied()
                .filter(|s| !got.contains_key(s))
                .collect();
            bail!(
                "{e}: missing {missing:?}; events: {:?}",
                node.events.rejections()
            );
        }
        let got = node.events.ready();
        for (seq, payload) in &published {
            assert!(
                got.get(seq) == Some(payload),
                "{name} has the real chunk {seq}"
            );
        }
        assert!(
            !got.contains_key(&8) && !got.contains_key(&9),
            "{name} accepted no forged chunk"
        );
    }
    // The rogue did serve corrupt payloads to V, and V caught every one.
    let served = *served.lock().expect("lock");
    assert!(served > 0, "the rogue was asked for payloads");
    assert!(
        v.events
            .rejections()
            .iter()
            .any(|(p, r)| *p == rogue_peer && r.starts_with("bad_payload")),
        "V penalised the corrupt payloads: {:?}",
        v.events.rejections()
    );
    // Nothing invalid was ever forwarded: V2 (behind V) and H (behind C)
    // never even saw it.
    assert!(
        v2.events.rejections().is_empty(),
        "V2 saw {:?}",
        v2.events.rejections()
    );
    assert!(
        h.events.rejections().is_empty(),
        "H saw {:?}",
        h.events.rejections()
    );
    // The rogue's score dropped below zero where it misbehaved.
    for (name, node) in [("C", &c), ("V", &v)] {
        let peers = node.client.peers().await?;
        let r = peers
            .iter()
            .find(|p| p.peer_id == rogue_peer.to_string())
            .context("rogue still connected")?;
        assert!(
            r.score.unwrap_or(0.0) < 0.0,
            "{name}: rogue score {:?}",
            r.score
        );
    }
    Ok(())
}
