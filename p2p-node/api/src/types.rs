//! Request and response bodies of the daemon's HTTP API.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/api/v0/id` | → [`IdResponse`] |
//! | GET | `/api/v0/peers` | → `[`[`PeerView`]`]` |
//! | GET | `/api/v0/stats` | → [`NodeStats`]: what the node holds, against its caps |
//! | GET | `/api/v0/streams` | → `[`[`StreamInfo`]`]` |
//! | GET | `/api/v0/streams/{stream}` | → [`StreamInfo`] |
//! | POST | `/api/v0/watch/{stream}` | optional [`WatchRequest`] → [`WatchResponse`]: follow a stream |
//! | DELETE | `/api/v0/watch/{stream}` | → 204: stop following it |
//! | POST | `/api/v0/publish/{name}/start` | [`StartRequest`] → [`StartResponse`] |
//! | POST | `/api/v0/publish/{name}/segment?duration_us=N[&discontinuity=true]` | MPEG-TS bytes → [`SegmentResponse`] |
//! | POST | `/api/v0/publish/{name}/end` | → 204 |
//! | GET | `/streams/{stream}/live.m3u8` | → live HLS playlist of a watched stream |
//! | GET | `/streams/{stream}/{seq}.ts` | → one segment |
//! | GET | `/streams/{stream}/chunks` | → `[`[`ChunkInfo`]`]` |
//! | POST | `/api/v0/streams/{stream}/chat/join` | → 204: take part in its chat (watching or publishing a stream joins it too) |
//! | DELETE | `/api/v0/streams/{stream}/chat/join` | → 204: leave it |
//! | GET | `/api/v0/streams/{stream}/chat` | → [`ChatView`]: recent messages, moderators, actions in force |
//! | POST | `/api/v0/streams/{stream}/chat` | [`ChatSend`] → [`ChatMessageInfo`] (refused with the rule it breaks) |
//! | POST | `/api/v0/streams/{stream}/chat/moderate` | [`ChatModerate`] → [`ChatActionInfo`] |
//! | GET | `/api/v0/streams/{stream}/chat/events` | → server-sent events, each a [`ChatEvent`] |
//! | GET | `/metrics` | → Prometheus text |

use serde::{Deserialize, Serialize};

/// Every error answer: a status code and this body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, and with which input.
    pub error: String,
}

/// `GET /api/v0/id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdResponse {
    /// libp2p peer id (transport identity).
    pub peer_id: String,
    /// Creator key (hex): names this node's streams (`<key>-<name>`).
    pub creator_key: String,
    /// Voucher key (hex): signs this node's payments.
    pub voucher_key: String,
    /// Listen addresses, with `/p2p/<peer id>`.
    pub listen: Vec<String>,
    /// Where this node sells the keys of its paid streams (the key-only
    /// listener's addresses, or `listen` without one): what its offers name.
    #[serde(default)]
    pub key_addrs: Vec<String>,
}

/// One connected peer in `GET /api/v0/peers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// Peer id.
    pub peer_id: String,
    /// Gossipsub score (includes the application score).
    pub score: Option<f64>,
    /// Application score from payload checks (0 unless penalised).
    pub app_score: f64,
    /// Topics the peer is subscribed to, as this node records them.
    pub topics: Vec<String>,
}

/// Where a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Announced recently and not ended.
    Live,
    /// Known, but not announced recently (creator gone or restart).
    Quiet,
    /// Its creator announced the end.
    Ended,
}

/// One stream in `GET /api/v0/streams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Stream id (`<creator key hex>-<name>`).
    pub id: String,
    /// Title from the announcement.
    pub title: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Codec.
    pub codec: Option<String>,
    /// Start time (unix ms).
    pub started_at_ms: Option<u64>,
    /// Highest sequence announced.
    pub last_seq: Option<u64>,
    /// Live, quiet or ended.
    pub state: StreamState,
    /// The user watches it on this node.
    pub watching: bool,
    /// This node publishes it.
    pub publishing: bool,
    /// This node relays it (`--relay`).
    pub relaying: bool,
    /// Playlist path on this node.
    pub playlist: String,
    /// What watching costs; `None` for a free stream.
    #[serde(default)]
    pub offer: Option<OfferInfo>,
    /// How far behind the creator this node plays the stream (ms): now
    /// minus the creator's clock at the first frame of the newest part
    /// (or segment) here. Only for streams watched or published here.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// The LL-HLS part target (ms), when the creator cuts parts.
    #[serde(default)]
    pub part_target_ms: Option<u64>,
}

