//! Per-stream and per-fetch bookkeeping of [`super::RelayCore`]: plain
//! data with the few helpers that need no other state.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;

use std::sync::Arc;

use super::super::wire::{SignedHeader, SignedPartHeader};
use super::types::{HeldChunk, JoinReason, Output, Part, PeerPrice, Verdict};

/// A payload being fetched: a chunk's (`H` = its header, if known) or a
/// part's (`H` = its header). Both are scheduled the same way.
pub(super) struct Pending<H> {
    pub(super) header: H,
    pub(super) msgs: Vec<(MessageId, PeerId)>,
    /// Peers to try, in order; the gossip source first.
    pub(super) candidates: Vec<PeerId>,
    pub(super) tried: HashSet<PeerId>,
    pub(super) in_flight: Option<(PeerId, Instant)>,
    pub(super) retry_at: Option<Instant>,
    pub(super) first_seen: Instant,
}

/// A part being fetched.
pub(super) type PendingPart = Pending<SignedPartHeader>;

impl<H> Pending<H> {
    pub(super) fn new(header: H, candidates: Vec<PeerId>, now: Instant) -> Self {
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

    /// The gossipsub verdict for every message that announced this payload.
    pub(super) fn verdicts(self, verdict: Verdict) -> impl Iterator<Item = Output> {
        verdicts(self.msgs, verdict)
    }

    /// The next peer to ask, now marked asked and in flight; `None` when
    /// every usable peer was asked: a new round starts once `backoff`
    /// passed since that was first seen.
    pub(super) fn next_peer(
        &mut self,
        now: Instant,
        topic_peers: &BTreeSet<PeerId>,
        policy: &PeerPolicy<'_>,
        backoff: std::time::Duration,
    ) -> Option<PeerId> {
        // Topic peers that joined since are candidates too.
        for peer in topic_peers {
            if !self.candidates.contains(peer) {
                self.candidates.push(*peer);
            }
        }
        let holders: Vec<PeerId> = self.msgs.iter().map(|(_, s)| *s).collect();
        loop {
            if let Some(peer) = policy.pick(now, &self.candidates, &self.tried, &holders) {
                self.tried.insert(peer);
                self.in_flight = Some((peer, now));
                self.retry_at = None;
                return Some(peer);
            }
            if self.retry_at.is_some_and(|t| now >= t) {
                // Everyone was asked: start a new round.
                self.tried.clear();
                self.retry_at = None;
                continue;
            }
            self.retry_at.get_or_insert(now + backoff);
            return None;
        }
    }
}

/// What the scheduler knows of peers as servers of payloads.
pub(super) struct PeerPolicy<'a> {
    pub(super) prices: &'a HashMap<PeerId, PeerPrice>,
    pub(super) refused_until: &'a HashMap<PeerId, Instant>,
    pub(super) bad: &'a HashSet<PeerId>,
}

impl PeerPolicy<'_> {
    /// Chooses among `candidates` not yet `tried`: those that forwarded
    /// the header (`holders`: they verified the payload, so they hold it)
    /// before the others, then the cheapest, then the order they came in
    /// (the first to forward a header is the nearest to the creator).
    /// Never a peer that served bad data, is unusable or asked to be paid
    /// first. Nothing waits for a cheaper peer to announce.
    fn pick(
        &self,
        now: Instant,
        candidates: &[PeerId],
        tried: &HashSet<PeerId>,
        holders: &[PeerId],
    ) -> Option<PeerId> {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !tried.contains(c)
                    && !self.bad.contains(c)
                    && self.prices.get(c) != Some(&PeerPrice::Unusable)
                    && self.refused_until.get(c).is_none_or(|t| now >= *t)
            })
            .min_by_key(|(i, c)| {
                let fee = match self.prices.get(c) {
                    Some(PeerPrice::Usable(fee)) => *fee,
                    _ => u64::MAX,
                };
                (!holders.contains(c), fee, *i)
            })
            .map(|(_, c)| *c)
    }
}

/// The gossipsub verdict for every one of `msgs`.
fn verdicts(msgs: Vec<(MessageId, PeerId)>, verdict: Verdict) -> impl Iterator<Item = Output> {
    msgs.into_iter()
        .map(move |(msg_id, source)| Output::Validation {
            msg_id,
            source,
            verdict: verdict.clone(),
        })
}

/// Most gossip messages one pending chunk remembers (for verdicts). Every
/// mesh peer may forward the header once; more copies are ignored.
pub(super) const MAX_MSGS_PER_PENDING: usize = 32;

pub(super) struct StreamState {
    pub(super) reasons: BTreeSet<JoinReason>,
    pub(super) chunks: BTreeMap<u64, HeldChunk>,
    pub(super) bytes: usize,
    pub(super) pending: BTreeMap<u64, Pending<Option<SignedHeader>>>,
    pub(super) peers: BTreeSet<PeerId>,
    pub(super) bad_peers: HashSet<PeerId>,
    /// First sequence this node follows (join point); earlier ones are not wanted.
    pub(super) start: Option<u64>,
    pub(super) highest: Option<u64>,
    pub(super) given_up: BTreeSet<u64>,
    pub(super) latest_in_flight: Option<(PeerId, Instant)>,
    pub(super) latest_asked: HashSet<PeerId>,
    /// Last time a chunk arrived (or the join), for the silence timeout.
    pub(super) last_activity: Instant,
    /// When the creator announced the end.
    pub(super) ended_at: Option<Instant>,
    /// Chunks below this were evicted on purpose and are not fetched again.
    pub(super) floor: u64,
    /// Verified parts of the newest segments, by (segment, index).
    pub(super) parts: BTreeMap<(u64, u16), Arc<Part>>,
    /// Their payload bytes.
    pub(super) part_bytes: usize,
    /// Parts being fetched.
    pub(super) pending_parts: BTreeMap<(u64, u16), PendingPart>,
}

impl StreamState {
    pub(super) fn new(now: Instant) -> Self {
        StreamState {
            reasons: BTreeSet::new(),
            chunks: BTreeMap::new(),
            bytes: 0,
            pending: BTreeMap::new(),
            peers: BTreeSet::new(),
            bad_peers: HashSet::new(),
            start: None,
            highest: None,
            given_up: BTreeSet::new(),
            latest_in_flight: None,
            latest_asked: HashSet::new(),
            last_activity: now,
            ended_at: None,
            floor: 0,
            parts: BTreeMap::new(),
            part_bytes: 0,
            pending_parts: BTreeMap::new(),
        }
    }

    pub(super) fn relay_only(&self) -> bool {
        self.reasons.iter().all(|r| *r == JoinReason::Relay)
    }
}
