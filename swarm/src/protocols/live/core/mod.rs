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
//! [`RelayCore`] is the one place that knows which streams this node
//! follows, why ([`JoinReason`]), and which chunks it holds. It takes
//! inputs with the current time and returns [`Output`]s for the actor to
//! carry out (including gossipsub subscriptions); it owns no sockets or
//! timers, which makes it testable and simulable without a network.
//!
//! Everything it holds is bounded ([`RelayConfig`]): streams followed (and
//! of those, streams followed only to relay them), chunks per stream by
//! count and bytes, bytes over all streams, pending fetches (by the
//! sequence window), and the bookkeeping of each stream. A stream followed
//! only to relay it is left when it ends or goes silent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tracing::{debug, warn};

use super::wire::{ChunkCid, ChunkRequest, ChunkResponse, SignedHeader, StreamId};

mod parts;
mod state;
#[cfg(test)]
mod tests;
mod types;

use state::{PeerPolicy, Pending, StreamState, MAX_MSGS_PER_PENDING};

pub use types::*;

/// The gossipsub verdict for one message.
fn validation(msg_id: &MessageId, source: PeerId, verdict: Verdict) -> Vec<Output> {
    vec![Output::Validation {
        msg_id: msg_id.clone(),
        source,
        verdict,
    }]
}

/// A snapshot of what the core holds, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Streams followed.
    pub streams: usize,
    /// Of those, followed only to relay.
    pub relayed: usize,
    /// Chunks held.
    pub chunks: usize,
    /// Payload bytes held.
    pub bytes: usize,
    /// Chunks being fetched.
    pub pending: usize,
    /// Parts held.
    pub parts: usize,
    /// Parts being fetched.
    pub pending_parts: usize,
}

/// The relay state machine for all streams this node follows.
pub struct RelayCore {
    config: RelayConfig,
    streams: HashMap<StreamId, StreamState>,
    /// Which held chunks have a payload with this CID. Identical payloads
    /// are legitimate (a slate, a looped clip), in one stream or in
    /// several, so a CID maps to every chunk that carries it and evicting
    /// one chunk never hides another.
    by_cid: HashMap<ChunkCid, Vec<(StreamId, u64)>>,
    /// Which held parts have a payload with this CID (stream, segment,
    /// index).
    part_cids: HashMap<ChunkCid, Vec<(StreamId, u64, u16)>>,
    total_bytes: usize,
    /// Payload bytes of held parts over all streams.
    total_part_bytes: usize,
    /// Relayed streams left for silence, and when (bounded: at most
    /// `4 × max_relayed`, oldest first out).
    silenced: std::collections::VecDeque<(StreamId, Instant)>,
    /// Connected peers' prices as servers (from their bandwidth terms;
    /// absent: not known yet). Removed when the peer disconnects.
    prices: HashMap<PeerId, PeerPrice>,
    /// Peers that asked to be paid before serving more, and until when
    /// they are not asked again (unless paid first).
    refused_until: HashMap<PeerId, Instant>,
}

impl RelayCore {
    /// A core with no streams.
    pub fn new(config: RelayConfig) -> Self {
        RelayCore {
            config,
            streams: HashMap::new(),
            by_cid: HashMap::new(),
            part_cids: HashMap::new(),
            total_bytes: 0,
            total_part_bytes: 0,
            silenced: std::collections::VecDeque::new(),
            prices: HashMap::new(),
            refused_until: HashMap::new(),
        }
    }

    /// What `peer` charges for payloads, once its terms are known. The
    /// scheduler asks, among the peers that hold a chunk, the cheapest
    /// first, and never an unusable one.
    pub fn set_peer_price(&mut self, peer: PeerId, price: PeerPrice) {
        self.prices.insert(peer, price);
    }

    /// This node paid `peer`: it may be asked again at once.
    pub fn peer_paid(&mut self, peer: &PeerId) {
        self.refused_until.remove(peer);
    }