/// A paid stream's terms, as its creator signed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferInfo {
    /// Price per second of playback in planck, as a decimal string (a
    /// `u128` does not fit a JSON number).
    pub price_per_sec: String,
    /// The creator's payout account (SS58).
    pub payee: String,
    /// Genesis hash of the settlement chain (`0x` + 64 hex digits).
    pub genesis: String,
    /// Seconds per paywall epoch: each has its own content key, and a
    /// viewer that stops paying keeps at most one more epoch.
    #[serde(default = "default_epoch_secs")]
    pub epoch_secs: u32,
    /// Peer ids of the nodes that sell the epoch keys (set by the
    /// creator's node, ignored in a start request).
    #[serde(default)]
    pub key_servers: Vec<String>,
}

/// Default paywall epoch: 6 seconds.
pub const DEFAULT_EPOCH_SECS: u32 = 6;

fn default_epoch_secs() -> u32 {
    DEFAULT_EPOCH_SECS
}

impl StreamInfo {
    /// Whether the stream is live.
    pub fn live(&self) -> bool {
        self.state == StreamState::Live
    }

    /// This node's live latency for the stream in words, as `vilokanam
    /// watch` and `vilokanam testnet` print it.
    pub fn latency_summary(&self) -> String {
        let latency = self.latency_ms.map_or("unknown yet".into(), |ms| {
            format!("{:.1} s", ms as f64 / 1000.0)
        });
        match self.part_target_ms {
            Some(ms) => format!(
                "latency: the newest media here is {latency} behind the creator (LL-HLS parts of {ms} ms)"
            ),
            None => format!(
                "latency: the newest media here is {latency} behind the creator (whole segments)"
            ),
        }
    }
}

/// Optional body of `POST /api/v0/watch/{stream}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchRequest {
    /// Highest price per second to accept, in planck as a decimal string
    /// (default: the node's `max_price`, else any price). A dearer stream
    /// is refused with 402 and its price.
    pub max_price_per_sec: Option<String>,
    /// For a paid stream: the most to spend, in planck as a decimal
    /// string. The node opens one on-chain channel with it and pays from
    /// it for every second it plays (default: no budget, so a paid stream
    /// does not play).
    #[serde(default)]
    pub budget: Option<String>,
    /// Let the node top the channel up when the budget runs out, by the
    /// budget again each time, up to this total (planck, decimal string).
    #[serde(default)]
    pub top_up_to: Option<String>,
}

/// `GET /api/v0/spending`: one entry per channel this node opened to pay
/// for a stream: the sessions on, then the ended ones it remembers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendingInfo {
    /// The stream.
    pub stream: String,
    /// The channel paying it.
    pub channel: u64,
    /// Seconds of playback paid.
    pub seconds_paid: u64,
    /// Planck signed over so far (decimal string).
    pub spent: String,
    /// The budget (decimal string).
    pub budget: String,
    /// Seconds the rest of the budget pays for.
    pub seconds_left: u64,
    /// Where the channel is.
    #[serde(default)]
    pub state: SpendingState,
    /// Block from which the node may close the channel itself and take
    /// the rest of the deposit back.
    #[serde(default)]
    pub expires_at: u32,
    /// Planck this node took back by closing the channel after expiry.
    #[serde(default)]
    pub refunded: Option<String>,
}

/// Where a viewer's channel is (`GET /api/v0/spending`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendingState {
    /// The session is on: the node pays as it plays.
    #[default]
    Watching,
    /// The session ended; the rest of the deposit stays on hold until the
    /// creator closes the channel, or until `expires_at`, when the node
    /// closes it itself.
    Ended,
    /// The creator closed the channel: the rest came back.
    Closed,
    /// The node closed it after expiry and took the rest back.
    Reclaimed,
}

/// `GET /api/v0/earnings`: one entry per voucher this node holds as a payee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningInfo {
    /// The stream paid for.
    pub stream: String,
    /// The payer's channel.
    pub channel: u64,
    /// Seconds paid for.
    pub seconds: u64,
    /// Planck the best voucher pays (decimal string).
    pub accrued: String,
    /// Planck of it claimed on chain (decimal string).
    pub claimed: String,
}

