//! The relay protocol core: an IO-less state machine.
//!
//! Chunk *headers* (≈200 bytes, creator-signed) travel on gossipsub; chunk
//! *payloads* are pulled by CID over request-response ("announce, then
//! pull"). A node that hears a header checks it (signature, size limit,
//! topic, sequence window), pulls the payload from the peer that sent the
//! header (falling back to other peers on the stream's topic), checks the
//! payload against the CID, and only then tells gossipsub to forward the
//! header. So every node receives each payload about once (download
//! amplification ≈ 1), and a header is only ever forwarded by nodes that
//! can serve its payload.
//!
//! [`RelayCore`] takes inputs with the current time and returns [`Output`]s
//! for the event loop to carry out; it owns no sockets or timers, which
//! makes it testable and simulable without a network.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;

use tracing::warn;

use crate::wire::{ChunkCid, ChunkRequest, ChunkResponse, SignedHeader, StreamId, WireError};

/// Tunables of the relay core.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Chunks kept in memory per stream for serving peers. Default 30.
    pub window: usize,
    /// A header this far behind the newest known chunk is stale (ignored).
    /// Default 30.
    pub max_behind: u64,
    /// A header this far ahead of the newest known chunk is ignored. Default 120.
    pub max_ahead: u64,
    /// How long one payload request may take. Default 5 s.
    pub fetch_timeout: Duration,
    /// Give up on a chunk this long after first hearing of it. Default 12 s.
    pub give_up_after: Duration,
    /// Pause before asking the same peers again. Default 300 ms.
    pub retry_backoff: Duration,
    /// How many missing earlier chunks to fetch when a gap appears. Default 8.
    pub max_gap_fill: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            window: 30,
            max_behind: 30,
            max_ahead: 120,
            fetch_timeout: Duration::from_secs(5),
            give_up_after: Duration::from_secs(12),
            retry_backoff: Duration::from_millis(300),
            max_gap_fill: 8,
        }
    }
}

impl RelayConfig {
    /// Sets [`RelayConfig::window`].
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
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

/// Why a gossip message was not forwarded.
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
}

/// Why a message was dropped without penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// It served a payload that does not match the CID it was asked for.
    BadPayload(String),
    /// It served a chunk whose header fails verification.
    BadHeader(String),
}

/// Identifies a payload fetch so its result can be matched.
pub type FetchKey = (StreamId, u64);

/// Instructions for the event loop.
#[derive(Clone, Debug)]
pub enum Output {
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
        /// Which chunk it is for (`seq == u64::MAX` for a `Latest` request).
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
    /// A chunk could not be obtained and will be skipped.
    Missing {
        /// Stream.
        stream: StreamId,
        /// Sequence number given up on.
        seq: u64,
    },
}

/// Sequence number used in the [`FetchKey`] of a `Latest` request.
pub const LATEST: u64 = u64::MAX;

struct Pending {
    header: Option<SignedHeader>,
    msgs: Vec<(MessageId, PeerId)>,
    /// Peers to try, in order; the gossip source first.
    candidates: Vec<PeerId>,
    tried: HashSet<PeerId>,
    in_flight: Option<(PeerId, Instant)>,
    retry_at: Option<Instant>,
    first_seen: Instant,
}

impl Pending {
    /// The gossipsub verdict for every message that announced this chunk.
    fn verdicts(self, verdict: Verdict) -> impl Iterator<Item = Output> {
        self.msgs
            .into_iter()
            .map(move |(msg_id, source)| Output::Validation {
                msg_id,
                source,
                verdict: verdict.clone(),
            })
    }

    fn new(header: Option<SignedHeader>, candidates: Vec<PeerId>, now: Instant) -> Self {
        Pending {
            header,
            msgs: vec![],
            candidates,
            tried: HashSet::new(),
            in_flight: None,
            retry_at: None,
            first_seen: now,
        }
    }
}

