//! The relay core's vocabulary: its configuration, the chunks it holds,
//! why it follows a stream, and every verdict, fault and instruction it
//! produces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;

use crate::protocols::live::wire::{
    ChunkRequest, SignedHeader, SignedPartHeader, StreamId, WireError,
};

/// Tunables of the relay core. Every bound has a default chosen for a
/// desktop node; relay operators raise them.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayConfig {
    /// Chunks kept in memory per stream for serving peers. Default 30.
    pub window: usize,
    /// Bytes of chunk payload kept per stream. Default 64 MiB.
    pub max_stream_bytes: usize,
    /// Bytes of chunk payload kept over all streams. Default 512 MiB. A
    /// stream always keeps its newest chunk, so the worst case is the
    /// larger of this and `max_streams` × the largest chunk.
    pub max_total_bytes: usize,
    /// Streams followed at once, for any reason. Default 64.
    pub max_streams: usize,
    /// Of those, streams followed only to relay them (`--relay`).
    /// Default 32.
    pub max_relayed: usize,
    /// A stream followed only to relay it is left after this long without
    /// a new chunk. Default 30 s.
    pub silence_timeout: Duration,
    /// A stream followed only to relay it is left this long after its
    /// creator announced its end (late peers still get its last chunks).
    /// Default 10 s.
    pub ended_linger: Duration,
    /// A header this far behind the newest known chunk is stale (ignored).
    /// Default 30.
    pub max_behind: u64,
    /// A header this far ahead of the newest known chunk re-anchors the
    /// stream at the live edge. Default 120.
    pub max_ahead: u64,
    /// How long one payload request may take. Default 5 s.
    pub fetch_timeout: Duration,
    /// Give up on a chunk this long after first hearing of it. Default 12 s.
    pub give_up_after: Duration,
    /// Pause before asking the same peers again. Default 300 ms.
    pub retry_backoff: Duration,
    /// How many missing earlier chunks to fetch when a gap appears. Default 8.
    pub max_gap_fill: u64,
    /// How long one part request may take. Default 1 s: a part is worth
    /// something only near the live edge.
    pub part_fetch_timeout: Duration,
    /// Give up on a part this long after first hearing of it (its
    /// segment is then pulled whole). Default 3 s.
    pub part_give_up_after: Duration,
    /// Parts being fetched per stream at most. Default 64.
    pub max_pending_parts: usize,
    /// Parts are kept for this many newest segments. Default 4.
    pub part_segments: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            window: 30,
            max_stream_bytes: 64 << 20,
            max_total_bytes: 512 << 20,
            max_streams: 64,
            max_relayed: 32,
            silence_timeout: Duration::from_secs(30),
            ended_linger: Duration::from_secs(10),
            max_behind: 30,
            max_ahead: 120,
            fetch_timeout: Duration::from_secs(5),
            give_up_after: Duration::from_secs(12),
            retry_backoff: Duration::from_millis(300),
            max_gap_fill: 8,
            part_fetch_timeout: Duration::from_secs(1),
            part_give_up_after: Duration::from_secs(3),
            max_pending_parts: 64,
            part_segments: 4,
        }
    }
}

impl RelayConfig {
    /// Sets [`RelayConfig::window`] (at least 1).
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// Sets [`RelayConfig::max_streams`] (at least 1).
    pub fn with_max_streams(mut self, n: usize) -> Self {
        self.max_streams = n.max(1);
        self
    }

    /// Sets [`RelayConfig::max_relayed`].
    pub fn with_max_relayed(mut self, n: usize) -> Self {
        self.max_relayed = n;
        self
    }

    /// Sets [`RelayConfig::max_total_bytes`].
    pub fn with_max_total_bytes(mut self, n: usize) -> Self {
        self.max_total_bytes = n;
        self
    }

    /// Sets [`RelayConfig::silence_timeout`].
    pub fn with_silence_timeout(mut self, d: Duration) -> Self {
        self.silence_timeout = d;
        self
    }
}

/// A verified chunk: header plus the payload that hashes to its CID.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// Creator-signed header.
    pub header: SignedHeader,
    /// The payload (checked against the CID).
    pub payload: Bytes,
}

impl Chunk {
    /// Stream of this chunk.
    pub fn stream(&self) -> &StreamId {
        &self.header.header.stream
    }
    /// Sequence number of this chunk.
    pub fn seq(&self) -> u64 {
        self.header.header.seq
    }
}

