//! The cloneable handle to the event loop: typed commands, each with a
//! oneshot for its reply.

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::protocols::bandwidth::BandwidthPayment;
use crate::protocols::keys::session::{self, KeyClient, KeyService};
use crate::protocols::keys::wire::{KeyRequest, KeyResponse};
use crate::protocols::live::actor::LedgerSnapshot;
use crate::protocols::live::core::{Chunk, CoreStats, JoinError, JoinReason, Part, PeerPrice};
use crate::protocols::live::wire::{
    SignedAnnouncement, SignedVodAnnouncement, StreamId, WireError,
};

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
    /// Following one more stream would break a bound.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// A key request to a peer failed (unreachable, timed out, closed).
    #[error("key request to {peer} failed: {reason}")]
    Key {
        /// The key server.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The chat could not take a message or action: malformed or badly
    /// signed, or this node is in its maximum of chats.
    #[error("chat: {0}")]
    Chat(String),
    /// The chat's rules refuse a message or action, as every peer would.
    #[error("chat: {0}")]
    ChatRefused(crate::protocols::chat::Drop),
    /// A social record was refused by the rules every node applies.
    #[error("social record refused: {0}")]
    Social(crate::protocols::social::RecordError),
    /// The record store is full (its bound is
    /// [`crate::protocols::social::SocialConfig::max_records`]).
    #[error("social record store: {0}")]
    SocialStore(String),
    /// Subscribing to a topic failed.
    #[error("subscribing to {topic}: {reason}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// A connected peer as seen by this node.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Peer id.
    pub peer_id: PeerId,
    /// Gossipsub score (includes the application score).
    pub score: Option<f64>,
    /// Application-level score from payload checks.
    pub app_score: f64,
    /// Gossipsub topics the peer is subscribed to (as recorded here).
    pub topics: Vec<String>,
}

/// A held chunk's facts (no payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Sequence number.
    pub seq: u64,
    /// Payload CID (text form).
    pub cid: String,
    /// Payload size.
    pub size: u32,
    /// Media duration (µs).
    pub duration_us: u32,
    /// Creator's publication time (unix ms).
    pub published_at_ms: u64,
    /// When it became available on this node (unix ms).
    pub ready_at_ms: u64,
    /// Whether the creator marked a timestamp discontinuity before it.
    pub discontinuity: bool,
}

/// What the swarm holds, for metrics, the API and flood tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// The relay core's streams, chunks and bytes.
    pub core: CoreStats,
    /// Streams the announcement policy tracks.
    pub tracked_announcements: usize,
    /// Peers with an announcement rate bucket.
    pub announce_sources: usize,
    /// Peers with an application score.
    pub app_scores: usize,
    /// Connected peers.
    pub peers: usize,
    /// Remote (peer, topic) subscriptions gossipsub records.
    pub remote_subscriptions: usize,
    /// Payload requests in flight.
    pub fetches_in_flight: usize,
}

