//! Parts (LL-HLS partial segments) in the relay core.
//!
//! A creator publishes each part of the segment in progress as soon as it
//! is cut: a signed [`PartHeader`](crate::protocols::live::wire::PartHeader)
//! on the stream topic, the payload pulled by CID, checked, and only then
//! the header forwarded, exactly as for whole chunks. When the segment's
//! own header arrives and lists its parts, a node that holds all of them
//! assembles the segment from them (the segment's payload is its parts'
//! payloads in order, checked against the segment's CID) instead of
//! pulling it, so parts cost no second download. A node that missed a
//! part (it joined late, or the part was lost) pulls the segment whole.
//!
//! Parts are kept only for the newest [`RelayConfig::part_segments`]
//! segments, at most [`RelayConfig::max_pending_parts`] are fetched at
//! once per stream, and a part not obtained within
//! [`RelayConfig::part_give_up_after`] is given up: a part is worth
//! something only near the live edge.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tracing::warn;

use super::state::{PeerPolicy, PendingPart, MAX_MSGS_PER_PENDING};
use super::{
    Chunk, ChunkResponse, FetchError, IgnoreReason, Misbehaviour, Output, Part, PartKey, RelayCore,
    Verdict,
};
use crate::protocols::live::wire::{ChunkRequest, SignedPartHeader, StreamId};

impl RelayCore {
    /// A part header arrived by gossip on the topic of `topic_stream`.
    pub fn on_gossip_part(
        &mut self,
        now: Instant,
        msg_id: MessageId,
        source: PeerId,
        topic_stream: &StreamId,
        signed: SignedPartHeader,
    ) -> Vec<Output> {
        let verdict = |v| super::validation(&msg_id, source, v);
        if let Some(v) = self.precheck(signed.verify(), &signed.header.stream, topic_stream) {
            return verdict(v);
        }
        let h = &signed.header;
        let cfg = self.config.clone();
        let Some(st) = self.streams.get_mut(&h.stream) else {
            return verdict(Verdict::Ignore(IgnoreReason::NotJoined));
        };
        let key = (h.seq, h.index);
        if let Some(held) = st.parts.get(&key) {
            return if held.header.header.cid == h.cid {
                verdict(Verdict::Accept)
            } else {
                warn!(stream = %h.stream, seq = h.seq, part = h.index, "creator equivocated on a part: keeping the first");
                verdict(Verdict::Ignore(IgnoreReason::Equivocation))
            };
        }
        // The segment is here already (or newer ones are), or it is before
        // the join point, or absurdly far ahead: the part is no use.
        let stale = st.chunks.contains_key(&h.seq)
            || st
                .highest
                .is_some_and(|hi| h.seq < hi || h.seq > hi.saturating_add(cfg.max_ahead))
            || st.start.is_some_and(|s| h.seq < s)
            || st.given_up.contains(&h.seq);
        if stale {
            return verdict(Verdict::Ignore(IgnoreReason::Stale));
        }
        if let Some(p) = st.pending_parts.get_mut(&key) {
            if p.header.header.cid != h.cid {
                return verdict(Verdict::Ignore(IgnoreReason::Equivocation));
            }
            if p.msgs.len() >= MAX_MSGS_PER_PENDING {
                return verdict(Verdict::Ignore(IgnoreReason::Duplicate));
            }
            p.msgs.push((msg_id, source));
            if !p.tried.contains(&source) {
                p.candidates.retain(|c| *c != source);
                p.candidates.insert(0, source);
            }
        } else {
            if st.pending_parts.len() >= cfg.max_pending_parts {
                return verdict(Verdict::Ignore(IgnoreReason::TooManyPending));
            }
            let mut candidates: Vec<PeerId> =
                st.peers.iter().copied().filter(|p| *p != source).collect();
            candidates.insert(0, source);
            let mut p = PendingPart::new(signed, candidates, now);
            p.msgs.push((msg_id, source));
            st.pending_parts.insert(key, p);
        }
        let stream = topic_stream.clone();
        self.drive_part(now, &(stream, key.0, key.1))
    }