/// A verified part (LL-HLS partial segment): header plus the payload
/// that hashes to its CID.
#[derive(Clone, Debug)]
pub struct Part {
    /// Creator-signed part header.
    pub header: SignedPartHeader,
    /// The payload (checked against the CID).
    pub payload: Bytes,
}

impl Part {
    /// Stream of this part.
    pub fn stream(&self) -> &StreamId {
        &self.header.header.stream
    }
    /// Sequence number of its segment.
    pub fn seq(&self) -> u64 {
        self.header.header.seq
    }
    /// Its position in the segment.
    pub fn index(&self) -> u16 {
        self.header.header.index
    }
}

/// Identifies a part fetch: stream, segment sequence, part index.
pub type PartKey = (StreamId, u64, u16);

/// A chunk held in the window, with when it became available here.
#[derive(Clone, Debug)]
pub struct HeldChunk {
    /// The verified chunk.
    pub chunk: Arc<Chunk>,
    /// When it was published here or its payload verified.
    pub ready_at: Instant,
}

/// Why a node follows a stream. A stream is left when its last reason goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum JoinReason {
    /// This node creates the stream.
    Publish,
    /// The user watches it (`POST /watch`).
    Watch,
    /// Relay mode follows every announced live stream.
    Relay,
}

/// Why a join was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The node already follows `max_streams` streams.
    #[error("this node already follows {cap} streams (max_streams); leave one first")]
    TooManyStreams {
        /// The cap.
        cap: usize,
    },
    /// The node already relays `max_relayed` streams it does not watch.
    #[error("this node already relays {cap} streams (max_relayed)")]
    RelayCapReached {
        /// The cap.
        cap: usize,
    },
    /// The stream was left for silence less than `silence_timeout` ago:
    /// relaying it again at once would only repeat the silence.
    #[error("this stream went silent here recently; not relaying it again yet")]
    RecentlySilent,
}

impl JoinError {
    /// A metric label.
    pub fn label(&self) -> &'static str {
        match self {
            JoinError::TooManyStreams { .. } => "max_streams",
            JoinError::RelayCapReached { .. } => "relay_cap",
            JoinError::RecentlySilent => "recently_silent",
        }
    }
}

/// Why a gossip message was refused and its sender penalised (P4).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Malformed, oversized, out-of-range or badly signed.
    #[error("invalid message: {0}")]
    Invalid(#[from] WireError),
    /// The header names another stream than the topic it came on.
    #[error("header for stream {header} arrived on topic of {topic}")]
    WrongTopic {
        /// Stream named in the header.
        header: String,
        /// Stream of the topic.
        topic: String,
    },
    /// A message kind that does not belong on the topic it came on (an
    /// announcement on a stream topic, a chunk header on the announce
    /// topic, anything on a topic this node does not know).
    #[error("{kind} does not belong on topic {topic}")]
    WrongKind {
        /// What arrived.
        kind: &'static str,
        /// Where.
        topic: String,
    },
}

/// Why a message was dropped (not forwarded) without penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// Older than the sequence window.
    Stale,
    /// The creator signed two different payloads for one sequence number;
    /// the first one seen is kept. Not a fault of the forwarding peer.
    Equivocation,
    /// We are not following this stream.
    NotJoined,
    /// No peer could serve the payload in time.
    PayloadUnavailable,
    /// The peer that sent it exceeded its announcement rate.
    RateLimited,
    /// The stream was announced again sooner than the minimum interval.
    TooFrequent,
    /// An announcement not newer than the one already seen (a replay).
    Outdated,
    /// The creator already has the most streams this node tracks per
    /// creator, or announces new VODs faster than this node forwards them.
    CreatorLimit,
    /// Signed with a timestamp too far in the future.
    FromFuture,
    /// The same header arrived from more peers than a pending chunk tracks.
    Duplicate,
    /// More parts of a stream are being fetched than a node tracks.
    TooManyPending,
}

impl IgnoreReason {
    /// A metric label.
    pub fn label(self) -> &'static str {
        match self {
            IgnoreReason::Stale => "stale",
            IgnoreReason::Equivocation => "equivocation",
            IgnoreReason::NotJoined => "not_joined",
            IgnoreReason::PayloadUnavailable => "payload_unavailable",
            IgnoreReason::RateLimited => "rate_limited",
            IgnoreReason::TooFrequent => "too_frequent",
            IgnoreReason::Outdated => "outdated",
            IgnoreReason::CreatorLimit => "creator_limit",
            IgnoreReason::FromFuture => "from_future",
            IgnoreReason::Duplicate => "duplicate",
            IgnoreReason::TooManyPending => "too_many_pending",
        }
    }
}

