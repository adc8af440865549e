//! The task that owns the libp2p [`Swarm`], and the handle to talk to it.
//!
//! [`new`] returns a cloneable [`Client`], a stream of [`Event`]s and the
//! [`EventLoop`] to spawn. Only [`EventLoop::run`] touches the swarm; every
//! [`Command`] carries a oneshot for its reply (the shape of rust-libp2p's
//! file-sharing example).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, identity, kad, mdns, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::behaviour::{
    topic_score_params, Behaviour, BehaviourConfig, BehaviourEvent, ANNOUNCE_TOPIC, KAD_PROTOCOL,
};
use crate::metrics::Metrics;
use crate::proto::{Chunk, FetchKey, Misbehaviour, Output, RelayConfig, RelayCore, Verdict};
use crate::wire::{GossipMessage, SignedAnnouncement, StreamId, WireError};

/// Errors of the swarm and its client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Stopped,
    /// Building the transport or behaviour failed.
    #[error("building the swarm: {0}")]
    Build(String),
    /// Listening on an address failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// Dialing failed.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A chunk or announcement is invalid.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Subscribing to a topic failed.
    #[error("subscribing to {topic}: {reason}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// Network configuration of a node.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on (TCP and/or QUIC).
    pub listen: Vec<Multiaddr>,
    /// Peers to connect to at start (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Use Kademlia random walks to find more peers. Off gives a fixed
    /// topology made only of `bootstrap` links (useful for testnets).
    pub discovery: bool,
    /// Follow every announced live stream (relay operators).
    pub relay_all: bool,
    /// Behaviour options.
    pub behaviour: BehaviourConfig,
    /// Relay core options.
    pub relay: RelayConfig,
    /// Close connections idle this long. Default 60 s.
    pub idle_timeout: Duration,
    /// Re-run Kademlia bootstrap this often. Default 30 s.
    pub discovery_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![],
            bootstrap: vec![],
            discovery: true,
            relay_all: false,
            behaviour: BehaviourConfig::default(),
            relay: RelayConfig::default(),
            idle_timeout: Duration::from_secs(60),
            discovery_interval: Duration::from_secs(30),
        }
    }
}

/// What the event loop reports to the node.
#[derive(Clone, Debug)]
pub enum Event {
    /// A verified chunk is available (published locally or fetched).
    ChunkReady(Arc<Chunk>),
    /// A chunk could not be obtained and is skipped.
    ChunkMissing {
        /// Stream.
        stream: StreamId,
        /// Sequence number.
        seq: u64,
    },
    /// A valid announcement arrived.
    Announcement(SignedAnnouncement),
    /// Something from a peer was refused.
    Rejected {
        /// Who sent it.
        peer: PeerId,
        /// Why it was refused.
        reason: String,
    },
    /// A connection was established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: Multiaddr,
    },
    /// A new listen address.
    Listening(Multiaddr),
}

/// A connected peer as seen by this node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer_id: String,
    /// Gossipsub score (includes the application score).
    pub score: Option<f64>,
    /// Application-level score from payload checks.
    pub app_score: f64,
    /// Gossipsub topics the peer is subscribed to.
    pub topics: Vec<String>,
}

/// Requests to the event loop.
#[derive(Debug)]
pub enum Command {
    /// Dial an address.
    Dial(Multiaddr, oneshot::Sender<Result<(), SwarmError>>),
    /// Follow a stream, from a sequence number or (`None`) the latest chunk.
    Join(
        StreamId,
        Option<u64>,
        oneshot::Sender<Result<(), SwarmError>>,
    ),
    /// Stop following a stream.
    Leave(StreamId, oneshot::Sender<()>),
    /// Publish a locally created chunk.
    Publish(Box<Chunk>, oneshot::Sender<Result<(), SwarmError>>),
    /// Publish an announcement.
    Announce(
        Box<SignedAnnouncement>,
        oneshot::Sender<Result<(), SwarmError>>,
    ),
    /// List connected peers.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// Current listen addresses.
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    /// Stop the event loop.
    Shutdown(oneshot::Sender<()>),
}

