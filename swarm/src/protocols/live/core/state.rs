//! Per-stream and per-fetch bookkeeping of [`super::RelayCore`]: plain
//! data with the few helpers that need no other state.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;

use std::sync::Arc;

use super::super::wire::{SignedHeader, SignedPartHeader};
use super::types::{HeldChunk, JoinReason, Output, Part, Verdict};

pub(super) struct Pending {
    pub(super) header: Option<SignedHeader>,
    pub(super) msgs: Vec<(MessageId, PeerId)>,
    /// Peers to try, in order; the gossip source first.
    pub(super) candidates: Vec<PeerId>,
    pub(super) tried: HashSet<PeerId>,
    pub(super) in_flight: Option<(PeerId, Instant)>,
    pub(super) retry_at: Option<Instant>,
    pub(super) first_seen: Instant,
}

impl Pending {
    pub(super) fn new(header: Option<SignedHeader>, candidates: Vec<PeerId>, now: Instant) -> Self {
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

    /// The gossipsub verdict for every message that announced this chunk.
    pub(super) fn verdicts(self, verdict: Verdict) -> impl Iterator<Item = Output> {
        verdicts(self.msgs, verdict)
    }
}

/// A part being fetched.
pub(super) struct PendingPart {
    pub(super) header: SignedPartHeader,
    pub(super) msgs: Vec<(MessageId, PeerId)>,
    /// Peers to try; the gossip sources first.
    pub(super) candidates: Vec<PeerId>,
    pub(super) tried: HashSet<PeerId>,
    pub(super) in_flight: Option<(PeerId, Instant)>,
    pub(super) retry_at: Option<Instant>,
    pub(super) first_seen: Instant,
}

impl PendingPart {
    /// The gossipsub verdict for every message that announced this part.
    pub(super) fn verdicts(self, verdict: Verdict) -> impl Iterator<Item = Output> {
        verdicts(self.msgs, verdict)
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
    pub(super) pending: BTreeMap<u64, Pending>,
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
