//! Typed errors of the node's services. The HTTP layer maps each to a
//! status code; the CLI prints them as they are.

use vilokanam_media::ts::TsError;
use vilokanam_storage::StorageError;
use vilokanam_swarm::wire::WireError;
use vilokanam_swarm::{JoinError, SwarmError};

/// What a node operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The bandwidth market cannot run as configured (a fee with no chain
    /// or account, a chain that cannot be reached).
    #[error("bandwidth fees: {0}")]
    Bandwidth(String),
    /// A stream id that does not parse.
    #[error("invalid stream id {input:?}: {reason}")]
    InvalidStreamId {
        /// What was given.
        input: String,
        /// Why it is not a stream id.
        reason: WireError,
    },
    /// A stream name, title, tag or codec out of range.
    #[error("invalid stream {name:?}: {reason}")]
    InvalidStream {
        /// The stream name.
        name: String,
        /// What is out of range.
        reason: WireError,
    },
    /// A paid stream's terms that cannot be signed: price, payee or
    /// chain out of range.
    #[error("invalid offer: {0}")]
    InvalidOffer(String),
    /// A stream dearer than the price cap the user set.
    #[error("stream {stream} costs {}, above the limit of {} (--max-price, or max_price in config.toml)", vilokanam_chain::format_rate(*.price), vilokanam_chain::format_rate(*.cap))]
    TooExpensive {
        /// The stream.
        stream: String,
        /// Its price per second (planck).
        price: u128,
        /// The cap (planck per second).
        cap: u128,
    },
    /// A paid stream's payload, or its playlist, on a node that holds no
    /// key for it: it has not paid.
    #[error("stream {stream} is paid ({}): this node holds no key for {what}, so it cannot serve it as video (it has not paid for it)", vilokanam_chain::format_rate(*.price))]
    Unpaid {
        /// The stream.
        stream: String,
        /// Its price per second (planck).
        price: u128,
        /// What is missing: `epoch 4711`, or `any epoch`.
        what: String,
    },
    /// Paying for a stream failed: no chain, no account, wrong chain, the
    /// channel could not be opened, the key server unreachable.
    #[error("paying for {stream}: {reason}")]
    Payment {
        /// The stream.
        stream: String,
        /// Why.
        reason: String,
    },
    /// The budget is spent: nothing more is signed.
    #[error("budget exhausted for {stream}: paid {seconds} s, spent {} of {}; watch it again with a larger --budget", vilokanam_chain::format_amount(*.spent), vilokanam_chain::format_amount(*.budget))]
    BudgetExhausted {
        /// The stream.
        stream: String,
        /// Seconds paid.
        seconds: u64,
        /// Amount signed over.
        spent: u128,
        /// The budget.
        budget: u128,
    },
    /// The key server refused the key, with its reason.
    #[error("the key server refused epoch {epoch} of {stream}: {reason}")]
    KeyRefused {
        /// The stream.
        stream: String,
        /// The epoch.
        epoch: u64,
        /// Its reason.
        reason: vilokanam_swarm::protocols::keys::wire::KeyRefusal,
    },
    /// A paid payload that does not decrypt with the key of its epoch.
    #[error("segment {seq} of {stream} does not decrypt: {reason}")]
    Undecryptable {
        /// The stream.
        stream: String,
        /// The sequence number.
        seq: u64,
        /// The paywall's reason.
        reason: vilokanam_swarm::protocols::keys::paywall::PaywallError,
    },
    /// A segment for a stream that was never started here.
    #[error("stream {name:?} is not started: POST /api/v0/publish/{name}/start first")]
    NotStarted {
        /// The stream name.
        name: String,
    },
    /// A segment for a stream its creator ended.
    #[error("stream {name:?} was ended: POST /api/v0/publish/{name}/start to resume it")]
    Ended {
        /// The stream name.
        name: String,
    },
    /// A part posted out of order (parts of a segment come 0, 1, 2, …).
    #[error("part {got} of stream {name:?} is out of order: expected part {expected}")]
    PartOutOfOrder {
        /// The stream name.
        name: String,
        /// The part expected next.
        expected: u16,
        /// The part posted.
        got: u16,
    },
    /// An end for a stream this node does not publish.
    #[error("stream {name:?} is not published here")]
    NotPublished {
        /// The stream name.
        name: String,
    },
    /// A segment that is not an independently decodable MPEG-TS chunk.
    #[error("segment refused: {0}")]
    BadSegment(#[from] TsError),
    /// A playlist of a stream this node neither watches nor publishes.
    #[error(
        "stream {stream} is not watched here: POST /api/v0/watch/{stream} first (vilokanam watch)"
    )]
    NotWatched {
        /// The stream.
        stream: String,
    },
    /// A stream this node knows nothing about.
    #[error("stream {stream} is not known here")]
    UnknownStream {
        /// The stream.
        stream: String,
    },
    /// A segment this node does not hold (never had it, or evicted).
    #[error("segment {seq} of {stream} is not held here")]
    NotHeld {
        /// The stream.
        stream: String,
        /// The sequence number.
        seq: u64,
    },
    /// A part this node does not hold (never had it, evicted, or it did
    /// not come in time).
    #[error("part {index} of segment {seq} of {stream} is not held here")]
    PartNotHeld {
        /// The stream.
        stream: String,
        /// The segment's sequence number.
        seq: u64,
        /// The part's index.
        index: u16,
    },
    /// A blocking playlist reload asked for a segment more than two past
    /// the last one (RFC 8216bis: answered 400 at once).
    #[error("_HLS_msn={msn} (part {part:?}) is more than two segments past the playlist's last")]
    ReloadTooFar {
        /// The media sequence number asked for.
        msn: u64,
        /// The part asked for.
        part: Option<u64>,
    },
    /// A blocking playlist reload waited three target durations in vain
    /// (RFC 8216bis: answered 503).
    #[error("_HLS_msn={msn} (part {part:?}) did not arrive within three target durations")]
    ReloadTimeout {
        /// The media sequence number asked for.
        msn: u64,
        /// The part asked for.
        part: Option<u64>,
    },
    /// Following one more stream would break a bound.
    #[error(transparent)]
    Capacity(JoinError),
    /// The network layer failed.
    #[error("network: {0}")]
    Swarm(SwarmError),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A VOD operation failed.
    #[error("VOD: {0}")]
    Vod(String),
    /// A chat message or action is malformed (too long, a bad key, ...).
    #[error("invalid chat input: {0}")]
    InvalidChat(String),
    /// The chat's rules refuse it (banned, rate limit, slow mode, not a
    /// moderator, ...), as every peer would. `retry`: it would pass later
    /// (a rate, slow mode, a timeout).
    #[error("refused by the chat's rules: {reason}")]
    ChatRefused {
        /// The rule.
        reason: String,
        /// Whether waiting helps.
        retry: bool,
    },
    /// This node is in its maximum of chats.
    #[error("{0}")]
    ChatCapacity(String),
    /// A profile, follow or avatar input is malformed.
    #[error("invalid input: {0}")]
    InvalidSocial(String),
    /// The record rules refuse a social record (as every peer would).
    #[error("refused by the record rules: {0}")]
    SocialRefused(String),
    /// The social record store is full.
    #[error("{0}")]
    SocialFull(String),
    /// No such record here or on the DHT.
    #[error("{0}")]
    NoRecord(String),
    /// This node is not in that stream's chat.
    #[error("this node is not in the chat of {0} (join it: POST /api/v0/streams/{0}/chat/join)")]
    NotInChat(String),
    /// No VOD with this root is held here.
    #[error("no VOD {root} is held here")]
    NoVod {
        /// The root CID.
        root: String,
    },
    /// A VOD's DAG is invalid or a block is missing.
    #[error("VOD: {0}")]
    Unixfs(#[from] vilokanam_storage::unixfs::UnixfsError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl From<SwarmError> for NodeError {
    fn from(e: SwarmError) -> Self {
        match e {
            SwarmError::Join(j) => NodeError::Capacity(j),
            SwarmError::Stopped => NodeError::ShuttingDown,
            other => NodeError::Swarm(other),
        }
    }
}