/// Cloneable handle to the event loop.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl Client {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SwarmError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| SwarmError::Stopped)?;
        rx.await.map_err(|_| SwarmError::Stopped)
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }
    /// Dials `addr`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), SwarmError> {
        self.call(|tx| Command::Dial(addr, tx)).await?
    }
    /// Follows `stream`: subscribes and catches up from the latest chunk
    /// peers hold.
    pub async fn join(&self, stream: StreamId) -> Result<(), SwarmError> {
        self.join_from(stream, None).await
    }
    /// Follows `stream` from chunk `start` (e.g. 0 for a stream announced
    /// but not begun), or from the latest chunk when `None`.
    pub async fn join_from(&self, stream: StreamId, start: Option<u64>) -> Result<(), SwarmError> {
        self.call(|tx| Command::Join(stream, start, tx)).await?
    }
    /// Stops following `stream`.
    pub async fn leave(&self, stream: StreamId) -> Result<(), SwarmError> {
        self.call(|tx| Command::Leave(stream, tx)).await
    }
    /// Publishes a chunk this node created (and signed).
    pub async fn publish(&self, chunk: Chunk) -> Result<(), SwarmError> {
        self.call(|tx| Command::Publish(Box::new(chunk), tx))
            .await?
    }
    /// Publishes an announcement.
    pub async fn announce(&self, a: SignedAnnouncement) -> Result<(), SwarmError> {
        self.call(|tx| Command::Announce(Box::new(a), tx)).await?
    }
    /// Connected peers with scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, SwarmError> {
        self.call(Command::Peers).await
    }
    /// Listen addresses.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, SwarmError> {
        self.call(Command::ListenAddrs).await
    }
    /// Stops the event loop and waits for it to acknowledge.
    pub async fn shutdown(&self) -> Result<(), SwarmError> {
        self.call(Command::Shutdown).await
    }
}

/// Builds a raw swarm with the node's transports (TCP and QUIC, noise,
/// yamux) and [`Behaviour`], listening and dialing as `config` says and
/// subscribed to the announce topic. [`new`] wraps it in an [`EventLoop`];
/// tests use it directly to drive misbehaving peers.
pub fn build_swarm(
    keypair: identity::Keypair,
    config: &Config,
    registry: &mut Registry,
) -> Result<Swarm<Behaviour>, SwarmError> {
    let mut bcfg = config.behaviour.clone();
    bcfg.discovery = config.discovery;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| SwarmError::Build(e.to_string()))?
        .with_quic()
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key| {
            Behaviour::new(key, &bcfg).map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| SwarmError::Build(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| SwarmError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    }
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&IdentTopic::new(ANNOUNCE_TOPIC))
        .map_err(|e| SwarmError::Subscribe {
            topic: ANNOUNCE_TOPIC.into(),
            reason: e.to_string(),
        })?;
    for addr in &config.bootstrap {
        if let (true, Some(Protocol::P2p(peer))) = (config.discovery, addr.iter().last()) {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "bootstrap dial failed");
        }
    }
    Ok(swarm)
}

/// Builds the swarm. Spawn [`EventLoop::run`]; use the [`Client`]; read
/// the events. `registry` receives libp2p and swarm metrics.
pub fn new(
    keypair: identity::Keypair,
    config: Config,
    registry: &mut Registry,
) -> Result<(Client, mpsc::Receiver<Event>, EventLoop), SwarmError> {
    let peer_id = keypair.public().to_peer_id();
    let swarm = build_swarm(keypair, &config, registry)?;
    let metrics = Metrics::new(registry);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let core = RelayCore::new(config.relay.clone());
    Ok((
        Client {
            tx: cmd_tx,
            peer_id,
        },
        ev_rx,
        EventLoop {
            swarm,
            config,
            core,
            commands: cmd_rx,
            events: ev_tx,
            metrics,
            topics: HashMap::new(),
            fetches: HashMap::new(),
            app_scores: HashMap::new(),
            pending_dials: HashMap::new(),
        },
    ))
}