/// `GET /api/v0/bandwidth`: the bandwidth market as this node sees it.
/// Amounts are planck as decimal strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthInfo {
    /// What this node charges per MiB served (0: free).
    pub fee_per_mib: u64,
    /// Unpaid bytes it serves a peer before refusing it.
    pub credit_bytes: u64,
    /// The most it pays per MiB (0: only free peers).
    pub max_fee_per_mib: u64,
    /// Payload bytes served in all.
    pub served_bytes: u64,
    /// Owed for them at its fee.
    pub earned: String,
    /// Of it, paid by vouchers.
    pub paid: String,
    /// Owed and unpaid now (credit outstanding).
    pub outstanding: String,
    /// Times a peer was cut off for not paying.
    pub cut_offs: u64,
    /// Payload requests refused until paid.
    pub refusals: u64,
    /// Per peer served.
    pub peers: Vec<BandwidthPeer>,
    /// Per stream served.
    pub streams: Vec<BandwidthStream>,
    /// Per server this node pulled from and pays.
    pub servers: Vec<BandwidthServer>,
    /// The channel this node pays bandwidth from, if open.
    pub channel: Option<u64>,
}

/// One peer this node served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthPeer {
    /// Peer id.
    pub peer: String,
    /// Payload bytes served to it.
    pub served_bytes: u64,
    /// Owed for them.
    pub owed: String,
    /// Paid by its vouchers.
    pub paid: String,
    /// Refused now until it pays.
    pub cut_off: bool,
}

/// One stream this node served payloads of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthStream {
    /// Stream id.
    pub stream: String,
    /// Payload bytes served.
    pub served_bytes: u64,
    /// Owed for them at this node's fee.
    pub earned: String,
}

/// One server this node pulled payloads from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthServer {
    /// Peer id.
    pub peer: String,
    /// Its fee per MiB, once it told it.
    pub fee_per_mib: Option<u64>,
    /// Payload bytes pulled from it that verified.
    pub verified_bytes: u64,
    /// Signed over to it.
    pub paid: String,
}

/// `POST /api/v0/watch/{stream}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    /// Stream id.
    pub stream: String,
    /// Playlist path on this node.
    pub playlist: String,
}

/// `POST /api/v0/publish/{name}/start`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartRequest {
    /// Title shown to viewers.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Codec description (default `mpegts`).
    pub codec: String,
    /// The price of watching; absent for a free stream.
    pub offer: Option<OfferInfo>,
}

/// Answer to a start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartResponse {
    /// Stream id.
    pub stream: String,
    /// Playlist path on this node.
    pub playlist: String,
    /// The sequence number the next segment gets (a restarted stream
    /// continues where it stopped).
    pub next_seq: u64,
}

/// Query of `POST /api/v0/publish/{name}/segment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentQuery {
    /// Media duration in microseconds.
    pub duration_us: u32,
    /// Timestamps restart at this segment.
    #[serde(default)]
    pub discontinuity: bool,
}

/// Query of `POST /api/v0/publish/{name}/part`: one part (LL-HLS) of
/// the segment in progress. Parts of a segment come in order from 0; the
/// segment itself follows (`…/segment`) with exactly their bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartQuery {
    /// Its index in the segment (0 starts a new segment).
    pub index: u16,
    /// Media duration in microseconds.
    pub duration_us: u32,
    /// The part target (µs) the encoder bridge cuts to: what players are
    /// told every part fits (default: this part's duration).
    #[serde(default)]
    pub target_us: Option<u32>,
    /// Starts with a keyframe (part 0 always does).
    #[serde(default)]
    pub independent: bool,
    /// Timestamps restart at this segment (on part 0).
    #[serde(default)]
    pub discontinuity: bool,
}

/// Result of publishing one part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartResponse {
    /// Sequence number of its segment.
    pub seq: u64,
    /// Its index.
    pub index: u16,
    /// CID of the payload.
    pub cid: String,
}

/// Result of publishing one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentResponse {
    /// Sequence number assigned.
    pub seq: u64,
    /// CID of the payload.
    pub cid: String,
    /// Payload size.
    pub size: usize,
}

/// A VOD held by a node (`GET /api/v0/vods`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VodInfo {
    /// Root CID: the UnixFS directory `ipfs add -r --cid-version=1` would
    /// make of the same files.
    pub root: String,
    /// The stream it was recorded from.
    pub stream: String,
    /// Title.
    pub title: String,
    /// Duration in ms.
    pub duration_ms: u64,
    /// Segments.
    pub segments: u64,
    /// Bytes of all its blocks.
    pub bytes: u64,
    /// When it was built (unix ms).
    pub created_ms: u64,
    /// Signed by the creator (built on the creator's node).
    pub signed: bool,
    /// The IPFS daemon it is pinned on (`--ipfs-api`), once it is.
    pub ipfs_pinned: Option<String>,
    /// Playlist path on this node: `/vods/{root}/index.m3u8`.
    pub playlist: String,
    /// For the VOD of a paid stream, planck per second watched (decimal;
    /// watched with `POST /api/v0/vods/{root}/watch` and a budget).
    #[serde(default)]
    pub price_per_sec: Option<String>,
}