/// Requests to the event loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Dial an address.
    Dial(Multiaddr, oneshot::Sender<Result<(), SwarmError>>),
    /// Follow a stream for a reason, from a sequence number or (`None`)
    /// the latest chunk.
    Join {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: JoinReason,
        /// Where to start.
        start: Option<u64>,
        /// Reply.
        reply: oneshot::Sender<Result<(), SwarmError>>,
    },
    /// Stop following a stream for a reason.
    Leave(StreamId, JoinReason, oneshot::Sender<()>),
    /// Publish a locally created chunk.
    Publish(Box<Chunk>, oneshot::Sender<Result<(), SwarmError>>),
    /// Publish a locally created part.
    PublishPart(Box<Part>, oneshot::Sender<Result<(), SwarmError>>),
    /// One held part: stream, segment, index.
    Part(StreamId, u64, u16, oneshot::Sender<Option<Arc<Part>>>),
    /// Publish an announcement.
    Announce(
        Box<SignedAnnouncement>,
        oneshot::Sender<Result<(), SwarmError>>,
    ),
    /// Publish a VOD announcement.
    AnnounceVod(
        Box<SignedVodAnnouncement>,
        oneshot::Sender<Result<(), SwarmError>>,
    ),
    /// Join a stream's chat (and ask a peer for its history).
    ChatJoin(StreamId, oneshot::Sender<Result<bool, SwarmError>>),
    /// Leave a stream's chat.
    ChatLeave(StreamId, oneshot::Sender<()>),
    /// Send a chat message this node signed.
    ChatSend(
        Box<crate::protocols::chat::wire::SignedChatMessage>,
        oneshot::Sender<Result<(), SwarmError>>,
    ),
    /// Publish a moderation action this node signed.
    ChatModerate(
        Box<crate::protocols::chat::wire::SignedModAction>,
        oneshot::Sender<Result<(), SwarmError>>,
    ),
    /// The chat's state for the API: history and moderators.
    ChatState(
        StreamId,
        oneshot::Sender<Option<(crate::protocols::chat::wire::HistoryResponse, Vec<[u8; 32]>)>>,
    ),
    /// Publish a social record (signed here); `own`: about this node's
    /// user (pushed again periodically).
    SocialPut {
        /// The record.
        record: Box<crate::protocols::social::SocialRecord>,
        /// About this node's user.
        own: bool,
        /// The record as now held, or why it was refused.
        reply: oneshot::Sender<Result<crate::protocols::social::SocialRecord, SwarmError>>,
    },
    /// Look a social record up (local store, then the DHT).
    SocialGet(
        crate::protocols::social::RecordKey,
        crate::protocols::social::actor::GetReply,
    ),
    /// The social record held here under a key (no lookup).
    SocialLocal(
        crate::protocols::social::RecordKey,
        oneshot::Sender<Option<crate::protocols::social::SocialRecord>>,
    ),
    /// The social records held here of one kind (at most `limit`).
    SocialHeld(
        crate::protocols::social::RecordKind,
        usize,
        oneshot::Sender<Vec<crate::protocols::social::SocialRecord>>,
    ),
    /// One held chunk.
    Chunk(StreamId, u64, oneshot::Sender<Option<Arc<Chunk>>>),
    /// The held chunks of a stream.
    Chunks(StreamId, oneshot::Sender<Vec<ChunkMeta>>),
    /// Streams followed and why.
    Joined(oneshot::Sender<Vec<(StreamId, Vec<JoinReason>)>>),
    /// List connected peers.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// Current listen addresses.
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    /// What the swarm holds.
    Stats(oneshot::Sender<SwarmStats>),
    /// Remember addresses of a peer (for dials by peer id, such as a key
    /// session's).
    AddAddresses(PeerId, Vec<Multiaddr>, oneshot::Sender<()>),
    /// What the node makes of a peer's bandwidth terms.
    SetPeerPrice(PeerId, PeerPrice),
    /// A peer's voucher raised what it paid.
    Credit {
        /// The peer.
        peer: PeerId,
        /// By how much (planck).
        raised: u128,
    },
    /// Send a peer a voucher for payloads it served.
    Pay {
        /// The peer.
        peer: PeerId,
        /// The voucher.
        payment: BandwidthPayment,
        /// Whether the peer received it.
        reply: oneshot::Sender<bool>,
    },
    /// What the bandwidth ledger holds.
    Ledger(oneshot::Sender<LedgerSnapshot>),
    /// Stop the event loop.
    Shutdown(oneshot::Sender<()>),
}