/// Owns the swarm; run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: Config,
    core: RelayCore,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    metrics: Metrics,
    topics: HashMap<TopicHash, StreamId>,
    fetches: HashMap<OutboundRequestId, (FetchKey, PeerId)>,
    app_scores: HashMap<PeerId, f64>,
    pending_dials: HashMap<libp2p::swarm::ConnectionId, oneshot::Sender<Result<(), SwarmError>>>,
}

/// Application score lost per payload or header misbehaviour.
pub const PENALTY: f64 = 25.0;
const MIN_APP_SCORE: f64 = -1000.0;

impl EventLoop {
    /// Runs until [`Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut discovery = tokio::time::interval(self.config.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "command");
                    match cmd {
                        Some(Command::Shutdown(reply)) => {
                            info!("network event loop shutting down");
                            let _ = reply.send(());
                            return;
                        }
                        Some(cmd) => self.on_command(cmd).await,
                        None => return,
                    }
                }
                ev = self.swarm.select_next_some() => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "swarm");
                    self.on_swarm_event(ev).await;
                }
                _ = tick.tick() => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "tick");
                    let out = self.core.tick(Instant::now());
                    self.apply(out).await;
                }
                _ = discovery.tick(), if self.config.discovery => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "discovery");
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
            }
        }
    }

    async fn emit(&mut self, ev: Event) {
        let _ = self.events.send(ev).await;
    }

    fn join_topic(
        &mut self,
        stream: &StreamId,
        start: Option<u64>,
    ) -> Result<Vec<Output>, SwarmError> {
        if self.core.is_joined(stream) {
            return Ok(vec![]);
        }
        let topic = IdentTopic::new(stream.topic());
        let g = &mut self.swarm.behaviour_mut().gossipsub;
        let _ = g.set_topic_params(topic.clone(), topic_score_params());
        g.subscribe(&topic).map_err(|e| SwarmError::Subscribe {
            topic: stream.topic(),
            reason: e.to_string(),
        })?;
        let hash = topic.hash();
        let topic_peers: Vec<PeerId> = g
            .all_peers()
            .filter(|(_, ts)| ts.contains(&&hash))
            .map(|(p, _)| *p)
            .collect();
        self.topics.insert(hash, stream.clone());
        let now = Instant::now();
        let mut out = self.core.join_from(now, stream.clone(), start);
        for p in topic_peers {
            out.extend(self.core.peer_joined(now, stream, p));
        }
        info!(stream = %stream, "joined stream");
        Ok(out)
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial(addr, reply) => {
                let opts = libp2p::swarm::dial_opts::DialOpts::from(addr.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(SwarmError::Dial {
                            addr,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Join(stream, start, reply) => match self.join_topic(&stream, start) {
                Ok(out) => {
                    let _ = reply.send(Ok(()));
                    self.apply(out).await;
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Leave(stream, reply) => {
                let topic = IdentTopic::new(stream.topic());
                self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
                self.topics.remove(&topic.hash());
                self.core.leave(&stream);
                let _ = reply.send(());
            }
            Command::Publish(chunk, reply) => {
                let res = chunk
                    .header
                    .verify()
                    .and_then(|()| chunk.header.check_payload(&chunk.payload));
                if let Err(e) = res {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                let stream = chunk.stream().clone();
                let mut out = match self.join_topic(&stream, None) {
                    Ok(out) => out,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let data = GossipMessage::Chunk(chunk.header.clone()).encode();
                out.extend(self.core.publish_local(Instant::now(), *chunk));
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(IdentTopic::new(stream.topic()), data)
                {
                    // No peers yet is normal for a creator starting alone;
                    // peers that join later pull the chunk by sequence.
                    debug!(stream = %stream, error = %e, "chunk header not published");
                }
                let _ = reply.send(Ok(()));
                self.apply(out).await;
            }
            Command::Announce(a, reply) => {
                let res = a.verify().map_err(SwarmError::from).map(|()| {
                    let data = GossipMessage::Announce((*a).clone()).encode();
                    if let Err(e) = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(IdentTopic::new(ANNOUNCE_TOPIC), data)
                    {
                        debug!(error = %e, "announcement not published");
                    }
                });
                let _ = reply.send(res);
            }
            Command::Peers(reply) => {
                let g = &self.swarm.behaviour().gossipsub;
                let topics: HashMap<PeerId, Vec<String>> = g
                    .all_peers()
                    .map(|(p, ts)| (*p, ts.iter().map(|t| t.to_string()).collect()))
                    .collect();
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer_id: p.to_string(),
                        score: g.peer_score(p),
                        app_score: self.app_scores.get(p).copied().unwrap_or(0.0),
                        topics: topics.get(p).cloned().unwrap_or_default(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    async fn apply(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Validation {
                    msg_id,
                    source,
                    verdict,
                } => {
                    let (acceptance, label) = match &verdict {
                        Verdict::Accept => (MessageAcceptance::Accept, "accept".to_string()),
                        Verdict::Reject(r) => {
                            warn!(peer = %source, reason = %r, "rejected chunk header");
                            self.emit(Event::Rejected {
                                peer: source,
                                reason: r.to_string(),
                            })
                            .await;
                            (MessageAcceptance::Reject, "reject".to_string())
                        }
                        Verdict::Ignore(why) => {
                            debug!(peer = %source, ?why, "ignored chunk header");
                            (
                                MessageAcceptance::Ignore,
                                format!("ignore_{why:?}").to_lowercase(),
                            )
                        }
                    };
                    self.metrics
                        .gossip
                        .get_or_create(&vec![("kind", "chunk".to_string()), ("verdict", label)])
                        .inc();
                    let cached = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&msg_id, &source, acceptance);
                    if !cached {
                        // The message left gossipsub's cache before the
                        // verdict: it will not be forwarded from here.
                        Metrics::inc(&self.metrics.gossip, "verdict", "lost_from_cache");
                    }
                }
                Output::Fetch { peer, request, key } => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .chunks
                        .send_request(&peer, request);
                    self.fetches.insert(id, (key, peer));
                }
                Output::Penalize { peer, reason } => {
                    let (label, text) = match &reason {
                        Misbehaviour::BadPayload(t) => ("bad_payload", t.clone()),
                        Misbehaviour::BadHeader(t) => ("bad_header", t.clone()),
                    };
                    warn!(%peer, reason = %text, "penalising peer");
                    Metrics::inc(&self.metrics.penalties, "reason", label);
                    let score = self.app_scores.entry(peer).or_insert(0.0);
                    *score = (*score - PENALTY).max(MIN_APP_SCORE);
                    let s = *score;
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer, s);
                    self.emit(Event::Rejected {
                        peer,
                        reason: format!("{label}: {text}"),
                    })
                    .await;
                }
                Output::Ready(chunk) => {
                    self.metrics.chunks_ready.inc();
                    self.emit(Event::ChunkReady(chunk)).await;
                }
                Output::Missing { stream, seq } => {
                    self.metrics.chunks_missing.inc();
                    warn!(stream = %stream, seq, "chunk unavailable, skipping");
                    self.emit(Event::ChunkMissing { stream, seq }).await;
                }
            }
        }
    }

    async fn on_gossip(
        &mut self,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let now = Instant::now();
        let decoded = GossipMessage::decode(&message.data);
        let is_announce = message.topic == IdentTopic::new(ANNOUNCE_TOPIC).hash();
        match (decoded, is_announce) {
            (Ok(GossipMessage::Chunk(h)), false) => {
                let Some(stream) = self.topics.get(&message.topic).cloned() else {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    return;
                };
                let out =
                    self.core
                        .on_gossip_header(now, message_id, propagation_source, &stream, h);
                self.apply(out).await;
            }
            (Ok(GossipMessage::Announce(a)), true) => {
                let verdict = a.verify();
                let label = if verdict.is_ok() { "accept" } else { "reject" };
                self.metrics
                    .gossip
                    .get_or_create(&vec![
                        ("kind", "announce".to_string()),
                        ("verdict", label.to_string()),
                    ])
                    .inc();
                match verdict {
                    Ok(()) => {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                MessageAcceptance::Accept,
                            );
                        let stream = a.announcement.stream.clone();
                        if self.config.relay_all && !a.announcement.ended {
                            // A stream with no chunk yet is followed from 0.
                            let start = a.announcement.last_seq.is_none().then_some(0);
                            match self.join_topic(&stream, start) {
                                Ok(out) => self.apply(out).await,
                                Err(e) => warn!(stream = %stream, error = %e, "relay join failed"),
                            }
                        }
                        self.emit(Event::Announcement(a)).await;
                    }
                    Err(e) => {
                        self.reject(&message_id, propagation_source, e.to_string())
                            .await
                    }
                }
            }
            (decoded, _) => {
                let reason = match decoded {
                    Err(e) => e.to_string(),
                    Ok(_) => "message kind does not belong on this topic".to_string(),
                };
                self.metrics
                    .gossip
                    .get_or_create(&vec![
                        ("kind", "malformed".to_string()),
                        ("verdict", "reject".to_string()),
                    ])
                    .inc();
                self.reject(&message_id, propagation_source, reason).await;
            }
        }
    }

    /// Rejects a gossip message (P4 penalty for its sender) and reports why.
    async fn reject(&mut self, msg_id: &gossipsub::MessageId, source: PeerId, reason: String) {
        warn!(peer = %source, %reason, "rejected gossip message");
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(msg_id, &source, MessageAcceptance::Reject);
        self.emit(Event::Rejected {
            peer: source,
            reason,
        })
        .await;
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.emit(Event::Listening(address)).await;
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                debug!(peer = %peer_id, "connected");
                self.emit(Event::PeerConnected {
                    peer: peer_id,
                    addr: endpoint.get_remote_address().clone(),
                })
                .await;
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(SwarmError::Dial {
                        addr: Multiaddr::empty(),
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
                if num_established == 0 {
                    let out = self.core.peer_left(Instant::now(), &peer_id);
                    self.apply(out).await;
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev).await,
            _ => {}
        }
    }

    async fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                self.on_gossip(propagation_source, message_id, message)
                    .await
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic, .. }) => {
                if let Some(stream) = self.topics.get(&topic).cloned() {
                    let out = self.core.peer_joined(Instant::now(), &stream, peer_id);
                    self.apply(out).await;
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Unsubscribed { peer_id, topic }) => {
                if let Some(stream) = self.topics.get(&topic).cloned() {
                    let out = self
                        .core
                        .peer_left_stream(Instant::now(), &stream, &peer_id);
                    self.apply(out).await;
                }
            }
            BehaviourEvent::Chunks(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        let response = self.core.serve(&request);
                        let label = match response {
                            crate::wire::ChunkResponse::Found { .. } => "found",
                            crate::wire::ChunkResponse::NotFound => "not_found",
                        };
                        Metrics::inc(&self.metrics.served, "result", label);
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .chunks
                            .send_response(channel, response);
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some((key, from)) = self.fetches.remove(&request_id) {
                            if let crate::wire::ChunkResponse::Found { payload, .. } = &response {
                                self.metrics.payload_bytes_in.inc_by(payload.len() as u64);
                            }
                            debug_assert_eq!(from, peer);
                            let out =
                                self.core
                                    .on_fetch_result(Instant::now(), key, from, Ok(response));
                            self.apply(out).await;
                        }
                    }
                }
            }
            BehaviourEvent::Chunks(request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            }) => {
                if let Some((key, from)) = self.fetches.remove(&request_id) {
                    self.metrics.fetch_failures.inc();
                    debug!(%peer, %error, "chunk request failed");
                    let out = self.core.on_fetch_result(
                        Instant::now(),
                        key,
                        from,
                        Err(error.to_string()),
                    );
                    self.apply(out).await;
                }
            }
            BehaviourEvent::Chunks(request_response::Event::InboundFailure {
                peer, error, ..
            }) => {
                debug!(%peer, %error, "inbound chunk request failed");
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })
                if self.config.discovery && info.protocols.contains(&KAD_PROTOCOL) =>
            {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list {
                    if !self.config.discovery {
                        continue;
                    }
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { result, .. }) => {
                debug!(?result, "kad query progressed");
            }
            _ => {}
        }
    }
}