    /// The scheduler's view of `peer` as a server (for tests and the API).
    pub fn peer_price(&self, peer: &PeerId) -> Option<PeerPrice> {
        self.prices.get(peer).copied()
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// What the core holds now.
    pub fn stats(&self) -> CoreStats {
        CoreStats {
            streams: self.streams.len(),
            relayed: self.streams.values().filter(|s| s.relay_only()).count(),
            chunks: self.streams.values().map(|s| s.chunks.len()).sum(),
            bytes: self.total_bytes,
            pending: self.streams.values().map(|s| s.pending.len()).sum(),
            parts: self.streams.values().map(|s| s.parts.len()).sum(),
            pending_parts: self.streams.values().map(|s| s.pending_parts.len()).sum(),
        }
    }

    /// Whether this node follows `stream`.
    pub fn is_joined(&self, stream: &StreamId) -> bool {
        self.streams.contains_key(stream)
    }

    /// Why this node follows `stream` (empty if it does not).
    pub fn reasons(&self, stream: &StreamId) -> Vec<JoinReason> {
        self.streams
            .get(stream)
            .map(|s| s.reasons.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Streams followed, with their reasons.
    pub fn joined(&self) -> Vec<(StreamId, Vec<JoinReason>)> {
        self.streams
            .iter()
            .map(|(id, s)| (id.clone(), s.reasons.iter().copied().collect()))
            .collect()
    }

    /// Starts following `stream` for `reason`, from sequence `start` (a
    /// stream announced before its first chunk is followed from 0, so a
    /// subscription that races the first chunk cannot skip it); `None`
    /// starts at the latest chunk peers hold. Joining again for another
    /// reason only adds the reason. `topic_peers` are the peers already
    /// subscribed to the stream's topic.
    pub fn join(
        &mut self,
        now: Instant,
        stream: StreamId,
        reason: JoinReason,
        start: Option<u64>,
        topic_peers: impl IntoIterator<Item = PeerId>,
    ) -> Result<Vec<Output>, JoinError> {
        let mut out = vec![];
        match self.streams.get_mut(&stream) {
            Some(st) => {
                // Relaying a stream this node already follows costs nothing,
                // so only new streams count against the caps.
                st.reasons.insert(reason);
                if reason != JoinReason::Relay {
                    // A user interest revives a stream that was only relayed.
                    st.ended_at = None;
                }
            }
            None => {
                if self.streams.len() >= self.config.max_streams {
                    return Err(JoinError::TooManyStreams {
                        cap: self.config.max_streams,
                    });
                }
                if reason == JoinReason::Relay && self.recently_silent(now, &stream) {
                    return Err(JoinError::RecentlySilent);
                }
                if reason == JoinReason::Relay && self.stats().relayed >= self.config.max_relayed {
                    return Err(JoinError::RelayCapReached {
                        cap: self.config.max_relayed,
                    });
                }
                let mut st = StreamState::new(now);
                st.reasons.insert(reason);
                st.start = start;
                self.streams.insert(stream.clone(), st);
                out.push(Output::Subscribe(stream.clone()));
            }
        }
        if let Some(st) = self.streams.get_mut(&stream) {
            st.peers.extend(topic_peers);
        }
        out.extend(self.request_latest(now, &stream));
        Ok(out)
    }

    fn recently_silent(&mut self, now: Instant, stream: &StreamId) -> bool {
        let cooldown = self.config.silence_timeout;
        self.silenced
            .retain(|(_, at)| now.duration_since(*at) < cooldown);
        self.silenced.iter().any(|(s, _)| s == stream)
    }

    /// Stops following `stream` for `reason`; when no reason is left the
    /// stream's chunks are dropped and its topic unsubscribed.
    pub fn leave(&mut self, stream: &StreamId, reason: JoinReason) -> Vec<Output> {
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        st.reasons.remove(&reason);
        if st.reasons.is_empty() {
            self.drop_stream(stream)
        } else {
            vec![]
        }
    }

    /// Forgets `stream` whatever the reasons (its topic could not be
    /// subscribed to).
    pub fn remove(&mut self, stream: &StreamId) -> Vec<Output> {
        self.drop_stream(stream)
    }

    fn drop_stream(&mut self, stream: &StreamId) -> Vec<Output> {
        let Some(st) = self.streams.remove(stream) else {
            return vec![];
        };
        for (seq, held) in &st.chunks {
            self.unindex(held.chunk.header.header.cid, stream, *seq);
            self.total_bytes -= held.chunk.payload.len();
        }
        for ((seq, index), part) in &st.parts {
            self.unindex_part(part.header.header.cid, stream, *seq, *index);
        }
        self.total_part_bytes -= st.part_bytes;
        let mut out: Vec<Output> = st
            .pending
            .into_values()
            .flat_map(|p| p.verdicts(Verdict::Ignore(IgnoreReason::NotJoined)))
            .collect();
        out.extend(
            st.pending_parts
                .into_values()
                .flat_map(|p| p.verdicts(Verdict::Ignore(IgnoreReason::NotJoined))),
        );
        out.push(Output::Unsubscribe(stream.clone()));
        debug!(stream = %stream, "left stream");
        out
    }

    /// The creator announced the end of `stream`. A stream followed only
    /// to relay it is left after [`RelayConfig::ended_linger`].
    pub fn on_ended(&mut self, now: Instant, stream: &StreamId) {
        if let Some(st) = self.streams.get_mut(stream) {
            st.ended_at.get_or_insert(now);
        }
    }

    /// The creator announced `stream` live again (a restart after an end).
    pub fn on_live(&mut self, stream: &StreamId) {
        if let Some(st) = self.streams.get_mut(stream) {
            st.ended_at = None;
        }
    }

    /// A peer subscribed to the stream's topic.
    pub fn peer_joined(&mut self, now: Instant, stream: &StreamId, peer: PeerId) -> Vec<Output> {
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        st.peers.insert(peer);
        self.request_latest(now, stream)
    }

    /// A peer disconnected: it leaves every stream, and its marks go.
    pub fn peer_left(&mut self, now: Instant, peer: &PeerId) -> Vec<Output> {
        self.prices.remove(peer);
        self.refused_until.remove(peer);
        let keys: Vec<StreamId> = self.streams.keys().cloned().collect();
        let mut out = vec![];
        for stream in keys {
            out.extend(self.peer_left_stream(now, &stream, peer));
            if let Some(st) = self.streams.get_mut(&stream) {
                st.bad_peers.remove(peer);
                st.latest_asked.remove(peer);
            }
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
        let Some(st) = self.streams.get_mut(stream) else {
            return out;
        };
        st.peers.remove(peer);
        let mut failed: Vec<u64> = st
            .pending
            .iter()
            .filter(|(_, p)| p.in_flight.map(|(q, _)| q) == Some(*peer))
            .map(|(seq, _)| *seq)
            .collect();
        if st.latest_in_flight.map(|(q, _)| q) == Some(*peer) {
            failed.push(LATEST);
        }
        let parts_failed: Vec<(u64, u16)> = st
            .pending_parts
            .iter()
            .filter(|(_, p)| p.in_flight.map(|(q, _)| q) == Some(*peer))
            .map(|(k, _)| *k)
            .collect();
        for seq in failed {
            out.extend(self.fetch_failed(now, (stream.clone(), seq), *peer));
        }
        for (seq, index) in parts_failed {
            out.extend(self.part_failed(now, (stream.clone(), seq, index), *peer));
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
        let verdict = |v| validation(&msg_id, source, v);
        if let Some(v) = self.precheck(signed.verify(), &signed.header.stream, topic_stream) {
            return verdict(v);
        }
        let h = &signed.header;
        let cfg = self.config.clone();
        let Some(st) = self.streams.get_mut(&h.stream) else {
            return verdict(Verdict::Ignore(IgnoreReason::NotJoined));
        };
        if let Some(known) = st.chunks.get(&h.seq) {
            return if known.chunk.header.header.cid == h.cid {
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
        if pending.msgs.len() >= MAX_MSGS_PER_PENDING {
            out.extend(verdict(Verdict::Ignore(IgnoreReason::Duplicate)));
            return out;
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
        // A segment published as parts is assembled from them when they
        // are all here (or once they are), and pulled whole otherwise.
        out.extend(self.assemble_or_drive(now, &topic_stream.clone(), seq));
        out
    }

    /// What every creator-signed gossip header (chunk or part) must pass
    /// first: its signature and field ranges (`checked`), and the topic
    /// it came on. `Some` is the verdict when it fails.
    fn precheck(
        &self,
        checked: Result<(), super::wire::WireError>,
        stream: &StreamId,
        topic_stream: &StreamId,
    ) -> Option<Verdict> {
        if let Err(e) = checked {
            return Some(Verdict::Reject(Rejection::Invalid(e)));
        }
        (stream != topic_stream).then(|| {
            Verdict::Reject(Rejection::WrongTopic {
                header: stream.to_string(),
                topic: topic_stream.to_string(),
            })
        })
    }

    /// A local chunk (this node is the creator and follows the stream for
    /// [`JoinReason::Publish`]). Returns `Ready`.
    pub fn publish_local(&mut self, now: Instant, chunk: Chunk) -> Vec<Output> {
        if !self.streams.contains_key(chunk.stream()) {
            return vec![];
        }
        self.insert(now, Arc::new(chunk))
    }

    /// The result of an [`Output::Fetch`].
    pub fn on_fetch_result(
        &mut self,
        now: Instant,
        key: FetchKey,
        peer: PeerId,
        result: Result<ChunkResponse, FetchError>,
    ) -> Vec<Output> {
        let (served_header, payload) = match result {
            Ok(ChunkResponse::Found { header, payload }) => (Some(header), payload),
            // A peer that holds the payload as a part (a segment of one
            // part) answers with the part: usable when this node holds
            // the segment's signed header to check it against.
            Ok(ChunkResponse::Part { payload, .. }) => (None, payload),
            Ok(ChunkResponse::PaymentRequired { owed, paid, .. }) => {
                let until = now + self.config.retry_backoff;
                self.refused_until.insert(peer, until);
                let mut out = vec![Output::PaymentDemanded { peer, owed, paid }];
                out.extend(self.fetch_failed(now, key, peer));
                return out;
            }
            Ok(_) | Err(_) => return self.fetch_failed(now, key, peer),
        };
        let (stream, seq) = &key;
        let known = self
            .streams
            .get(stream)
            .and_then(|s| s.pending.get(seq))
            .and_then(|p| p.header.clone());
        let check = match known {
            // We already hold the creator-signed header from gossip: the
            // payload must match it, whatever header the server attached
            // (a server holding the same payload under another sequence or
            // stream is honest).
            Some(known) => known
                .check_payload(&payload)
                .map(|()| known)
                .map_err(Misbehaviour::BadPayload),
            None => match served_header {
                Some(served) => Self::check_served(stream, *seq, served, &payload),
                None => return self.fetch_failed(now, key, peer),
            },
        };
        let header = match check {
            Ok(h) => h,
            Err(reason) => {
                if let Some(st) = self.streams.get_mut(stream) {
                    st.bad_peers.insert(peer);
                }
                let mut out = vec![Output::Penalize { peer, reason }];
                out.extend(self.fetch_failed(now, key, peer));
                return out;
            }
        };
        let verified = Output::Verified {
            peer,
            stream: stream.clone(),
            bytes: payload.len() as u64,
        };
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![verified];
        };
        let got_seq = header.header.seq;
        if *seq == LATEST {
            st.latest_in_flight = None;
            st.latest_asked.clear();
            if st.start.is_none() {
                st.start = Some(got_seq);
            }
            if st.highest.is_none_or(|hi| got_seq > hi) {
                st.highest = Some(got_seq);
            }
        }
        if st.chunks.contains_key(&got_seq) || st.start.is_some_and(|s| got_seq < s) {
            return vec![verified];
        }
        let mut out = vec![verified];
        out.extend(self.insert(now, Arc::new(Chunk { header, payload })));
        out
    }

    /// Checks a chunk served for a request made without a known header
    /// (gap fill by sequence, or `Latest`).
    fn check_served(
        stream: &StreamId,
        seq: u64,
        header: SignedHeader,
        payload: &[u8],
    ) -> Result<SignedHeader, Misbehaviour> {
        header.verify().map_err(Misbehaviour::BadHeader)?;
        let h = &header.header;
        if &h.stream != stream || (seq != LATEST && h.seq != seq) {
            return Err(Misbehaviour::WrongChunk {
                asked_stream: stream.to_string(),
                asked_seq: seq,
                got_stream: h.stream.to_string(),
                got_seq: h.seq,
            });
        }
        header
            .check_payload(payload)
            .map_err(Misbehaviour::BadPayload)?;
        Ok(header)
    }

    /// Answers a peer's request from the in-memory window.
    pub fn serve(&self, request: &ChunkRequest) -> ChunkResponse {
        let held = match request {
            ChunkRequest::ByCid(cid) => {
                let chunk = self.by_cid.get(cid).and_then(|places| {
                    places
                        .iter()
                        .find_map(|(s, seq)| self.streams.get(s)?.chunks.get(seq))
                });
                if chunk.is_none() {
                    let part = self.part_cids.get(cid).and_then(|places| {
                        places
                            .iter()
                            .find_map(|(s, seq, i)| self.streams.get(s)?.parts.get(&(*seq, *i)))
                    });
                    if let Some(p) = part {
                        return ChunkResponse::Part {
                            header: p.header.clone(),
                            payload: p.payload.clone(),
                        };
                    }
                }
                chunk
            }
            ChunkRequest::BySeq { stream, seq } => {
                self.streams.get(stream).and_then(|s| s.chunks.get(seq))
            }
            ChunkRequest::Latest(stream) => self
                .streams
                .get(stream)
                .and_then(|s| s.chunks.last_key_value().map(|(_, c)| c)),
            // Answered by the actor (bandwidth terms and payments).
            ChunkRequest::Terms | ChunkRequest::Pay(_) => None,
        };
        match held {
            Some(h) => ChunkResponse::Found {
                header: h.chunk.header.clone(),
                payload: h.chunk.payload.clone(),
            },
            None => ChunkResponse::NotFound,
        }
    }

    /// A chunk from the window, if held.
    pub fn get(&self, stream: &StreamId, seq: u64) -> Option<&HeldChunk> {
        self.streams.get(stream)?.chunks.get(&seq)
    }

    /// The chunks held for `stream`, in sequence order.
    pub fn chunks(&self, stream: &StreamId) -> Vec<HeldChunk> {
        self.streams
            .get(stream)
            .map(|s| s.chunks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Advances timers: request timeouts, retries, giving up, and leaving
    /// relayed streams that ended or went silent.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = vec![];
        let cfg = self.config.clone();
        let mut timed_out = vec![];
        let mut due = vec![];
        let mut leave = vec![];
        for (stream, st) in &mut self.streams {
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
            if let Some(hi) = st.highest {
                st.given_up = st.given_up.split_off(&hi.saturating_sub(cfg.max_behind));
            }
            if st.relay_only() {
                let silent = now.duration_since(st.last_activity) >= cfg.silence_timeout;
                let ended = st
                    .ended_at
                    .is_some_and(|t| now.duration_since(t) >= cfg.ended_linger);
                if silent || ended {
                    leave.push((stream.clone(), silent && !ended));
                }
            }
        }
        for (key, peer) in timed_out {
            out.extend(self.fetch_failed(now, key, peer));
        }
        for (stream, seq) in due {
            out.extend(self.drive(now, &stream, seq));
        }
        out.extend(self.tick_parts(now));
        let cap = self.config.max_relayed.max(1) * 4;
        for (stream, silent) in leave {
            if silent {
                if self.silenced.len() >= cap {
                    self.silenced.pop_front();
                }
                self.silenced.push_back((stream.clone(), now));
            }
            out.extend(self.drop_stream(&stream));
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
            .filter(|p| {
                !st.latest_asked.contains(p)
                    && !st.bad_peers.contains(p)
                    && self.prices.get(p) != Some(&PeerPrice::Unusable)
                    && self.refused_until.get(p).is_none_or(|t| now >= *t)
            })
            .min_by_key(|p| match self.prices.get(p) {
                Some(PeerPrice::Usable(fee)) => *fee,
                _ => u64::MAX,
            })
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
        // Parts still being fetched make the segment: do not pull it too
        // (they are given up well before the segment would be).
        let waiting = self.awaits_parts(stream, seq);
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        let Some(p) = st.pending.get_mut(&seq) else {
            return vec![];
        };
        if p.in_flight.is_some() {
            return vec![];
        }
        // …but only for as long as a part may take: then the segment is
        // pulled whole, well before it would be given up.
        if waiting && now.duration_since(p.first_seen) < cfg.part_give_up_after {
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
        let policy = PeerPolicy {
            prices: &self.prices,
            refused_until: &self.refused_until,
            bad: &st.bad_peers,
        };
        let Some(peer) = p.next_peer(now, &st.peers, &policy, cfg.retry_backoff) else {
            return vec![];
        };
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

    fn unindex(&mut self, cid: ChunkCid, stream: &StreamId, seq: u64) {
        if let Some(places) = self.by_cid.get_mut(&cid) {
            places.retain(|(s, q)| !(s == stream && *q == seq));
            if places.is_empty() {
                self.by_cid.remove(&cid);
            }
        }
    }

    /// Drops the oldest chunk of `stream` (never the last one).
    fn evict_oldest(&mut self, stream: &StreamId) -> bool {
        let Some(st) = self.streams.get_mut(stream) else {
            return false;
        };
        if st.chunks.len() <= 1 {
            return false;
        }
        let Some((seq, old)) = st.chunks.pop_first() else {
            return false;
        };
        let len = old.chunk.payload.len();
        st.floor = st.floor.max(seq + 1);
        st.bytes -= len;
        self.total_bytes -= len;
        if let Some((&first, _)) = st.chunks.first_key_value() {
            st.given_up = st.given_up.split_off(&first);
        }
        self.unindex(old.chunk.header.header.cid, stream, seq);
        true
    }

    /// Enforces the per-stream and total byte and count bounds.
    fn enforce_bounds(&mut self, stream: &StreamId) {
        let cfg = &self.config;
        let (window, per_stream) = (cfg.window, cfg.max_stream_bytes);
        while self
            .streams
            .get(stream)
            .is_some_and(|s| s.chunks.len() > window || s.bytes > per_stream)
        {
            if !self.evict_oldest(stream) {
                break;
            }
        }
        while self.total_bytes > self.config.max_total_bytes {
            // Take from the stream holding the most, so one large stream
            // cannot push out everybody else's chunks.
            let Some(biggest) = self
                .streams
                .iter()
                .filter(|(_, s)| s.chunks.len() > 1)
                .max_by_key(|(_, s)| s.bytes)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            if !self.evict_oldest(&biggest) {
                break;
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
        // Parts of a segment that is here are no longer needed.
        let parts: Vec<(u64, u16)> = st
            .pending_parts
            .range((seq, 0)..=(seq, u16::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in parts {
            if let Some(p) = st.pending_parts.remove(&k) {
                out.extend(p.verdicts(Verdict::Ignore(IgnoreReason::Stale)));
            }
        }
        let len = chunk.payload.len();
        let cid = chunk.header.header.cid;
        st.chunks.insert(
            seq,
            HeldChunk {
                chunk: chunk.clone(),
                ready_at: now,
            },
        );
        st.bytes += len;
        st.last_activity = now;
        if st.start.is_none() {
            st.start = Some(seq);
        }
        if st.highest.is_none_or(|hi| seq > hi) {
            st.highest = Some(seq);
        }
        self.total_bytes += len;
        self.by_cid
            .entry(cid)
            .or_default()
            .push((stream.clone(), seq));
        self.enforce_bounds(&stream);
        out.push(Output::Ready(chunk));
        // Fill gaps behind this chunk (missed gossip) from topic peers.
        let Some(st) = self.streams.get_mut(&stream) else {
            return out;
        };
        // Never below what was evicted on purpose.
        let start = st.start.unwrap_or(seq);
        let lowest = seq
            .saturating_sub(cfg.max_gap_fill)
            .max(start)
            .max(st.floor);
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