/// One chunk in `GET /streams/{id}/chunks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkInfo {
    /// Sequence number.
    pub seq: u64,
    /// Payload CID.
    pub cid: String,
    /// Payload size.
    pub size: u32,
    /// Media duration (µs).
    pub duration_us: u32,
    /// Creator's publication time (unix ms).
    pub published_at_ms: u64,
    /// When it became playable on this node (unix ms).
    pub ready_at_ms: u64,
}

/// `GET /api/v0/stats`: what the node holds now. Every figure has a cap
/// in the configuration; flood tests and operators read them here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Streams in the catalog (announced or local).
    pub known_streams: usize,
    /// Streams followed (any reason).
    pub joined_streams: usize,
    /// Of those, followed only to relay.
    pub relayed_streams: usize,
    /// Chunks held in memory.
    pub chunks_held: usize,
    /// Chunk payload bytes held in memory.
    pub chunk_bytes_held: usize,
    /// Chunks being fetched.
    pub pending_fetches: usize,
    /// Streams the announcement policy tracks.
    pub tracked_announcements: usize,
    /// Peers with an announcement rate bucket.
    pub announce_sources: usize,
    /// Remote (peer, topic) subscriptions recorded.
    pub remote_subscriptions: usize,
    /// Peers with an application score.
    pub app_scores: usize,
    /// Connected peers.
    pub peers: usize,
    /// Streams in the store (published or watched).
    pub stored_streams: usize,
    /// Bytes the database takes on disk.
    pub store_bytes: u64,
    /// HTTP requests being served (this one included).
    pub http_in_flight: usize,
}

/// One chat message as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessageInfo {
    /// The stream whose chat it is in.
    pub stream: String,
    /// The sender's key (hex).
    pub sender: String,
    /// The sender's counter (with `sender`, names the message).
    pub seq: u64,
    /// When it was sent (unix ms, by the sender's clock).
    pub sent_ms: u64,
    /// The text.
    pub text: String,
    /// Received in a peer's history answer (sent before this node joined).
    pub from_history: bool,
}

/// One moderation action as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatActionInfo {
    /// The stream whose chat it applies to.
    pub stream: String,
    /// Who issued it (hex): the creator or a moderator.
    pub issuer: String,
    /// When (unix ms).
    pub issued_ms: u64,
    /// What it does, as requested ([`ChatModerate`]).
    #[serde(flatten)]
    pub action: ChatModerate,
}

/// `GET /api/v0/streams/{stream}/chat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatView {
    /// Recent messages (up to 200), oldest first.
    pub messages: Vec<ChatMessageInfo>,
    /// The moderators the creator named (hex keys).
    pub moderators: Vec<String>,
    /// Actions in force.
    pub actions: Vec<ChatActionInfo>,
}

/// `POST /api/v0/streams/{stream}/chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSend {
    /// At most 500 characters, no control characters.
    pub text: String,
}

/// `POST /api/v0/streams/{stream}/chat/moderate`: what to do. Signed with
/// this node's creator key, which must be the stream's creator or one of
/// its moderators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ChatModerate {
    /// The key (hex) may not chat until unbanned.
    Ban {
        /// Creator key (hex) of the sender.
        target: String,
    },
    /// Lifts a ban or timeout.
    Unban {
        /// Key (hex).
        target: String,
    },
    /// The key may not chat for `secs` (1 s to two weeks).
    Timeout {
        /// Key (hex).
        target: String,
        /// Seconds.
        secs: u32,
    },
    /// Removes one message (sender and counter) everywhere.
    Delete {
        /// Sender key (hex).
        sender: String,
        /// Its counter.
        seq: u64,
    },
    /// One message per `secs` per viewer (0 turns it off; at most 120).
    SlowMode {
        /// Seconds.
        secs: u32,
    },
    /// Followers-only: viewers chat only with a follow of the creator at
    /// least `min_follow_secs` old (`null` turns it off; at most 90 days).
    FollowersOnly {
        /// Follow age asked for, seconds.
        min_follow_secs: Option<u32>,
    },
    /// Paid-viewers-only: viewers chat only while they pay for the stream
    /// (their messages carry the pass the creator's key server signs with
    /// each epoch key).
    PaidOnly {
        /// On or off.
        on: bool,
    },
    /// Names a moderator (the creator only).
    AddModerator {
        /// Key (hex).
        key: String,
    },
    /// Removes a moderator (the creator only).
    RemoveModerator {
        /// Key (hex).
        key: String,
    },
}