/// Cloneable handle to the event loop.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
    pub(crate) keys: Arc<KeyClient>,
    pub(crate) bitswap: crate::protocols::bitswap::Bitswap,
    pub(crate) metrics: Metrics,
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

    /// Tells the scheduler what `peer` charges (or that it is never to be
    /// asked for payloads).
    pub async fn set_peer_price(&self, peer: PeerId, price: PeerPrice) -> Result<(), SwarmError> {
        self.tx
            .send(Command::SetPeerPrice(peer, price))
            .await
            .map_err(|_| SwarmError::Stopped)
    }

    /// Credits `peer` with what its voucher raised (after the node checked
    /// it): a peer cut off for payment is served again at once.
    pub async fn credit(&self, peer: PeerId, raised: u128) -> Result<(), SwarmError> {
        self.tx
            .send(Command::Credit { peer, raised })
            .await
            .map_err(|_| SwarmError::Stopped)
    }

    /// Sends `peer` a voucher for payloads it served; returns whether the
    /// peer received it (it checks the voucher afterwards).
    pub async fn pay(&self, peer: PeerId, payment: BandwidthPayment) -> Result<bool, SwarmError> {
        self.call(|reply| Command::Pay {
            peer,
            payment,
            reply,
        })
        .await
    }

    /// What the bandwidth ledger holds: this node's terms and every peer's
    /// account.
    pub async fn ledger(&self) -> Result<LedgerSnapshot, SwarmError> {
        self.call(Command::Ledger).await
    }

    /// Dials `addr`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), SwarmError> {
        self.call(|tx| Command::Dial(addr, tx)).await?
    }

    /// Follows `stream` for `reason`, from chunk `start` (e.g. 0 for a
    /// stream announced but not begun) or from the latest chunk peers hold
    /// when `None`.
    pub async fn join(
        &self,
        stream: StreamId,
        reason: JoinReason,
        start: Option<u64>,
    ) -> Result<(), SwarmError> {
        self.call(|reply| Command::Join {
            stream,
            reason,
            start,
            reply,
        })
        .await?
    }

    /// Stops following `stream` for `reason` (the stream is left when no
    /// reason remains).
    pub async fn leave(&self, stream: StreamId, reason: JoinReason) -> Result<(), SwarmError> {
        self.call(|tx| Command::Leave(stream, reason, tx)).await
    }

    /// Publishes a chunk this node created (and signed).
    pub async fn publish(&self, chunk: Chunk) -> Result<(), SwarmError> {
        self.call(|tx| Command::Publish(Box::new(chunk), tx))
            .await?
    }

    /// Publishes a part (LL-HLS) this node created (and signed).
    pub async fn publish_part(&self, part: Part) -> Result<(), SwarmError> {
        self.call(|tx| Command::PublishPart(Box::new(part), tx))
            .await?
    }

    /// Part `index` of segment `seq` of `stream`, if held.
    pub async fn part(
        &self,
        stream: StreamId,
        seq: u64,
        index: u16,
    ) -> Result<Option<Arc<Part>>, SwarmError> {
        self.call(|tx| Command::Part(stream, seq, index, tx)).await
    }

    /// Publishes an announcement.
    pub async fn announce(&self, a: SignedAnnouncement) -> Result<(), SwarmError> {
        self.call(|tx| Command::Announce(Box::new(a), tx)).await?
    }

    /// Publishes a VOD announcement this node signed.
    pub async fn announce_vod(&self, v: SignedVodAnnouncement) -> Result<(), SwarmError> {
        self.call(|tx| Command::AnnounceVod(Box::new(v), tx))
            .await?
    }

    /// Joins `stream`'s chat: subscribes, and asks a peer in it for the
    /// recent history (delivered as [`crate::Event::ChatMessage`]s).
    /// `Ok(false)`: this node was in it already.
    pub async fn chat_join(&self, stream: StreamId) -> Result<bool, SwarmError> {
        self.call(|tx| Command::ChatJoin(stream, tx)).await?
    }

    /// Leaves `stream`'s chat.
    pub async fn chat_leave(&self, stream: StreamId) -> Result<(), SwarmError> {
        self.call(|tx| Command::ChatLeave(stream, tx)).await
    }

    /// Publishes a social record this node signed (checked and merged like
    /// any other; refused with the rule it broke). `own`: about this node's
    /// user. Returns the record as now held.
    pub async fn social_put(
        &self,
        record: crate::protocols::social::SocialRecord,
        own: bool,
    ) -> Result<crate::protocols::social::SocialRecord, SwarmError> {
        self.call(|reply| Command::SocialPut {
            record: Box::new(record),
            own,
            reply,
        })
        .await?
    }

    /// Looks a social record up: what this node holds, then the DHT (every
    /// record found is checked; the newest profile or the merge of every
    /// follow set is returned).
    pub async fn social_get(
        &self,
        key: crate::protocols::social::RecordKey,
    ) -> Result<Option<crate::protocols::social::SocialRecord>, SwarmError> {
        self.call(|tx| Command::SocialGet(key, tx)).await?
    }

    /// The social record this node holds under `key` (no DHT lookup;
    /// `None` when there is none or the loop stopped).
    pub async fn social_held_one(
        &self,
        key: crate::protocols::social::RecordKey,
    ) -> Option<crate::protocols::social::SocialRecord> {
        self.call(|tx| Command::SocialLocal(key, tx))
            .await
            .ok()
            .flatten()
    }

    /// The social records of `kind` this node holds (at most `limit`).
    pub async fn social_held(
        &self,
        kind: crate::protocols::social::RecordKind,
        limit: usize,
    ) -> Result<Vec<crate::protocols::social::SocialRecord>, SwarmError> {
        self.call(|tx| Command::SocialHeld(kind, limit, tx)).await
    }

    /// Sends a chat message this node signed, after the checks every peer
    /// applies (refused with the rule it broke).
    pub async fn chat_send(
        &self,
        m: crate::protocols::chat::wire::SignedChatMessage,
    ) -> Result<(), SwarmError> {
        self.call(|tx| Command::ChatSend(Box::new(m), tx)).await?
    }

    /// Publishes a moderation action this node signed (refused if it would
    /// not take effect).
    pub async fn chat_moderate(
        &self,
        a: crate::protocols::chat::wire::SignedModAction,
    ) -> Result<(), SwarmError> {
        self.call(|tx| Command::ChatModerate(Box::new(a), tx))
            .await?
    }

    /// The chat's recent messages, actions in force and moderators
    /// (`None`: not in that chat).
    pub async fn chat_state(
        &self,
        stream: StreamId,
    ) -> Result<Option<(crate::protocols::chat::wire::HistoryResponse, Vec<[u8; 32]>)>, SwarmError>
    {
        self.call(|tx| Command::ChatState(stream, tx)).await
    }

    /// A chunk held for `stream`, if any.
    pub async fn chunk(
        &self,
        stream: StreamId,
        seq: u64,
    ) -> Result<Option<Arc<Chunk>>, SwarmError> {
        self.call(|tx| Command::Chunk(stream, seq, tx)).await
    }

    /// The chunks held for `stream`, in order.
    pub async fn chunks(&self, stream: StreamId) -> Result<Vec<ChunkMeta>, SwarmError> {
        self.call(|tx| Command::Chunks(stream, tx)).await
    }

    /// Streams followed, with why.
    pub async fn joined(&self) -> Result<Vec<(StreamId, Vec<JoinReason>)>, SwarmError> {
        self.call(Command::Joined).await
    }

    /// Connected peers with scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, SwarmError> {
        self.call(Command::Peers).await
    }

    /// Listen addresses.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, SwarmError> {
        self.call(Command::ListenAddrs).await
    }

    /// What the swarm holds now.
    pub async fn stats(&self) -> Result<SwarmStats, SwarmError> {
        self.call(Command::Stats).await
    }

    /// Asks `peer` for an epoch key (dialing `addrs` if not connected), on
    /// this node's key session with `peer` (opened on first use and kept;
    /// requests to one peer go one at a time).
    pub async fn request_key(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: KeyRequest,
    ) -> Result<KeyResponse, SwarmError> {
        let prepare = || async {
            if !addrs.is_empty() {
                let _ = self
                    .call(|tx| Command::AddAddresses(peer, addrs.clone(), tx))
                    .await;
            }
        };
        self.keys
            .request(peer, &request, prepare)
            .await
            .map_err(|e| SwarmError::Key {
                peer,
                reason: e.to_string(),
            })
    }

    /// Opens a key session to `peer` that the caller drives with raw
    /// frames ([`crate::protocols::keys::session::write_frame`]): for tests
    /// of the server's bounds with hand-made and hostile input.
    #[cfg(feature = "test-utils")]
    pub async fn open_raw_key_session(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<libp2p::Stream, SwarmError> {
        if !addrs.is_empty() {
            self.call(|tx| Command::AddAddresses(peer, addrs, tx))
                .await?;
        }
        self.keys.open_raw(peer).await.map_err(|e| SwarmError::Key {
            peer,
            reason: e.to_string(),
        })
    }

    /// Key sessions this node has open to key servers.
    pub fn key_sessions(&self) -> usize {
        self.keys.sessions()
    }

    /// Answers the key sessions peers open to this node with `service`
    /// (one task per session, bounded by [`crate::Config::keys`]). Without
    /// it, peers cannot open key sessions here. At most once per swarm.
    pub fn serve_keys(&self, service: Arc<dyn KeyService>) -> Result<(), SwarmError> {
        let incoming = self
            .keys
            .accept()
            .map_err(|_| SwarmError::Build("key sessions are already served".into()))?;
        tokio::spawn(session::serve(
            incoming,
            service,
            self.keys.config().clone(),
            self.metrics.clone(),
        ));
        Ok(())
    }

    /// Starts a key-only listener ([`crate::protocols::keys::listener`]) on
    /// `listen` under `keypair` (this node's identity), answering with
    /// `service` under the same bounds and metrics as [`Client::serve_keys`].
    pub async fn start_key_listener(
        &self,
        keypair: libp2p::identity::Keypair,
        listen: &[Multiaddr],
        service: Arc<dyn KeyService>,
        max_connections: u32,
    ) -> Result<crate::protocols::keys::listener::KeyListener, SwarmError> {
        crate::protocols::keys::listener::start(
            keypair,
            listen,
            service,
            self.keys.config().clone(),
            max_connections,
            self.metrics.clone(),
        )
        .await
    }

    /// Bitswap on this swarm: serve blocks, fetch blocks.
    pub fn bitswap(&self) -> &crate::protocols::bitswap::Bitswap {
        &self.bitswap
    }

    /// Stops the event loop and waits for it to acknowledge.
    pub async fn shutdown(&self) -> Result<(), SwarmError> {
        self.call(Command::Shutdown).await
    }
}
