//! The long-running node: wires identity, storage, the swarm, the HTTP API
//! and the announcer together, and shuts them down cleanly.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use vilokanam_storage::Store;
use vilokanam_swarm::libp2p::{identity, Multiaddr, PeerId};
use vilokanam_swarm::wire::GossipMessage;
use vilokanam_swarm::{Announcement, Chunk, Client, Event, SignedAnnouncement, StreamId};

use crate::config::NodeConfig;
use crate::hls::Playlist;

/// A stream as this node's HTTP API sees it.
pub struct StreamView {
    /// Latest announcement heard.
    pub announcement: Option<SignedAnnouncement>,
    /// When it was heard.
    pub heard_at: Option<Instant>,
    /// The HLS window.
    pub playlist: Playlist,
    /// Verified chunks held for playback, by sequence.
    pub segments: BTreeMap<u64, Segment>,
    /// Whether this node follows the stream.
    pub joined: bool,
}

/// A chunk held for playback.
#[derive(Clone)]
pub struct Segment {
    /// The verified chunk.
    pub chunk: Arc<Chunk>,
    /// When it became playable here (unix ms).
    pub ready_at_ms: u64,
}

/// A stream this node creates.
pub struct Publishing {
    /// Next sequence number.
    pub next_seq: u64,
    /// The announcement (re-signed on every change).
    pub announcement: Announcement,
    /// Mark the next chunk as a timestamp discontinuity.
    pub discontinuity: bool,
}

/// Mutable node state behind one lock (short critical sections only).
#[derive(Default)]
pub struct State {
    /// Streams known or followed.
    pub streams: HashMap<StreamId, StreamView>,
    /// Streams this node publishes, by name.
    pub publishing: HashMap<String, Publishing>,
}

/// Node-level metrics.
#[derive(Clone, Default)]
pub struct NodeMetrics {
    /// Segments published by this node.
    pub segments_published: Counter,
    /// Segments refused at ingest.
    pub segments_refused: Counter,
    /// Things refused from peers.
    pub rejected_from_peers: Counter,
}

/// Everything the HTTP handlers need.
pub struct Node {
    /// Handle to the swarm task.
    pub client: Client,
    /// The node's signing key.
    pub key: SigningKey,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Persistent store.
    pub store: Store,
    /// Mutable state.
    pub state: Mutex<State>,
    /// Serialises publishing so sequence numbers stay in order.
    pub publish_lock: tokio::sync::Mutex<()>,
    /// Metrics registry served at `/metrics`.
    pub registry: Registry,
    /// Node metrics.
    pub metrics: NodeMetrics,
    /// Current listen addresses.
    pub listen: watch::Receiver<Vec<Multiaddr>>,
    /// Configuration.
    pub config: NodeConfig,
}

/// Unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Node {
    /// The view of `stream`, created on first use.
    pub fn view<'a>(&self, state: &'a mut State, stream: &StreamId) -> &'a mut StreamView {
        state
            .streams
            .entry(stream.clone())
            .or_insert_with(|| StreamView {
                announcement: None,
                heard_at: None,
                playlist: Playlist::new(self.config.playlist_len),
                segments: BTreeMap::new(),
                joined: false,
            })
    }

    /// Follows `stream` (idempotent).
    pub async fn join(&self, stream: &StreamId) -> Result<()> {
        {
            let mut st = self
                .state
                .lock()
                .map_err(|_| anyhow::anyhow!("state lock poisoned"))?;
            let v = self.view(&mut st, stream);
            if v.joined {
                return Ok(());
            }
            v.joined = true;
        }
        self.client
            .join(stream.clone())
            .await
            .context("joining stream")?;
        Ok(())
    }

    fn on_event(&self, ev: Event, listen_tx: &watch::Sender<Vec<Multiaddr>>) {
        match ev {
            Event::ChunkReady(chunk) => {
                let Ok(mut st) = self.state.lock() else {
                    return;
                };
                let keep = self.config.window;
                let v = self.view(&mut st, chunk.stream());
                let h = &chunk.header.header;
                v.playlist.on_ready(h.seq, h.duration(), h.discontinuity);
                v.segments.insert(
                    h.seq,
                    Segment {
                        chunk: chunk.clone(),
                        ready_at_ms: now_ms(),
                    },
                );
                while v.segments.len() > keep {
                    v.segments.pop_first();
                }
            }
            Event::ChunkMissing { stream, seq } => {
                if let Ok(mut st) = self.state.lock() {
                    self.view(&mut st, &stream).playlist.on_missing(seq);
                }
            }
            Event::Announcement(a) => {
                let id = a.announcement.stream.clone();
                let encoded = GossipMessage::Announce(a.clone()).encode();
                let updated = self.store.update_stream(&id.to_string(), |r| {
                    r.announcement = encoded;
                    r.updated_ms = now_ms();
                });
                if let Err(e) = updated {
                    warn!(error = %e, "cannot index stream");
                }
                let Ok(mut st) = self.state.lock() else {
                    return;
                };
                let v = self.view(&mut st, &id);
                let newer = v.announcement.as_ref().is_none_or(|old| {
                    old.announcement.updated_at_ms <= a.announcement.updated_at_ms
                });
                if newer {
                    if a.announcement.ended {
                        v.playlist.on_end(a.announcement.last_seq);
                    } else if v.announcement.as_ref().is_some_and(|old| {
                        old.announcement.ended
                            || old.announcement.started_at_ms < a.announcement.started_at_ms
                    }) {
                        v.playlist.on_restart();
                    }
                    v.announcement = Some(a);
                    v.heard_at = Some(Instant::now());
                }
            }
            Event::PeerConnected { peer, addr } => {
                let full = addr.with_p2p(peer).unwrap_or_else(|a| a);
                if let Err(e) =
                    self.store
                        .remember_peer(&peer.to_string(), &full.to_string(), now_ms())
                {
                    warn!(error = %e, "cannot remember peer");
                }
            }
            Event::Listening(addr) => {
                listen_tx.send_modify(|l| l.push(addr));
            }
            Event::Rejected { .. } => {
                self.metrics.rejected_from_peers.inc();
            }
        }
    }

    /// Signs and gossips the current announcement of a stream we publish.
    pub async fn announce(&self, name: &str) -> Result<()> {
        let signed = {
            let mut st = self
                .state
                .lock()
                .map_err(|_| anyhow::anyhow!("state lock poisoned"))?;
            let Some(p) = st.publishing.get_mut(name) else {
                return Ok(());
            };
            p.announcement.updated_at_ms = now_ms();
            p.announcement.last_seq = p.next_seq.checked_sub(1);
            p.announcement.clone().sign(&self.key)?
        };
        let id = signed.announcement.stream.clone();
        let ended = signed.announcement.ended;
        let last = signed.announcement.last_seq;
        {
            let mut st = self
                .state
                .lock()
                .map_err(|_| anyhow::anyhow!("state lock poisoned"))?;
            let v = self.view(&mut st, &id);
            v.announcement = Some(signed.clone());
            v.heard_at = Some(Instant::now());
            if ended {
                v.playlist.on_end(last);
            }
        }
        self.client.announce(signed).await?;
        Ok(())
    }
}

/// Options of `vilokanam daemon` that are not in [`NodeConfig`].
pub struct DaemonArgs {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Node configuration (file merged with flags).
    pub config: NodeConfig,
}