    /// A part this node cut (it creates the stream). Returns `PartReady`.
    pub fn publish_local_part(&mut self, now: Instant, part: Part) -> Vec<Output> {
        if !self.streams.contains_key(part.stream()) {
            return vec![];
        }
        self.insert_part(now, Arc::new(part))
    }

    /// A part held here.
    pub fn get_part(&self, stream: &StreamId, seq: u64, index: u16) -> Option<Arc<Part>> {
        self.streams.get(stream)?.parts.get(&(seq, index)).cloned()
    }

    /// The result of an [`Output::FetchPart`].
    pub fn on_part_result(
        &mut self,
        now: Instant,
        key: PartKey,
        peer: PeerId,
        result: Result<ChunkResponse, FetchError>,
    ) -> Vec<Output> {
        let payload = match result {
            // A segment of one part has that part's CID: a peer that
            // already assembled it answers with the chunk; the payload is
            // what counts.
            Ok(ChunkResponse::Part { payload, .. } | ChunkResponse::Found { payload, .. }) => {
                payload
            }
            Ok(ChunkResponse::PaymentRequired { owed, paid, .. }) => {
                self.refused_until
                    .insert(peer, now + self.config.retry_backoff);
                let mut out = vec![Output::PaymentDemanded { peer, owed, paid }];
                out.extend(self.part_failed(now, key, peer));
                return out;
            }
            Ok(_) | Err(_) => return self.part_failed(now, key, peer),
        };
        let (stream, seq, index) = &key;
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        let Some(p) = st.pending_parts.get(&(*seq, *index)) else {
            // Given up or no longer wanted meanwhile: not checked, so not
            // paid for (the server's credit absorbs a few such answers).
            return vec![];
        };
        if p.in_flight.map(|(q, _)| q) != Some(peer) {
            return vec![];
        }
        // The server's own header is not trusted: the payload must match
        // the creator-signed header this node holds.
        if let Err(e) = p.header.check_payload(&payload) {
            st.bad_peers.insert(peer);
            let mut out = vec![Output::Penalize {
                peer,
                reason: Misbehaviour::BadPayload(e),
            }];
            out.extend(self.part_failed(now, key, peer));
            return out;
        }
        let Some(p) = st.pending_parts.remove(&(*seq, *index)) else {
            return vec![];
        };
        let mut out = vec![Output::Verified {
            peer,
            stream: stream.clone(),
            bytes: payload.len() as u64,
        }];
        let header = p.header.clone();
        out.extend(p.verdicts(Verdict::Accept));
        out.extend(self.insert_part(now, Arc::new(Part { header, payload })));
        out
    }

    /// A part request to `peer` failed: ask the next peer.
    pub(super) fn part_failed(&mut self, now: Instant, key: PartKey, peer: PeerId) -> Vec<Output> {
        let Some(p) = self
            .streams
            .get_mut(&key.0)
            .and_then(|st| st.pending_parts.get_mut(&(key.1, key.2)))
        else {
            return vec![];
        };
        if p.in_flight.map(|(q, _)| q) != Some(peer) {
            return vec![];
        }
        p.in_flight = None;
        self.drive_part(now, &key)
    }

