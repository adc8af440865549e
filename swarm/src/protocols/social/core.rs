//! The record rules every node applies before it stores or forwards a
//! social record, IO-less: they take the held record and the time and
//! return what to keep.
//!
//! - a profile must be signed by its creator, valid now (not expired, not
//!   from the future) and *newer* than the one held; the same version with
//!   other content is refused (a key that signs two versions with one
//!   number is equivocating);
//! - a follows or followers record is a set of operations each signed by
//!   its follower and each about the record's subject; it is *merged* into
//!   the held one (per (follower, creator) the later operation wins:
//!   [`SignedFollowOp::wins_over`]), so that no order of arrival and no
//!   stale copy loses an operation. The merge is commutative, associative
//!   and idempotent (a last-writer-wins element set);
//! - every record is within its kind's size limit.
//!
//! [`SocialPolicy`] adds the rates: per forwarding peer and per subject, so
//! that a flood from one key or one peer stops at the first hop and the
//! others are unaffected.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::wire::{
    RecordKey, RecordKind, SignedFollowOp, SocialRecord, MAX_FOLLOW_OPS, MAX_SKEW_MS,
};
use crate::protocols::bucket::Bucket;
use crate::protocols::live::wire::WireError;

/// Why a record was refused: precise, for the log, the drop event and the
/// user who published it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a Vilokanam social record key.
    #[error("not a Vilokanam social record key")]
    ForeignKey,
    /// The bytes do not decode, or a field is out of range.
    #[error("malformed record: {0}")]
    Malformed(WireError),
    /// The record is stored under another key than its own.
    #[error("record for {record} stored under {key}")]
    KeyMismatch {
        /// The key it came under.
        key: String,
        /// The key its content names.
        record: String,
    },
    /// A signature does not verify.
    #[error("forged {what}: {reason}")]
    Forged {
        /// Which part.
        what: &'static str,
        /// The check that failed.
        reason: WireError,
    },
    /// An operation names another subject than the record's.
    #[error("operation about another key than the record's subject")]
    WrongSubject,
    /// Two operations for the same pair.
    #[error("two operations for one (follower, creator) pair")]
    Duplicate,
    /// More operations than a record holds.
    #[error("{n} operations, more than the {MAX_FOLLOW_OPS} a record holds")]
    TooManyOps {
        /// How many it had.
        n: usize,
    },
    /// The profile expired.
    #[error("expired at {expires_ms} (now {now_ms})")]
    Expired {
        /// Its expiry (unix ms).
        expires_ms: u64,
        /// The node's clock (unix ms).
        now_ms: u64,
    },
    /// A timestamp beyond the allowed clock skew.
    #[error("dated {at_ms}, more than 5 minutes ahead of this node's clock ({now_ms})")]
    FromFuture {
        /// The timestamp.
        at_ms: u64,
        /// The node's clock.
        now_ms: u64,
    },
    /// An older (or the same) profile version than the one held.
    #[error("profile version {got} is not newer than the held version {held}")]
    NotNewer {
        /// The held version.
        held: u64,
        /// The offered version.
        got: u64,
    },
    /// The same version with other content.
    #[error("profile version {version} signed twice with different content")]
    Equivocation {
        /// The version.
        version: u64,
    },
    /// Nothing new: every operation was already held (or superseded).
    #[error("nothing new")]
    Unchanged,
}

impl RecordError {
    /// Whether the record was *invalid* (as opposed to valid but not new):
    /// only these cost their forwarder its score.
    pub fn is_invalid(&self) -> bool {
        !matches!(self, RecordError::Unchanged | RecordError::NotNewer { .. })
    }
}

fn forged(what: &'static str) -> impl Fn(WireError) -> RecordError {
    move |reason| match reason {
        WireError::BadSignature | WireError::BadCreatorKey => RecordError::Forged { what, reason },
        other => RecordError::Malformed(other),
    }
}