#[derive(Default)]
struct StreamState {
    chunks: BTreeMap<u64, Arc<Chunk>>,
    pending: BTreeMap<u64, Pending>,
    peers: BTreeSet<PeerId>,
    bad_peers: HashSet<PeerId>,
    /// First sequence this node follows (join point); earlier ones are not wanted.
    start: Option<u64>,
    highest: Option<u64>,
    given_up: BTreeSet<u64>,
    latest_in_flight: Option<(PeerId, Instant)>,
    latest_asked: HashSet<PeerId>,
}

/// The relay state machine for all streams this node follows.
pub struct RelayCore {
    config: RelayConfig,
    streams: HashMap<StreamId, StreamState>,
    by_cid: HashMap<ChunkCid, (StreamId, u64)>,
}

impl RelayCore {
    /// A core with no streams.
    pub fn new(config: RelayConfig) -> Self {
        RelayCore {
            config,
            streams: HashMap::new(),
            by_cid: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Starts following `stream`; asks known topic peers for the latest chunk.
    pub fn join(&mut self, now: Instant, stream: StreamId) -> Vec<Output> {
        self.join_from(now, stream, None)
    }

    /// Starts following `stream` from sequence `start` (a stream announced
    /// before its first chunk is followed from 0, so a subscription that
    /// races the first chunk cannot skip it); `None` starts at the latest
    /// chunk peers hold.
    pub fn join_from(&mut self, now: Instant, stream: StreamId, start: Option<u64>) -> Vec<Output> {
        let st = self.streams.entry(stream.clone()).or_default();
        if st.start.is_none() && st.chunks.is_empty() {
            st.start = start;
        }
        self.request_latest(now, &stream)
    }

    /// Stops following `stream` and drops its chunks.
    pub fn leave(&mut self, stream: &StreamId) {
        if let Some(st) = self.streams.remove(stream) {
            for c in st.chunks.values() {
                self.by_cid.remove(&c.header.header.cid);
            }
        }
    }

    /// Whether this node follows `stream`.
    pub fn is_joined(&self, stream: &StreamId) -> bool {
        self.streams.contains_key(stream)
    }

    /// Streams this node follows.
    pub fn joined(&self) -> impl Iterator<Item = &StreamId> {
        self.streams.keys()
    }

    /// A peer subscribed to the stream's topic.
    pub fn peer_joined(&mut self, now: Instant, stream: &StreamId, peer: PeerId) -> Vec<Output> {
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        st.peers.insert(peer);
        self.request_latest(now, stream)
    }

    /// A peer disconnected: it leaves every stream.
    pub fn peer_left(&mut self, now: Instant, peer: &PeerId) -> Vec<Output> {
        let keys: Vec<StreamId> = self.streams.keys().cloned().collect();
        let mut out = vec![];
        for stream in keys {
            out.extend(self.peer_left_stream(now, &stream, peer));
        }
        out
    }

    /// A peer left one stream's topic.
    pub fn peer_left_stream(
        &mut self,
        now: Instant,
        stream: &StreamId,
        peer: &PeerId,
    ) -> Vec<Output> {
        let mut out = vec![];
        {
            let stream = stream.clone();
            let Some(st) = self.streams.get_mut(&stream) else {
                return out;
            };
            st.peers.remove(peer);
            let mut failed = vec![];
            for (seq, p) in st.pending.iter() {
                if p.in_flight.map(|(q, _)| q) == Some(*peer) {
                    failed.push(*seq);
                }
            }
            if st.latest_in_flight.map(|(q, _)| q) == Some(*peer) {
                failed.push(LATEST);
            }
            for seq in failed {
                out.extend(self.fetch_failed(now, (stream.clone(), seq), *peer));
            }
        }
        out
    }

    /// A chunk header arrived by gossip on the topic of `topic_stream`.
    pub fn on_gossip_header(
        &mut self,
        now: Instant,
        msg_id: MessageId,
        source: PeerId,
        topic_stream: &StreamId,
        signed: SignedHeader,
    ) -> Vec<Output> {
        let verdict = |v| {
            vec![Output::Validation {
                msg_id: msg_id.clone(),
                source,
                verdict: v,
            }]
        };
        if let Err(e) = signed.verify() {
            return verdict(Verdict::Reject(Rejection::Invalid(e)));
        }
        let h = &signed.header;
        if &h.stream != topic_stream {
            return verdict(Verdict::Reject(Rejection::WrongTopic {
                header: h.stream.to_string(),
                topic: topic_stream.to_string(),
            }));
        }
        let cfg = self.config.clone();
        let Some(st) = self.streams.get_mut(&h.stream) else {
            return verdict(Verdict::Ignore(IgnoreReason::NotJoined));
        };
        if let Some(known) = st.chunks.get(&h.seq) {
            return if known.header.header.cid == h.cid {
                verdict(Verdict::Accept)
            } else {
                warn!(stream = %h.stream, seq = h.seq, "creator equivocated: keeping the first chunk");
                verdict(Verdict::Ignore(IgnoreReason::Equivocation))
            };
        }
        let mut out = vec![];
        if let Some(hi) = st.highest {
            if h.seq.saturating_add(cfg.max_behind) < hi || st.start.is_some_and(|s| h.seq < s) {
                return verdict(Verdict::Ignore(IgnoreReason::Stale));
            }
            if h.seq > hi.saturating_add(cfg.max_ahead) {
                // The creator signed it, so the stream really is there: this
                // node fell behind (partition, sleep) or was anchored on an
                // old chunk. Re-anchor at the live edge instead of ignoring
                // the stream forever.
                warn!(stream = %h.stream, seq = h.seq, behind = hi, "re-anchoring at the live edge");
                for (_, p) in std::mem::take(&mut st.pending) {
                    out.extend(p.verdicts(Verdict::Ignore(IgnoreReason::Stale)));
                }
                st.given_up.clear();
                st.start = Some(h.seq);
                st.highest = Some(h.seq);
            }
        }
        if st.given_up.contains(&h.seq) {
            return verdict(Verdict::Ignore(IgnoreReason::PayloadUnavailable));
        }
        let seq = h.seq;
        let candidates = st.peers.iter().copied().filter(|p| *p != source).collect();
        let pending = st
            .pending
            .entry(seq)
            .or_insert_with(|| Pending::new(None, candidates, now));
        if let Some(known) = &pending.header {
            if known.header.cid != signed.header.cid {
                out.extend(verdict(Verdict::Ignore(IgnoreReason::Equivocation)));
                return out;
            }
        }
        pending.header = Some(signed);
        pending.msgs.push((msg_id, source));
        // The sender of the header is the peer most likely to hold the payload.
        pending.candidates.retain(|p| *p != source);
        pending.candidates.insert(0, source);
        if st.highest.is_none_or(|hi| seq > hi) {
            st.highest = Some(seq);
        }
        if st.start.is_none() {
            st.start = Some(seq);
        }
        out.extend(self.drive(now, &topic_stream.clone(), seq));
        out
    }

    /// A local chunk (this node is the creator). Returns `Ready`.
    pub fn publish_local(&mut self, now: Instant, chunk: Chunk) -> Vec<Output> {
        let stream = chunk.stream().clone();
        self.streams.entry(stream).or_default();
        self.insert(now, Arc::new(chunk))
    }

    /// The result of an [`Output::Fetch`].
    pub fn on_fetch_result(
        &mut self,
        now: Instant,
        key: FetchKey,
        peer: PeerId,
        result: Result<ChunkResponse, String>,
    ) -> Vec<Output> {
        let (header, payload) = match result {
            Ok(ChunkResponse::Found { header, payload }) => (header, payload),
            Ok(ChunkResponse::NotFound) | Err(_) => return self.fetch_failed(now, key, peer),
        };
        let (stream, seq) = &key;
        let mut out = vec![];
        // The header must verify, be for what we asked, and match the payload.
        let check = header
            .verify()
            .map_err(|e| Misbehaviour::BadHeader(e.to_string()))
            .and_then(|()| {
                let h = &header.header;
                let expected = match self.streams.get(stream).and_then(|s| s.pending.get(seq)) {
                    Some(Pending {
                        header: Some(exp), ..
                    }) => Some(exp.header.cid),
                    _ => None,
                };
                if &h.stream != stream || (*seq != LATEST && h.seq != *seq) {
                    Err(Misbehaviour::BadHeader(format!(
                        "asked for {stream} #{seq}, got {} #{}",
                        h.stream, h.seq
                    )))
                } else if expected.is_some_and(|c| c != h.cid) {
                    Err(Misbehaviour::BadPayload(format!(
                        "served CID {} for #{seq}, announced {}",
                        h.cid,
                        expected.map(|c| c.to_string()).unwrap_or_default()
                    )))
                } else {
                    header
                        .check_payload(&payload)
                        .map_err(|e| Misbehaviour::BadPayload(e.to_string()))
                }
            });
        if let Err(reason) = check {
            if let Some(st) = self.streams.get_mut(stream) {
                st.bad_peers.insert(peer);
            }
            out.push(Output::Penalize { peer, reason });
            out.extend(self.fetch_failed(now, key, peer));
            return out;
        }
        let Some(st) = self.streams.get_mut(stream) else {
            return out;
        };
        let got_seq = header.header.seq;
        if *seq == LATEST {
            st.latest_in_flight = None;
            if st.start.is_none() {
                st.start = Some(got_seq);
            }
            if st.highest.is_none_or(|hi| got_seq > hi) {
                st.highest = Some(got_seq);
            }
        }
        if st.chunks.contains_key(&got_seq) || st.start.is_some_and(|s| got_seq < s) {
            return out;
        }
        out.extend(self.insert(now, Arc::new(Chunk { header, payload })));
        out
    }

    /// Answers a peer's request from the in-memory window.
    pub fn serve(&self, request: &ChunkRequest) -> ChunkResponse {
        let found = match request {
            ChunkRequest::ByCid(cid) => self
                .by_cid
                .get(cid)
                .and_then(|(s, seq)| self.streams.get(s)?.chunks.get(seq)),
            ChunkRequest::BySeq { stream, seq } => {
                self.streams.get(stream).and_then(|s| s.chunks.get(seq))
            }
            ChunkRequest::Latest(stream) => self
                .streams
                .get(stream)
                .and_then(|s| s.chunks.last_key_value().map(|(_, c)| c)),
        };
        match found {
            Some(c) => ChunkResponse::Found {
                header: c.header.clone(),
                payload: c.payload.clone(),
            },
            None => ChunkResponse::NotFound,
        }
    }

    /// A chunk from the window, if held.
    pub fn get(&self, stream: &StreamId, seq: u64) -> Option<Arc<Chunk>> {
        self.streams.get(stream)?.chunks.get(&seq).cloned()
    }

    /// Advances timers: request timeouts, retries and giving up.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = vec![];
        let cfg = self.config.clone();
        let mut timed_out = vec![];
        let mut due = vec![];
        for (stream, st) in &self.streams {
            for (seq, p) in &st.pending {
                if let Some((peer, at)) = p.in_flight {
                    if now.duration_since(at) >= cfg.fetch_timeout {
                        timed_out.push(((stream.clone(), *seq), peer));
                    }
                } else if p.retry_at.is_none_or(|t| now >= t)
                    || now.duration_since(p.first_seen) >= cfg.give_up_after
                {
                    due.push((stream.clone(), *seq));
                }
            }
            if let Some((peer, at)) = st.latest_in_flight {
                if now.duration_since(at) >= cfg.fetch_timeout {
                    timed_out.push(((stream.clone(), LATEST), peer));
                }
            }
        }
        for (key, peer) in timed_out {
            out.extend(self.fetch_failed(now, key, peer));
        }
        for (stream, seq) in due {
            out.extend(self.drive(now, &stream, seq));
        }
        out
    }

    fn request_latest(&mut self, now: Instant, stream: &StreamId) -> Vec<Output> {
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        if !st.chunks.is_empty() || st.start.is_some() || st.latest_in_flight.is_some() {
            return vec![];
        }
        let Some(peer) = st
            .peers
            .iter()
            .find(|p| !st.latest_asked.contains(p) && !st.bad_peers.contains(p))
            .copied()
        else {
            return vec![];
        };
        st.latest_asked.insert(peer);
        st.latest_in_flight = Some((peer, now));
        vec![Output::Fetch {
            peer,
            request: ChunkRequest::Latest(stream.clone()),
            key: (stream.clone(), LATEST),
        }]
    }

    fn fetch_failed(&mut self, now: Instant, key: FetchKey, peer: PeerId) -> Vec<Output> {
        let (stream, seq) = key;
        let Some(st) = self.streams.get_mut(&stream) else {
            return vec![];
        };
        if seq == LATEST {
            if st.latest_in_flight.map(|(p, _)| p) == Some(peer) {
                st.latest_in_flight = None;
            }
            return self.request_latest(now, &stream);
        }
        match st.pending.get_mut(&seq) {
            Some(p) if p.in_flight.map(|(q, _)| q) == Some(peer) => {
                p.in_flight = None;
                self.drive(now, &stream, seq)
            }
            _ => vec![],
        }
    }

    /// Starts the next payload request for a pending chunk, schedules a
    /// retry, or gives up.
    fn drive(&mut self, now: Instant, stream: &StreamId, seq: u64) -> Vec<Output> {
        let cfg = self.config.clone();
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        let Some(p) = st.pending.get_mut(&seq) else {
            return vec![];
        };
        if p.in_flight.is_some() {
            return vec![];
        }
        if now.duration_since(p.first_seen) >= cfg.give_up_after {
            let p = st.pending.remove(&seq);
            st.given_up.insert(seq);
            let mut out: Vec<Output> = p
                .into_iter()
                .flat_map(|p| p.verdicts(Verdict::Ignore(IgnoreReason::PayloadUnavailable)))
                .collect();
            out.push(Output::Missing {
                stream: stream.clone(),
                seq,
            });
            return out;
        }
        // Refresh candidates with topic peers that joined since.
        for peer in &st.peers {
            if !p.candidates.contains(peer) {
                p.candidates.push(*peer);
            }
        }
        let next = p
            .candidates
            .iter()
            .find(|c| !p.tried.contains(c) && !st.bad_peers.contains(c))
            .copied();
        match next {
            Some(peer) => {
                p.tried.insert(peer);
                p.in_flight = Some((peer, now));
                p.retry_at = None;
                let request = match &p.header {
                    Some(h) => ChunkRequest::ByCid(h.header.cid),
                    None => ChunkRequest::BySeq {
                        stream: stream.clone(),
                        seq,
                    },
                };
                vec![Output::Fetch {
                    peer,
                    request,
                    key: (stream.clone(), seq),
                }]
            }
            None => {
                // Everyone was asked: start a new round after a pause.
                if p.retry_at.is_some_and(|t| now >= t) {
                    p.tried.clear();
                    p.retry_at = None;
                    return self.drive(now, stream, seq);
                }
                if p.retry_at.is_none() {
                    p.retry_at = Some(now + cfg.retry_backoff);
                }
                vec![]
            }
        }
    }

    fn insert(&mut self, now: Instant, chunk: Arc<Chunk>) -> Vec<Output> {
        let stream = chunk.stream().clone();
        let seq = chunk.seq();
        let cfg = self.config.clone();
        let mut out = vec![];
        let Some(st) = self.streams.get_mut(&stream) else {
            return out;
        };
        if let Some(p) = st.pending.remove(&seq) {
            out.extend(p.verdicts(Verdict::Accept));
        }
        self.by_cid
            .insert(chunk.header.header.cid, (stream.clone(), seq));
        st.chunks.insert(seq, chunk.clone());
        if st.start.is_none() {
            st.start = Some(seq);
        }
        if st.highest.is_none_or(|hi| seq > hi) {
            st.highest = Some(seq);
        }
        while st.chunks.len() > cfg.window {
            if let Some((_, old)) = st.chunks.pop_first() {
                self.by_cid.remove(&old.header.header.cid);
            }
        }
        if let Some((&first, _)) = st.chunks.first_key_value() {
            st.given_up = st.given_up.split_off(&first);
        }
        out.push(Output::Ready(chunk));
        // Fill gaps behind this chunk (missed gossip) from topic peers.
        let start = st.start.unwrap_or(seq);
        let lowest = seq.saturating_sub(cfg.max_gap_fill).max(start);
        let missing: Vec<u64> = (lowest..seq)
            .filter(|s| {
                !st.chunks.contains_key(s)
                    && !st.pending.contains_key(s)
                    && !st.given_up.contains(s)
            })
            .collect();
        for &s in &missing {
            let candidates = st.peers.iter().copied().collect();
            st.pending.insert(s, Pending::new(None, candidates, now));
        }
        for s in missing {
            out.extend(self.drive(now, &stream, s));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ChunkHeader, Sig};
    use ed25519_dalek::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    fn stream() -> StreamId {
        StreamId::new(key().verifying_key().to_bytes(), "s").unwrap()
    }

    fn chunk(seq: u64) -> Chunk {
        let payload = Bytes::from(format!("payload {seq}"));
        let header = ChunkHeader {
            stream: stream(),
            seq,
            duration_us: 1_000_000,
            cid: ChunkCid::of(&payload),
            size: payload.len() as u32,
            published_at_ms: 0,
            discontinuity: false,
        }
        .sign(&key())
        .unwrap();
        Chunk { header, payload }
    }

    fn msg(n: u8) -> MessageId {
        MessageId::new(&[n])
    }

    fn found(c: &Chunk) -> Result<ChunkResponse, String> {
        Ok(ChunkResponse::Found {
            header: c.header.clone(),
            payload: c.payload.clone(),
        })
    }

    fn joined(now: Instant, peers: &[PeerId]) -> RelayCore {
        let mut core = RelayCore::new(RelayConfig::default());
        core.join(now, stream());
        // Mark a start so that no Latest request is made in these tests.
        core.streams.get_mut(&stream()).unwrap().start = Some(0);
        for p in peers {
            core.peer_joined(now, &stream(), *p);
        }
        core
    }

    fn fetches(out: &[Output]) -> Vec<(PeerId, ChunkRequest)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Fetch { peer, request, .. } => Some((*peer, request.clone())),
                _ => None,
            })
            .collect()
    }

    fn verdicts(out: &[Output]) -> Vec<Verdict> {
        out.iter()
            .filter_map(|o| match o {
                Output::Validation { verdict, .. } => Some(verdict.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn header_is_accepted_only_after_payload_matches() {
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut core = joined(now, &[b]);
        let c = chunk(0);
        let out = core.on_gossip_header(now, msg(1), a, &stream(), c.header.clone());
        assert!(verdicts(&out).is_empty(), "no verdict before the payload");
        assert_eq!(
            fetches(&out),
            vec![(a, ChunkRequest::ByCid(c.header.header.cid))],
            "ask the sender first"
        );
        let out = core.on_fetch_result(now, (stream(), 0), a, found(&c));
        assert_eq!(verdicts(&out), vec![Verdict::Accept]);
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Ready(r) if r.seq() == 0)));
        assert!(matches!(
            core.serve(&ChunkRequest::ByCid(c.header.header.cid)),
            ChunkResponse::Found { .. }
        ));
    }

    #[test]
    fn forged_header_is_rejected_without_fetching() {
        let now = Instant::now();
        let mut core = joined(now, &[]);
        let mut h = chunk(0).header;
        h.signature = Sig([1; 64]);
        let out = core.on_gossip_header(now, msg(1), PeerId::random(), &stream(), h);
        assert!(fetches(&out).is_empty());
        assert!(matches!(
            verdicts(&out)[..],
            [Verdict::Reject(Rejection::Invalid(WireError::BadSignature))]
        ));
    }

    #[test]
    fn header_on_wrong_topic_is_rejected() {
        let now = Instant::now();
        let mut core = joined(now, &[]);
        let other = StreamId::new([1; 32], "other").unwrap();
        core.join(now, other.clone());
        let out = core.on_gossip_header(now, msg(1), PeerId::random(), &other, chunk(0).header);
        assert!(matches!(
            verdicts(&out)[..],
            [Verdict::Reject(Rejection::WrongTopic { .. })]
        ));
    }

    #[test]
    fn bad_payload_penalises_the_server_and_falls_back() {
        let now = Instant::now();
        let (rogue, honest) = (PeerId::random(), PeerId::random());
        let mut core = joined(now, &[honest]);
        let c = chunk(3);
        core.on_gossip_header(now, msg(1), rogue, &stream(), c.header.clone());
        let garbage = Ok(ChunkResponse::Found {
            header: c.header.clone(),
            payload: Bytes::from_static(b"garbage"),
        });
        let out = core.on_fetch_result(now, (stream(), 3), rogue, garbage);
        assert!(out.iter().any(|o| matches!(o, Output::Penalize { peer, reason: Misbehaviour::BadPayload(_) } if *peer == rogue)));
        assert!(
            verdicts(&out).is_empty(),
            "the header itself is genuine: no verdict yet"
        );
        assert_eq!(
            fetches(&out),
            vec![(honest, ChunkRequest::ByCid(c.header.header.cid))]
        );
        let out = core.on_fetch_result(now, (stream(), 3), honest, found(&c));
        assert_eq!(verdicts(&out), vec![Verdict::Accept]);
        assert_eq!(core.get(&stream(), 3).unwrap().payload, c.payload);
    }

    #[test]
    fn unavailable_payload_is_retried_then_given_up() {
        let t0 = Instant::now();
        let a = PeerId::random();
        let mut core = joined(t0, &[]);
        let c = chunk(1);
        core.on_gossip_header(t0, msg(1), a, &stream(), c.header.clone());
        let out = core.on_fetch_result(t0, (stream(), 1), a, Ok(ChunkResponse::NotFound));
        assert!(fetches(&out).is_empty(), "wait before asking again");
        let t1 = t0 + core.config().retry_backoff;
        assert_eq!(
            fetches(&core.tick(t1)).len(),
            1,
            "second round after the backoff"
        );
        core.on_fetch_result(t1, (stream(), 1), a, Err("timeout".into()));
        let late = t0 + core.config().give_up_after;
        let out = core.tick(late);
        assert_eq!(
            verdicts(&out),
            vec![Verdict::Ignore(IgnoreReason::PayloadUnavailable)]
        );
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Missing { seq: 1, .. })));
        let out = core.on_gossip_header(late, msg(2), a, &stream(), c.header);
        assert_eq!(
            verdicts(&out),
            vec![Verdict::Ignore(IgnoreReason::PayloadUnavailable)]
        );
    }

    #[test]
    fn request_timeout_moves_to_the_next_peer() {
        let t0 = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut core = joined(t0, &[b]);
        core.on_gossip_header(t0, msg(1), a, &stream(), chunk(0).header);
        let out = core.tick(t0 + core.config().fetch_timeout);
        assert_eq!(fetches(&out).first().map(|f| f.0), Some(b));
    }

    #[test]
    fn stale_and_far_ahead_headers_are_ignored() {
        let now = Instant::now();
        let a = PeerId::random();
        let mut core = joined(now, &[]);
        core.publish_local(now, chunk(100));
        let out = core.on_gossip_header(now, msg(1), a, &stream(), chunk(10).header);
        assert_eq!(verdicts(&out), vec![Verdict::Ignore(IgnoreReason::Stale)]);
        // Far ahead: the node fell behind; it re-anchors and fetches it.
        let out = core.on_gossip_header(now, msg(2), a, &stream(), chunk(1000).header);
        assert!(verdicts(&out).is_empty());
        assert_eq!(fetches(&out).len(), 1);
        let out = core.on_fetch_result(now, (stream(), 1000), a, found(&chunk(1000)));
        assert_eq!(verdicts(&out), vec![Verdict::Accept]);
        assert!(fetches(&out).is_empty(), "no gap fill below the new anchor");
        let out = core.on_gossip_header(now, msg(3), a, &stream(), chunk(99).header);
        assert_eq!(verdicts(&out), vec![Verdict::Ignore(IgnoreReason::Stale)]);
    }

    #[test]
    fn not_joined_stream_is_ignored() {
        let now = Instant::now();
        let mut core = RelayCore::new(RelayConfig::default());
        let out = core.on_gossip_header(now, msg(1), PeerId::random(), &stream(), chunk(0).header);
        assert_eq!(
            verdicts(&out),
            vec![Verdict::Ignore(IgnoreReason::NotJoined)]
        );
    }

    #[test]
    fn gap_behind_a_new_chunk_is_filled_by_sequence() {
        let now = Instant::now();
        let a = PeerId::random();
        let mut core = joined(now, &[a]);
        core.streams.get_mut(&stream()).unwrap().start = Some(3);
        core.on_gossip_header(now, msg(1), a, &stream(), chunk(5).header);
        let out = core.on_fetch_result(now, (stream(), 5), a, found(&chunk(5)));
        let asked: Vec<ChunkRequest> = fetches(&out).into_iter().map(|f| f.1).collect();
        assert!(asked.contains(&ChunkRequest::BySeq {
            stream: stream(),
            seq: 3
        }));
        assert!(asked.contains(&ChunkRequest::BySeq {
            stream: stream(),
            seq: 4
        }));
        let out = core.on_fetch_result(now, (stream(), 4), a, found(&chunk(4)));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Ready(r) if r.seq() == 4)));
    }

    #[test]
    fn joining_viewer_asks_for_the_latest_chunk() {
        let now = Instant::now();
        let a = PeerId::random();
        let mut core = RelayCore::new(RelayConfig::default());
        assert!(core.join(now, stream()).is_empty(), "no peers yet");
        let out = core.peer_joined(now, &stream(), a);
        assert_eq!(fetches(&out), vec![(a, ChunkRequest::Latest(stream()))]);
        let out = core.on_fetch_result(now, (stream(), LATEST), a, found(&chunk(42)));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Ready(r) if r.seq() == 42)));
        // It starts there: no gap fill for earlier chunks.
        assert!(fetches(&out).is_empty());
    }

    #[test]
    fn window_is_bounded_and_evicted_chunks_are_not_served() {
        let now = Instant::now();
        let mut core = RelayCore::new(RelayConfig::default().with_window(3));
        for s in 0..5 {
            core.publish_local(now, chunk(s));
        }
        assert!(matches!(
            core.serve(&ChunkRequest::BySeq {
                stream: stream(),
                seq: 1
            }),
            ChunkResponse::NotFound
        ));
        assert!(matches!(
            core.serve(&ChunkRequest::ByCid(chunk(0).header.header.cid)),
            ChunkResponse::NotFound
        ));
        match core.serve(&ChunkRequest::Latest(stream())) {
            ChunkResponse::Found { header, .. } => assert_eq!(header.header.seq, 4),
            ChunkResponse::NotFound => panic!("latest missing"),
        }
    }

    #[test]
    fn equivocating_creator_is_rejected() {
        let now = Instant::now();
        let mut core = joined(now, &[]);
        core.publish_local(now, chunk(0));
        let mut other = chunk(0);
        other.payload = Bytes::from_static(b"different");
        let h = ChunkHeader {
            cid: ChunkCid::of(&other.payload),
            size: other.payload.len() as u32,
            ..other.header.header.clone()
        }
        .sign(&key())
        .unwrap();
        let out = core.on_gossip_header(now, msg(9), PeerId::random(), &stream(), h);
        assert_eq!(
            verdicts(&out),
            vec![Verdict::Ignore(IgnoreReason::Equivocation)],
            "not the forwarding relay's fault"
        );
        assert_eq!(core.get(&stream(), 0).unwrap().payload, chunk(0).payload);
    }
}
