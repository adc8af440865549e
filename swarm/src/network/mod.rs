//! The task that owns the libp2p [`Swarm`], and the handle to talk to it.
//!
//! [`new`] returns a cloneable [`Client`], the receiving end of the
//! [`Event`] channel and the [`EventLoop`] to spawn. Only
//! [`EventLoop::run`] touches the swarm, in one `tokio::select!`; every
//! [`Command`] carries a oneshot for its reply (the shape of rust-libp2p's
//! file-sharing example). Swarm events are dispatched to the protocol
//! actors ([`dispatch`]); time comes from tokio's clock, so tests with
//! paused time drive every timer.

/// The context the protocol actors work in, borrowed field by field from
/// the event loop (so that the actor itself stays borrowable).
macro_rules! ctx {
    ($s:ident) => {
        crate::protocols::live::actor::Ctx {
            swarm: &mut $s.swarm,
            events: &mut $s.events,
            metrics: &$s.metrics,
            scores: &mut $s.scores,
        }
    };
}

mod client;
mod dispatch;
mod events;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::{identity, Multiaddr, Swarm};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

pub use client::{ChunkMeta, Client, Command, PeerInfo, SwarmError, SwarmStats};
pub use events::{Emitter, Event, RejectReason};

use crate::behaviour::{Behaviour, BehaviourConfig};
use crate::build::build_swarm;
use crate::metrics::Metrics;
use crate::protocols::bandwidth::LedgerConfig;
use crate::protocols::chat::actor::ChatActor;
use crate::protocols::keys::session::{KeyClient, KeySessionConfig};
use crate::protocols::live::actor::LiveActor;
use crate::protocols::live::announce::AnnounceConfig;
use crate::protocols::live::core::RelayConfig;
use crate::protocols::social::actor::SocialActor;
use crate::scoring::AppScores;

/// Network configuration of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Addresses to listen on (TCP and/or QUIC).
    pub listen: Vec<Multiaddr>,
    /// Peers to connect to at start (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Use Kademlia random walks to find more peers. Off gives a fixed
    /// topology made only of `bootstrap` links (useful for testnets).
    pub discovery: bool,
    /// Follow every announced live stream (relay operators), up to
    /// [`RelayConfig::max_relayed`].
    pub relay_all: bool,
    /// Behaviour options.
    pub behaviour: BehaviourConfig,
    /// Relay core options (windows and every bound on streams and chunks).
    pub relay: RelayConfig,
    /// Announcement policy options (rates and caps).
    pub announce: AnnounceConfig,
    /// Close connections idle this long. Default 60 s.
    pub idle_timeout: Duration,
    /// Re-run Kademlia bootstrap this often. Default 30 s.
    pub discovery_interval: Duration,
    /// Capacity of the event channel to the node. Default 1024.
    pub event_buffer: usize,
    /// Critical events kept while the node lags, before the loop waits
    /// for it. Default 4096.
    pub event_backlog: usize,
    /// Key sessions: bounds and timeouts.
    pub keys: KeySessionConfig,
    /// Bitswap: bounds and timeouts.
    pub bitswap: crate::protocols::bitswap::BitswapConfig,
    /// What this node charges for serving payloads, and the credit
    /// ledger's bounds (default: free).
    pub bandwidth: LedgerConfig,
    /// Chat: rates and bounds.
    pub chat: crate::protocols::chat::ChatConfig,
    /// Social records: rates, republishing and the store's bound.
    pub social: crate::protocols::social::SocialConfig,
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
            announce: AnnounceConfig::default(),
            idle_timeout: Duration::from_secs(60),
            discovery_interval: Duration::from_secs(30),
            event_buffer: 1024,
            event_backlog: 4096,
            keys: KeySessionConfig::default(),
            bandwidth: LedgerConfig::default(),
            bitswap: crate::protocols::bitswap::BitswapConfig::default(),
            chat: crate::protocols::chat::ChatConfig::default(),
            social: crate::protocols::social::SocialConfig::default(),
        }
    }
}