/// What gossipsub should do with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it.
    Accept,
    /// Drop it and penalise the sender (P4).
    Reject(Rejection),
    /// Drop it quietly.
    Ignore(IgnoreReason),
}

/// Why a peer is penalised outside gossipsub's own validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// It served a payload that does not match the header it was asked for
    /// (wrong size or not hashing to the CID).
    #[error("served a payload that does not match: {0}")]
    BadPayload(WireError),
    /// It served a chunk whose header fails verification.
    #[error("served a chunk with an invalid header: {0}")]
    BadHeader(WireError),
    /// It served another chunk than the one asked for.
    #[error("asked for {asked_stream} #{asked_seq}, served {got_stream} #{got_seq}")]
    WrongChunk {
        /// Stream asked for.
        asked_stream: String,
        /// Sequence asked for.
        asked_seq: u64,
        /// Stream served.
        got_stream: String,
        /// Sequence served.
        got_seq: u64,
    },
}

impl Misbehaviour {
    /// A metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Misbehaviour::BadPayload(_) => "bad_payload",
            Misbehaviour::BadHeader(_) => "bad_header",
            Misbehaviour::WrongChunk { .. } => "wrong_chunk",
        }
    }
}

/// Why a payload request produced no chunk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The peer answered that it does not hold the chunk.
    #[error("the peer does not hold the chunk")]
    NotFound,
    /// No answer within the request timeout.
    #[error("the request timed out")]
    Timeout,
    /// The connection closed or could not be made.
    #[error("the connection failed or closed")]
    Disconnected,
    /// The peer does not speak the chunk protocol.
    #[error("the peer does not speak the chunk protocol")]
    Unsupported,
    /// The peer answered something that is not a chunk.
    #[error("the peer answered with something other than a chunk")]
    Unexpected,
    /// The stream failed (read/write error, or an oversized or undecodable
    /// response).
    #[error("stream error: {0}")]
    Io(String),
}

/// What this node makes of a peer as a server of payloads, from its
/// bandwidth terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerPrice {
    /// Payloads may be pulled from it at this fee (planck/MiB; 0: free).
    Usable(u64),
    /// Its fee is over this node's `max_fee`, or on another chain: it is
    /// never asked for payloads.
    Unusable,
}

/// Identifies a payload fetch so its result can be matched.
pub type FetchKey = (StreamId, u64);

/// Sequence number used in the [`FetchKey`] of a `Latest` request.
pub const LATEST: u64 = u64::MAX;

/// Instructions for the actor.
#[derive(Clone, Debug)]
pub enum Output {
    /// Subscribe to the stream's topic (the core started following it).
    Subscribe(StreamId),
    /// Unsubscribe from the stream's topic (the core stopped following it).
    Unsubscribe(StreamId),
    /// Report a verdict for a gossip message.
    Validation {
        /// The message.
        msg_id: MessageId,
        /// The peer we got it from.
        source: PeerId,
        /// What to do with it.
        verdict: Verdict,
    },
    /// Send this request to `peer`; report the result with the same key.
    Fetch {
        /// Whom to ask.
        peer: PeerId,
        /// What to ask.
        request: ChunkRequest,
        /// Which chunk it is for (`seq == LATEST` for a `Latest` request).
        key: FetchKey,
    },
    /// Lower the peer's application score.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// What it did.
        reason: Misbehaviour,
    },
    /// A verified chunk is available (emit to the node, serve to peers).
    Ready(Arc<Chunk>),
    /// A payload pulled from `peer` verified against its CID (what the
    /// node pays that peer for, if it charges).
    Verified {
        /// Who served it.
        peer: PeerId,
        /// Its stream.
        stream: StreamId,
        /// Payload bytes.
        bytes: u64,
    },
    /// `peer` serves no more until paid (it answered `PaymentRequired`).
    PaymentDemanded {
        /// Who.
        peer: PeerId,
        /// What it says is owed in all (planck).
        owed: u128,
        /// What it says was paid.
        paid: u128,
    },
    /// Send this part request to `peer`; report the result with the same key.
    FetchPart {
        /// Whom to ask.
        peer: PeerId,
        /// What to ask (by CID).
        request: ChunkRequest,
        /// Which part it is for.
        key: PartKey,
    },
    /// A verified part is available (emit to the node, serve to peers).
    PartReady(Arc<Part>),
    /// A part could not be obtained in time; its segment comes whole.
    PartMissing(PartKey),
    /// A chunk could not be obtained and will be skipped.
    Missing {
        /// Stream.
        stream: StreamId,
        /// Sequence number given up on.
        seq: u64,
    },
}