/// A server-sent event of `GET /api/v0/streams/{stream}/chat/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// A message to show.
    Message(ChatMessageInfo),
    /// A moderation action took effect (remove what it removes).
    Moderation(ChatActionInfo),
}

/// A creator's profile (`GET /api/v0/profile`, `GET
/// /api/v0/profiles/{key}`), as its creator signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// The creator key (hex).
    pub creator: String,
    /// Display name.
    pub name: String,
    /// Bio.
    pub bio: String,
    /// The avatar's CID (`GET /api/v0/avatars/{cid}`).
    pub avatar: Option<String>,
    /// Version (unix ms of the edit).
    pub version: u64,
    /// Expiry (unix ms); the creator's node signs it again before.
    pub expires_ms: u64,
}

/// `PUT /api/v0/profile`: this node's user's profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSet {
    /// Display name (1 to 50 characters).
    pub name: String,
    /// Bio (at most 300 characters).
    #[serde(default)]
    pub bio: String,
    /// The avatar's CID, from `POST /api/v0/avatar`.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// `POST /api/v0/avatar`: the CID of the image just stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarInfo {
    /// CIDv1 of the image (a UnixFS file).
    pub cid: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its type (`image/png`, `image/jpeg`, `image/gif`, `image/webp`).
    pub content_type: String,
}

/// One follow or unfollow, as its follower signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowInfo {
    /// The follower (hex key).
    pub follower: String,
    /// The creator (hex key).
    pub creator: String,
    /// Follow (`true`) or unfollow.
    pub follow: bool,
    /// When (unix ms).
    pub at_ms: u64,
}

/// `GET /api/v0/follows` and `GET /api/v0/users/{key}/follows`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowsView {
    /// The user (hex key).
    pub user: String,
    /// The creators followed (hex keys), with when.
    pub following: Vec<FollowInfo>,
    /// Operations known in all (follows and unfollows).
    pub operations: usize,
}

/// `GET /api/v0/users/{key}/followers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowersView {
    /// The creator (hex key).
    pub creator: String,
    /// Followers counted from signed operations this node checked (a lower
    /// bound: an index record keeps at most 400).
    pub count: usize,
    /// The followers (hex keys), newest first.
    pub followers: Vec<String>,
}

/// A followed creator's stream in the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem {
    /// Stream id.
    pub stream: String,
    /// Creator (hex key).
    pub creator: String,
    /// The creator's display name, when its profile is known here.
    pub name: Option<String>,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Live now.
    pub live: bool,
    /// The announcement's time (unix ms).
    pub at_ms: u64,
}

/// A server-sent event of `GET /api/v0/feed/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    /// A followed creator went live (or started again).
    Live(FeedItem),
    /// A followed creator's stream ended.
    Ended(FeedItem),
}

/// `GET /api/v0/feed`: followed creators' streams.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedView {
    /// Live streams of followed creators, newest first.
    pub live: Vec<FeedItem>,
    /// The latest notifications (at most 100), newest first.
    pub recent: Vec<FeedEvent>,
}

/// One search hit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHitInfo {
    /// `stream` or `vod`.
    pub kind: String,
    /// Stream id or VOD root CID.
    pub id: String,
    /// Creator (hex key).
    pub creator: String,
    /// The creator's display name, when its profile is known here.
    pub name: Option<String>,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// A stream live now.
    pub live: bool,
    /// By a creator this node's user follows.
    pub followed: bool,
    /// Relevance (BM25).
    pub score: f32,
}

/// `GET /api/v0/search?q=TEXT&tag=TAG&limit=N`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Live first, then followed creators, then by relevance.
    pub hits: Vec<SearchHitInfo>,
    /// Documents indexed here.
    pub indexed: usize,
    /// Time the node took (µs).
    pub took_us: u64,
    /// The creator's profile, when the text was a creator key (resolved
    /// on the DHT).
    pub creator: Option<ProfileInfo>,
}