/// Checks one record on its own: key, fields, signatures, clock, one
/// operation per pair (not what is held).
pub fn check(key: &RecordKey, record: &SocialRecord, now_ms: u64) -> Result<(), RecordError> {
    if record.key() != *key {
        return Err(RecordError::KeyMismatch {
            key: key.to_string(),
            record: record.key().to_string(),
        });
    }
    let future = |at_ms: u64| {
        if at_ms > now_ms.saturating_add(MAX_SKEW_MS) {
            Err(RecordError::FromFuture { at_ms, now_ms })
        } else {
            Ok(())
        }
    };
    match record {
        SocialRecord::Profile(p) => {
            p.verify().map_err(forged("profile signature"))?;
            future(p.profile.version)?;
            if p.profile.expires_ms <= now_ms {
                return Err(RecordError::Expired {
                    expires_ms: p.profile.expires_ms,
                    now_ms,
                });
            }
        }
        SocialRecord::Follows { subject, ops } | SocialRecord::Followers { subject, ops } => {
            if ops.len() > MAX_FOLLOW_OPS {
                return Err(RecordError::TooManyOps { n: ops.len() });
            }
            let follows = key.kind == RecordKind::Follows;
            let mut seen = std::collections::HashSet::new();
            for o in ops {
                let about = if follows { o.op.follower } else { o.op.creator };
                if about != *subject {
                    return Err(RecordError::WrongSubject);
                }
                if !seen.insert((o.op.follower, o.op.creator)) {
                    return Err(RecordError::Duplicate);
                }
                future(o.op.at_ms)?;
                o.verify().map_err(forged("follow operation signature"))?;
            }
        }
    }
    Ok(())
}

/// Merges two sets of operations: per (follower, creator) the winner
/// ([`SignedFollowOp::wins_over`]); sorted by pair.
pub fn merge_ops(a: &[SignedFollowOp], b: &[SignedFollowOp]) -> Vec<SignedFollowOp> {
    let mut m: BTreeMap<([u8; 32], [u8; 32]), SignedFollowOp> = BTreeMap::new();
    for o in a.iter().chain(b) {
        let k = (o.op.follower, o.op.creator);
        match m.get(&k) {
            Some(held) if !o.wins_over(held) => {}
            _ => {
                m.insert(k, *o);
            }
        }
    }
    m.into_values().collect()
}

/// Keeps at most [`MAX_FOLLOW_OPS`] of a *followers* index: unfollows go
/// first (oldest first), then the oldest follows. A follower's own follows
/// record is never trimmed (its node refuses the 401st follow instead).
fn trim_index(mut ops: Vec<SignedFollowOp>) -> Vec<SignedFollowOp> {
    if ops.len() <= MAX_FOLLOW_OPS {
        return ops;
    }
    ops.sort_by_key(|o| (o.op.follow, o.op.at_ms, o.signature.0));
    let cut = ops.len() - MAX_FOLLOW_OPS;
    ops.drain(..cut);
    ops.sort_by_key(|o| (o.op.follower, o.op.creator));
    ops
}

/// What a valid record changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The record to keep (a follows or followers record merged with the
    /// held one).
    pub record: SocialRecord,
    /// Its encoding.
    pub bytes: Vec<u8>,
}

/// Decides what to keep when `value` arrives under `key` while `held` is
/// stored: the record to store, or why nothing changes. `held` is trusted
/// (it passed this check when it was stored) unless it expired.
pub fn accept(
    key: &[u8],
    value: &[u8],
    held: Option<&[u8]>,
    now_ms: u64,
) -> Result<Accepted, RecordError> {
    let key = RecordKey::from_bytes(key).ok_or(RecordError::ForeignKey)?;
    let record = SocialRecord::decode(value).map_err(RecordError::Malformed)?;
    check(&key, &record, now_ms)?;
    let held = held
        .and_then(|h| SocialRecord::decode(h).ok())
        .filter(|h| h.key() == key)
        .filter(|h| match h {
            SocialRecord::Profile(p) => p.profile.expires_ms > now_ms,
            _ => true,
        });
    accept_checked(record, held.as_ref())
}

/// [`accept`] for a record already [`check`]ed, against a held record.
pub fn accept_checked(
    record: SocialRecord,
    held: Option<&SocialRecord>,
) -> Result<Accepted, RecordError> {
    let record = match (record, held) {
        (r, None) => match r {
            SocialRecord::Followers { subject, ops } => SocialRecord::Followers {
                subject,
                ops: trim_index(merge_ops(&ops, &[])),
            },
            SocialRecord::Follows { subject, ops } => SocialRecord::Follows {
                subject,
                ops: merge_ops(&ops, &[]),
            },
            p => p,
        },
        (SocialRecord::Profile(new), Some(SocialRecord::Profile(old))) => {
            let (got, held) = (new.profile.version, old.profile.version);
            if got < held {
                return Err(RecordError::NotNewer { held, got });
            }
            if got == held {
                return Err(if new == *old {
                    RecordError::Unchanged
                } else {
                    RecordError::Equivocation { version: got }
                });
            }
            SocialRecord::Profile(new)
        }
        (SocialRecord::Follows { subject, ops }, Some(h)) => {
            let merged = merge_ops(h.ops(), &ops);
            if merged.len() > MAX_FOLLOW_OPS {
                return Err(RecordError::TooManyOps { n: merged.len() });
            }
            if merged == h.ops() {
                return Err(RecordError::Unchanged);
            }
            SocialRecord::Follows {
                subject,
                ops: merged,
            }
        }
        (SocialRecord::Followers { subject, ops }, Some(h)) => {
            let merged = trim_index(merge_ops(h.ops(), &ops));
            if merged == h.ops() {
                return Err(RecordError::Unchanged);
            }
            SocialRecord::Followers {
                subject,
                ops: merged,
            }
        }
        // `held` has the record's key, hence its kind.
        (_, Some(_)) => return Err(RecordError::ForeignKey),
    };
    let bytes = record.encode();
    Ok(Accepted { record, bytes })
}