/// Runs the daemon until SIGINT/SIGTERM.
pub async fn run(args: DaemonArgs) -> Result<()> {
    let DaemonArgs { data_dir, config } = args;
    let key = vilokanam_storage::load_or_create_identity(&data_dir)
        .with_context(|| format!("loading identity from {}", data_dir.display()))?;
    let keypair = identity::Keypair::ed25519_from_bytes(key.to_bytes())
        .context("deriving libp2p identity")?;
    let peer_id = keypair.public().to_peer_id();
    let store = Store::open(&data_dir)
        .with_context(|| format!("opening database in {}", data_dir.display()))?;

    let mut net = config.network()?;
    if config.discovery {
        for (peer, rec) in store.known_peers(16)? {
            if let Some(addr) = rec.addrs.first().and_then(|a| a.parse::<Multiaddr>().ok()) {
                if peer != peer_id.to_string() && !net.bootstrap.contains(&addr) {
                    net.bootstrap.push(addr);
                }
            }
        }
    }
    let mut registry = Registry::default();
    let (client, mut events, event_loop) =
        vilokanam_swarm::new(keypair, net, &mut registry).context("starting the swarm")?;
    let metrics = NodeMetrics::default();
    {
        let r = registry.sub_registry_with_prefix("vilokanam_node");
        r.register(
            "segments_published",
            "Segments published by this node",
            metrics.segments_published.clone(),
        );
        r.register(
            "segments_refused",
            "Segments refused at ingest",
            metrics.segments_refused.clone(),
        );
        r.register(
            "rejected_from_peers",
            "Messages or payloads refused from peers",
            metrics.rejected_from_peers.clone(),
        );
    }
    let swarm_task = tokio::spawn(event_loop.run());
    let (listen_tx, listen_rx) = watch::channel(vec![]);
    let node = Arc::new(Node {
        client: client.clone(),
        key,
        peer_id,
        store,
        state: Mutex::new(State::default()),
        publish_lock: tokio::sync::Mutex::new(()),
        registry,
        metrics,
        listen: listen_rx.clone(),
        config: config.clone(),
    });

    let events_node = node.clone();
    let events_task = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            events_node.on_event(ev, &listen_tx);
        }
    });

    // Wait until every listen address is bound, so the ready line is true.
    let wanted = config.listen.len();
    let mut rx = listen_rx.clone();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|l| l.len() >= wanted))
        .await
        .context("timed out waiting for listen addresses")?
        .context("swarm stopped before listening")?;

    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .with_context(|| format!("binding the HTTP API on {}", config.api))?;
    let api_addr: SocketAddr = listener.local_addr()?;
    let addrs: Vec<String> = listen_rx
        .borrow()
        .iter()
        .map(|a| {
            a.clone()
                .with_p2p(peer_id)
                .unwrap_or_else(|a| a)
                .to_string()
        })
        .collect();
    info!(api = %api_addr, peer = %peer_id, "daemon ready");
    // One JSON line on stdout: how scripts and the testnet find the node.
    println!(
        "{}",
        serde_json::json!({"event": "ready", "api": api_addr.to_string(), "peer_id": peer_id.to_string(), "listen": addrs})
    );

    let (stop_tx, mut stop_rx) = mpsc::channel::<()>(1);
    let announcer = {
        let node = node.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(node.config.announce_interval());
            loop {
                every.tick().await;
                let names: Vec<String> = match node.state.lock() {
                    Ok(st) => st
                        .publishing
                        .iter()
                        .filter(|(_, p)| !p.announcement.ended)
                        .map(|(n, _)| n.clone())
                        .collect(),
                    Err(_) => return,
                };
                for n in names {
                    if let Err(e) = node.announce(&n).await {
                        warn!(error = %e, "re-announce failed");
                    }
                }
            }
        })
    };

    let app = crate::api::router(node.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(()).await;
    });
    server.await.context("HTTP API server")?;
    let _ = stop_rx.recv().await;
    info!("shutting down");
    announcer.abort();
    // Tell viewers that our streams ended.
    let names: Vec<String> = node
        .state
        .lock()
        .map(|st| st.publishing.keys().cloned().collect())
        .unwrap_or_default();
    for n in names {
        if let Ok(mut st) = node.state.lock() {
            if let Some(p) = st.publishing.get_mut(&n) {
                p.announcement.ended = true;
            }
        }
        let _ = node.announce(&n).await;
    }
    let _ = client.shutdown().await;
    let _ = swarm_task.await;
    events_task.abort();
    node.store.flush().context("flushing the database")?;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
