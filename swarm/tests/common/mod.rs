//! Helpers shared by the in-process swarm tests: a loopback config, an
//! event recorder that wakes waiters, and a running node.

#![allow(dead_code)] // each test binary uses a part

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, Notify};
use vilokanam_swarm::behaviour::BehaviourEvent;
use vilokanam_swarm::{Client, Config, Event, RejectReason};

/// Listens on loopback TCP only, no mDNS.
pub fn local_config() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        discovery: false,
        ..Config::default()
    }
}

/// Records a node's events and wakes waiters on each one.
#[derive(Clone, Default)]
pub struct Events {
    list: Arc<Mutex<Vec<Event>>>,
    notify: Arc<Notify>,
}

impl Events {
    /// Records every event of `rx`.
    pub fn spawn(rx: mpsc::Receiver<Event>) -> Self {
        Self::spawn_with(rx, None)
    }

    /// Records every event of `rx` and hands each one to `hook` too (the
    /// part of a node that acts on events, such as paying).
    pub fn spawn_with(mut rx: mpsc::Receiver<Event>, hook: Option<mpsc::Sender<Event>>) -> Self {
        let e = Events::default();
        let e2 = e.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let Some(h) = &hook {
                    let _ = h.send(ev.clone()).await;
                }
                e2.list.lock().expect("lock").push(ev);
                e2.notify.notify_waiters();
            }
        });
        e
    }

    /// Every event so far.
    pub fn snapshot(&self) -> Vec<Event> {
        self.list.lock().expect("lock").clone()
    }

    /// Waits (for events, not time) until `cond` holds, at most 30 s.
    pub async fn wait(&self, what: &str, cond: impl Fn(&[Event]) -> bool) -> Result<()> {
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

    /// The first listen address.
    pub fn listen_addr(&self) -> Option<Multiaddr> {
        self.snapshot().into_iter().find_map(|e| match e {
            Event::Listening(a) => Some(a),
            _ => None,
        })
    }

    /// Chunks ready, by sequence number.
    pub fn ready(&self) -> HashMap<u64, Bytes> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Event::ChunkReady(c) => Some((c.seq(), c.payload.clone())),
                _ => None,
            })
            .collect()
    }

    /// Sequence numbers given up as missing.
    pub fn missing(&self) -> Vec<u64> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Event::ChunkMissing { seq, .. } => Some(seq),
                _ => None,
            })
            .collect()
    }

    /// Everything refused, with its sender.
    pub fn rejections(&self) -> Vec<(PeerId, RejectReason)> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Event::Rejected { peer, reason } => Some((peer, reason)),
                _ => None,
            })
            .collect()
    }

    /// Whether `peer` subscribed to `topic`.
    pub fn subscribed(&self, peer: PeerId, topic: &str) -> bool {
        self.snapshot().iter().any(
            |e| matches!(e, Event::Subscribed { peer: p, topic: t } if *p == peer && t == topic),
        )
    }
}

/// A running node of ours.
pub struct Honest {
    pub client: Client,
    pub events: Events,
    pub addr: Multiaddr,
}

/// A node on the default loopback config.
pub async fn honest() -> Result<Honest> {
    node(local_config(), None).await
}

/// A node on `config`, its events handed to `hook` too.
pub async fn node(config: Config, hook: Option<mpsc::Sender<Event>>) -> Result<Honest> {
    let mut registry = Registry::default();
    let (client, rx, event_loop) =
        vilokanam_swarm::new(identity::Keypair::generate_ed25519(), config, &mut registry)?;
    tokio::spawn(event_loop.run());
    let events = Events::spawn_with(rx, hook);
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

/// A forger: subscribes to `topic`, forwards nothing, and
/// publishes one message once both `targets` are subscribed to the topic.
/// One forger per forged message: each sender gets exactly one P4 penalty,
/// so no first hop graylists it before deciding on its message.
pub async fn forger(
    topic: IdentTopic,
    targets: Vec<(PeerId, Multiaddr)>,
    message: Vec<u8>,
) -> Result<PeerId> {
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let mut swarm = vilokanam_swarm::build_swarm(key, &local_config(), &mut Registry::default())?;
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    for (_, a) in &targets {
        swarm.dial(a.clone())?;
    }
    let mut waiting: Vec<PeerId> = targets.iter().map(|(p, _)| *p).collect();
    let mut message = Some(message);
    tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                    libp2p::gossipsub::Event::Subscribed { peer_id, topic: t },
                )) if t == topic.hash() => {
                    waiting.retain(|p| *p != peer_id);
                    if waiting.is_empty() {
                        if let Some(m) = message.take() {
                            let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), m);
                        }
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                    libp2p::gossipsub::Event::Message {
                        propagation_source,
                        message_id,
                        ..
                    },
                )) => {
                    swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
                _ => {}
            }
        }
    });
    Ok(peer)
}