    /// Starts the next request for a pending part, schedules a retry, or
    /// gives up (and then lets its segment be pulled whole).
    pub(super) fn drive_part(&mut self, now: Instant, key: &PartKey) -> Vec<Output> {
        let (stream, seq, index) = key;
        let cfg = self.config.clone();
        let Some(st) = self.streams.get_mut(stream) else {
            return vec![];
        };
        let Some(p) = st.pending_parts.get_mut(&(*seq, *index)) else {
            return vec![];
        };
        if p.in_flight.is_some() {
            return vec![];
        }
        if now.duration_since(p.first_seen) >= cfg.part_give_up_after {
            let mut out: Vec<Output> = st
                .pending_parts
                .remove(&(*seq, *index))
                .into_iter()
                .flat_map(|p| p.verdicts(Verdict::Ignore(IgnoreReason::PayloadUnavailable)))
                .collect();
            out.push(Output::PartMissing(key.clone()));
            out.extend(self.assemble_or_drive(now, stream, *seq));
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
        vec![Output::FetchPart {
            peer,
            request: ChunkRequest::ByCid(p.header.header.cid),
            key: key.clone(),
        }]
    }

    /// Timers of pending parts: request timeouts, retries, giving up.
    pub(super) fn tick_parts(&mut self, now: Instant) -> Vec<Output> {
        let cfg = &self.config;
        let mut timed_out = vec![];
        let mut due = vec![];
        for (stream, st) in &self.streams {
            for (&(seq, index), p) in &st.pending_parts {
                let key = (stream.clone(), seq, index);
                let expired = now.duration_since(p.first_seen) >= cfg.part_give_up_after;
                match p.in_flight {
                    // A part past its time is given up even while asked
                    // for: its segment must not wait for a slow peer.
                    Some((peer, at))
                        if expired || now.duration_since(at) >= cfg.part_fetch_timeout =>
                    {
                        timed_out.push((key, peer))
                    }
                    Some(_) => {}
                    None => {
                        if expired || p.retry_at.is_none_or(|t| now >= t) {
                            due.push(key)
                        }
                    }
                }
            }
        }
        let mut out = vec![];
        for (key, peer) in timed_out {
            out.extend(self.part_failed(now, key, peer));
        }
        for key in due {
            out.extend(self.drive_part(now, &key));
        }
        out
    }

    /// Keeps a verified part, bounded to the newest segments and the
    /// per-stream byte budget (a quarter of it); a segment waiting for its
    /// parts is assembled once they are all here.
    fn insert_part(&mut self, now: Instant, part: Arc<Part>) -> Vec<Output> {
        let stream = part.stream().clone();
        let (seq, index) = (part.seq(), part.index());
        let cfg = self.config.clone();
        let Some(st) = self.streams.get_mut(&stream) else {
            return vec![];
        };
        if st.parts.contains_key(&(seq, index)) {
            return vec![];
        }
        st.part_bytes += part.payload.len();
        st.parts.insert((seq, index), part.clone());
        st.last_activity = now;
        self.part_cids
            .entry(part.header.header.cid)
            .or_default()
            .push((stream.clone(), seq, index));
        self.total_part_bytes += part.payload.len();
        // Bounds: parts of old segments go, then the oldest parts while
        // over the stream's byte budget (a quarter of the chunks'), never
        // the one just added.
        let newest = st.parts.last_key_value().map_or(seq, |(k, _)| k.0);
        let keep_from = newest.saturating_sub(cfg.part_segments.saturating_sub(1));
        let budget = cfg.max_stream_bytes / 4;
        let mut dropped = vec![];
        while let Some((&k, _)) = st.parts.first_key_value() {
            if k == (seq, index) || (k.0 >= keep_from && st.part_bytes <= budget) {
                break;
            }
            if let Some(old) = st.parts.remove(&k) {
                st.part_bytes -= old.payload.len();
                self.total_part_bytes -= old.payload.len();
                dropped.push((old.header.header.cid, k));
            }
        }
        // Pending parts of segments that old are no use either.
        let stale: Vec<(u64, u16)> = st
            .pending_parts
            .range(..(keep_from, 0))
            .map(|(k, _)| *k)
            .collect();
        let mut out = vec![];
        for k in stale {
            if let Some(p) = st.pending_parts.remove(&k) {
                out.extend(p.verdicts(Verdict::Ignore(IgnoreReason::Stale)));
            }
        }
        for (cid, (s, i)) in dropped {
            self.unindex_part(cid, &stream, s, i);
        }
        self.enforce_total_parts(&(stream.clone(), seq, index));
        out.push(Output::PartReady(part));
        out.extend(self.assemble_or_drive(now, &stream, seq));
        out
    }

    /// Over all streams, parts hold at most a quarter of the chunks'
    /// budget: past it, the oldest part of the stream holding the most
    /// part bytes goes (so one busy stream cannot push out the others'),
    /// never `keep` (the part just added).
    fn enforce_total_parts(&mut self, keep: &PartKey) {
        let total_budget = self.config.max_total_bytes / 4;
        while self.total_part_bytes > total_budget {
            let Some((id, k)) = self
                .streams
                .iter()
                .filter_map(|(id, st)| {
                    let (&k, _) = st.parts.first_key_value()?;
                    let is_keep = id == &keep.0 && k == (keep.1, keep.2);
                    (!is_keep).then_some((id, k, st.part_bytes))
                })
                .max_by_key(|(_, _, bytes)| *bytes)
                .map(|(id, k, _)| (id.clone(), k))
            else {
                return;
            };
            let Some(old) = self.streams.get_mut(&id).and_then(|st| {
                let old = st.parts.remove(&k)?;
                st.part_bytes -= old.payload.len();
                Some(old)
            }) else {
                return;
            };
            self.total_part_bytes -= old.payload.len();
            self.unindex_part(old.header.header.cid, &id, k.0, k.1);
        }
    }

    pub(super) fn unindex_part(
        &mut self,
        cid: crate::protocols::live::wire::ChunkCid,
        stream: &StreamId,
        seq: u64,
        index: u16,
    ) {
        if let Some(places) = self.part_cids.get_mut(&cid) {
            places.retain(|(s, q, i)| !(s == stream && *q == seq && *i == index));
            if places.is_empty() {
                self.part_cids.remove(&cid);
            }
        }
    }

    /// A segment whose header is pending: assembled from its parts if all
    /// are here and match it; left waiting while some are still being
    /// fetched; pulled whole otherwise.
    pub(super) fn assemble_or_drive(
        &mut self,
        now: Instant,
        stream: &StreamId,
        seq: u64,
    ) -> Vec<Output> {
        let Some(st) = self.streams.get(stream) else {
            return vec![];
        };
        let Some(header) = st.pending.get(&seq).and_then(|p| p.header.clone()) else {
            return vec![];
        };
        let infos = &header.header.parts;
        if infos.is_empty() {
            return self.drive(now, stream, seq);
        }
        let held: Vec<&Arc<Part>> = (0..infos.len() as u16)
            .filter_map(|i| st.parts.get(&(seq, i)))
            .collect();
        if held.len() == infos.len() {
            let mut payload = BytesMut::with_capacity(header.header.size as usize);
            for p in &held {
                payload.extend_from_slice(&p.payload);
            }
            let payload = payload.freeze();
            if header.check_payload(&payload).is_ok() {
                return self.insert(now, Arc::new(Chunk { header, payload }));
            }
            // The creator's parts do not make its segment: pull it whole.
            warn!(stream = %stream, seq, "parts do not assemble to the segment; pulling it whole");
        } else if st
            .pending_parts
            .range((seq, 0)..=(seq, u16::MAX))
            .next()
            .is_some()
        {
            // Still coming: the segment waits for them.
            return vec![];
        }
        self.drive(now, stream, seq)
    }

    /// Whether segment `seq` waits for parts still being fetched.
    pub(super) fn awaits_parts(&self, stream: &StreamId, seq: u64) -> bool {
        self.streams.get(stream).is_some_and(|st| {
            st.pending.get(&seq).is_some_and(|p| {
                p.header
                    .as_ref()
                    .is_some_and(|h| !h.header.parts.is_empty())
            }) && st
                .pending_parts
                .range((seq, 0)..=(seq, u16::MAX))
                .next()
                .is_some()
        })
    }
}