/// The keys a follows or followers record says are followed (the latest
/// operation of each pair is a follow).
pub fn followed(ops: &[SignedFollowOp]) -> impl Iterator<Item = &SignedFollowOp> {
    ops.iter().filter(|o| o.op.follow)
}

/// Rates of the social topic.
#[derive(Clone, Debug, PartialEq)]
pub struct SocialConfig {
    /// Records a forwarding peer may send at once, then per second.
    pub peer_burst: u32,
    /// Refill per second of a peer's budget.
    pub peer_rate: f64,
    /// Records about one subject at once, then per second.
    pub subject_burst: u32,
    /// Refill per second of a subject's budget.
    pub subject_rate: f64,
    /// Budgets kept (peers plus subjects); full ones are forgotten first.
    pub max_budgets: usize,
    /// How often a node pushes its own records again. Default 5 min.
    pub republish: Duration,
    /// Records the DHT store holds. Default 2048 (≤ 128 MiB at the 64 KiB
    /// cap).
    pub max_records: usize,
}

impl Default for SocialConfig {
    fn default() -> Self {
        SocialConfig {
            peer_burst: 50,
            peer_rate: 5.0,
            subject_burst: 10,
            subject_rate: 0.5,
            max_budgets: 10_000,
            republish: Duration::from_secs(300),
            max_records: 2048,
        }
    }
}

/// Why the policy held a record back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    /// The forwarding peer sent too many.
    #[error("the forwarding peer's record budget is spent")]
    Peer,
    /// Too many records about one key.
    #[error("the subject's record budget is spent")]
    Subject,
}

/// Per-peer and per-subject budgets of records on the social topic.
#[derive(Debug)]
pub struct SocialPolicy {
    config: SocialConfig,
    peers: HashMap<PeerId, Bucket>,
    subjects: HashMap<[u8; 32], Bucket>,
}

impl SocialPolicy {
    /// A policy with `config`'s rates.
    pub fn new(config: SocialConfig) -> Self {
        SocialPolicy {
            config,
            peers: HashMap::new(),
            subjects: HashMap::new(),
        }
    }

    /// Takes one record from `peer` about `subject`'s budgets.
    pub fn admit(
        &mut self,
        now: Instant,
        peer: PeerId,
        subject: [u8; 32],
    ) -> Result<(), RateLimited> {
        let c = &self.config;
        if self.peers.len() + self.subjects.len() + 2 > c.max_budgets {
            // Buckets that would be full again cost nothing to forget.
            let (pb, sb) = (c.peer_burst, c.subject_burst);
            let (pr, sr) = (c.peer_rate, c.subject_rate);
            self.peers.retain(|_, b| !b.would_be_full(now, pb, pr));
            self.subjects.retain(|_, b| !b.would_be_full(now, sb, sr));
            if self.peers.len() + self.subjects.len() + 2 > c.max_budgets {
                return Err(RateLimited::Subject);
            }
        }
        let p = self
            .peers
            .entry(peer)
            .or_insert_with(|| Bucket::full(c.peer_burst, now));
        if !p.take(now, c.peer_burst, c.peer_rate) {
            return Err(RateLimited::Peer);
        }
        let s = self
            .subjects
            .entry(subject)
            .or_insert_with(|| Bucket::full(c.subject_burst, now));
        if !s.take(now, c.subject_burst, c.subject_rate) {
            return Err(RateLimited::Subject);
        }
        Ok(())
    }

    /// Forgets a peer's budget (it disconnected).
    pub fn forget_peer(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Budgets held (for bounds tests).
    pub fn budgets(&self) -> usize {
        self.peers.len() + self.subjects.len()
    }
}

/// Unix ms of `now` on the wall clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