/// The current time on tokio's clock (paused in tests that pause it).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
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
    let (ev_tx, ev_rx) = mpsc::channel(config.event_buffer.max(1));
    let live = LiveActor::new(
        config.relay.clone(),
        config.announce.clone(),
        config.bandwidth.clone(),
        config.relay_all,
        now(),
    );
    let events = Emitter::new(ev_tx, config.event_backlog, metrics.clone());
    Ok((
        Client {
            tx: cmd_tx,
            peer_id,
            keys: Arc::new(KeyClient::new(
                swarm.behaviour().keys.new_control(),
                config.keys.clone(),
            )),
            // The same stream behaviour carries Bitswap's protocols.
            bitswap: crate::protocols::bitswap::Bitswap::new(
                swarm.behaviour().keys.new_control(),
                config.bitswap.clone(),
                metrics.clone(),
            ),
            metrics: metrics.clone(),
        },
        ev_rx,
        EventLoop {
            chat: ChatActor::new(config.chat.clone()),
            social: SocialActor::new(config.social.clone()),
            followed_chats: Default::default(),
            swarm,
            config,
            live,
            commands: cmd_rx,
            events,
            metrics,
            scores: AppScores::default(),
            pending_dials: HashMap::new(),
        },
    ))
}

type DialReply = oneshot::Sender<Result<(), SwarmError>>;

/// Owns the swarm; run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: Config,
    live: LiveActor,
    chat: ChatActor,
    social: SocialActor,
    /// Chats joined because the live core follows their stream (watching,
    /// publishing or relaying it): a stream's chat travels where its chunks
    /// do, so that relays in between carry it.
    followed_chats: std::collections::HashSet<crate::protocols::live::wire::StreamId>,
    commands: mpsc::Receiver<Command>,
    events: Emitter,
    metrics: Metrics,
    scores: AppScores,
    pending_dials: HashMap<libp2p::swarm::ConnectionId, (Multiaddr, DialReply)>,
}

impl EventLoop {
    /// Joins the chat of every stream the live core follows, and leaves
    /// the ones it joined that way when the stream is no longer followed
    /// (a chat joined on its own is left alone).
    fn sync_chats(&mut self) {
        use std::collections::HashSet;
        let followed: HashSet<_> = self
            .live
            .core()
            .joined()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let new: Vec<_> = followed
            .iter()
            .filter(|s| !self.followed_chats.contains(*s))
            .cloned()
            .collect();
        for s in new {
            match self.chat.join(&mut ctx!(self), now(), s.clone()) {
                Ok(true) => {
                    self.followed_chats.insert(s);
                }
                // Joined on its own already: not ours to leave.
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(stream = %s, error = %e, "cannot join a followed stream's chat")
                }
            }
        }
        let gone: Vec<_> = self
            .followed_chats
            .iter()
            .filter(|s| !followed.contains(*s))
            .cloned()
            .collect();
        for s in gone {
            self.followed_chats.remove(&s);
            self.chat.leave(&mut ctx!(self), &s);
        }
    }

    /// Runs until [`Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        let mut discovery = tokio::time::interval(self.config.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.events.must_wait() {
                // The node has not read a backlog of critical events:
                // wait for it rather than lose any.
                Metrics::inc(&self.metrics.loop_branch, "branch", "backpressure");
                self.events.drain().await;
                continue;
            }
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
                        Some(cmd) => self.on_command(cmd),
                        None => return,
                    }
                }
                () = self.events.drain(), if self.events.has_backlog() => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "events");
                }
                ev = self.swarm.select_next_some() => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "swarm");
                    self.on_swarm_event(ev);
                }
                _ = tick.tick() => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "tick");
                    self.live.tick(&mut ctx!(self), now());
                    self.chat.tick(&mut ctx!(self), now());
                    self.social.tick(&mut ctx!(self), now());
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(10) {
                        self.sync_chats();
                    }
                }
                _ = discovery.tick(), if self.config.discovery => {
                    Metrics::inc(&self.metrics.loop_branch, "branch", "discovery");
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
            }
        }
    }
}
