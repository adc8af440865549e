//! The social actor: runs the record rules ([`super::core`]) on the swarm.
//!
//! Records travel three ways, and each way goes through the same check
//! before anything is stored or forwarded:
//!
//! - **the DHT**: Kademlia runs with `StoreInserts::FilterBoth`, so every
//!   inbound `PUT_VALUE` comes here ([`SocialActor::on_kad_put`]) and only a
//!   valid, newer (or merged) record is put in the store; lookups
//!   ([`SocialActor::get`]) check every record peers return and keep the
//!   newest (profiles) or the merge of all (follow sets);
//! - **the social topic** (gossipsub): a node pushes the records it
//!   publishes there at once and every [`SocialConfig::republish`]; relays
//!   forward only what changed their store (`Accept`), drop what is old or
//!   over a rate (`Ignore`) and reject what is invalid (`Reject`: scored);
//! - **a push on subscription**: when a peer subscribes to the social
//!   topic, it is sent this node's own records and the most recently
//!   changed ones it holds, straight to it (`put_record_to`), so that a node
//!   on a fixed topology (no discovery, so no DHT walks) learns them too.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::kad::{self, store::RecordStore, GetRecordOk, QueryResult, Quorum};
use libp2p::PeerId;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::core::{accept, accept_checked, check, RecordError, SocialConfig, SocialPolicy};
use super::wire::{RecordKey, RecordKind, SocialRecord, SOCIAL_TOPIC};
use crate::network::{Event, SwarmError};
use crate::protocols::live::actor::{count_verdict, report_to, unix_ms, Ctx};

/// Records pushed to a peer that subscribes, besides this node's own.
const SYNC_RECENT: usize = 64;

/// A lookup's reply: the record, if any valid one was found.
pub type GetReply = oneshot::Sender<Result<Option<SocialRecord>, SwarmError>>;

struct Get {
    key: RecordKey,
    best: Option<SocialRecord>,
    local: Option<SocialRecord>,
    replies: Vec<GetReply>,
}

/// Where a record came from (for events and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The social topic.
    Gossip,
    /// A DHT put.
    Dht,
    /// A DHT lookup's answer.
    Lookup,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Gossip => "social_gossip",
            Via::Dht => "social_dht",
            Via::Lookup => "social_lookup",
        }
    }
}

/// The social protocol's actor (owned by the event loop).
pub struct SocialActor {
    config: SocialConfig,
    policy: SocialPolicy,
    /// Budgets of DHT puts per peer (a subscription push is a burst).
    dht_policy: SocialPolicy,
    gets: HashMap<kad::QueryId, Get>,
    /// The keys of the records this node publishes (pushed again
    /// periodically, never evicted; the records are in the store). A record
    /// about one of their subjects from elsewhere (the user's second node)
    /// joins them.
    own: BTreeSet<RecordKey>,
    /// The keys most recently changed here (pushed to new subscribers).
    recent: VecDeque<RecordKey>,
    last_push: Option<Instant>,
}

fn error_label(e: &RecordError) -> &'static str {
    match e {
        RecordError::ForeignKey => "foreign_key",
        RecordError::Malformed(_) => "malformed",
        RecordError::KeyMismatch { .. } => "key_mismatch",
        RecordError::Forged { .. } => "forged",
        RecordError::WrongSubject => "wrong_subject",
        RecordError::Duplicate => "duplicate_op",
        RecordError::TooManyOps { .. } => "too_many_ops",
        RecordError::Expired { .. } => "expired",
        RecordError::FromFuture { .. } => "future",
        RecordError::NotNewer { .. } => "not_newer",
        RecordError::Equivocation { .. } => "equivocation",
        RecordError::Unchanged => "unchanged",
    }
}

fn held(ctx: &mut Ctx<'_>, key: &RecordKey) -> Option<Vec<u8>> {
    ctx.swarm
        .behaviour_mut()
        .kad
        .store_mut()
        .get(&kad::RecordKey::new(&key.to_bytes()))
        .map(|r| r.value.clone())
}

impl SocialActor {
    /// An actor with `config`'s rates.
    pub fn new(config: SocialConfig) -> Self {
        let dht = SocialConfig {
            peer_burst: (SYNC_RECENT * 2 + 16) as u32,
            subject_burst: u32::MAX,
            subject_rate: f64::MAX,
            ..config.clone()
        };
        SocialActor {
            policy: SocialPolicy::new(config.clone()),
            dht_policy: SocialPolicy::new(dht),
            config,
            gets: HashMap::new(),
            own: BTreeSet::new(),
            recent: VecDeque::new(),
            last_push: None,
        }
    }

    /// Stores `bytes` under `key` in the DHT store (refused when full).
    fn store(ctx: &mut Ctx<'_>, key: &RecordKey, bytes: Vec<u8>) -> Result<(), SwarmError> {
        let record = kad::Record::new(key.to_bytes(), bytes);
        ctx.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .put(record)
            .map_err(|e| SwarmError::SocialStore(e.to_string()))
    }

    fn changed(
        &mut self,
        ctx: &mut Ctx<'_>,
        record: &SocialRecord,
        via: Via,
        from: Option<PeerId>,
    ) {
        let key = record.key();
        // Records put here over the DHT stay with the DHT (lookups find
        // them); what came over the topic or was published here is pushed
        // to new neighbours.
        if via != Via::Dht || from.is_none() {
            self.recent.retain(|k| *k != key);
            self.recent.push_front(key);
            self.recent.truncate(SYNC_RECENT);
        }
        if self.own.iter().any(|k| k.subject == key.subject) {
            self.own.insert(key);
        }
        count_verdict(ctx.metrics, via.label(), "stored");
        ctx.events.emit(Event::SocialRecord {
            record: Box::new(record.clone()),
            from,
        });
    }

    fn refused(
        ctx: &mut Ctx<'_>,
        via: Via,
        from: Option<PeerId>,
        key: Option<RecordKey>,
        e: RecordError,
    ) {
        count_verdict(ctx.metrics, via.label(), error_label(&e));
        debug!(?from, ?key, error = %e, "social record refused");
        ctx.events.emit(Event::SocialRefused {
            from,
            key,
            reason: e,
        });
    }

    /// Publishes a record signed here (or, for a followers index, an
    /// operation signed here): checked like any other, merged with what is
    /// held, stored, put on the DHT and pushed on the social topic. `own`:
    /// a record about this node's user, pushed again periodically.
    /// Returns the record as now held.
    pub fn put(
        &mut self,
        ctx: &mut Ctx<'_>,
        record: SocialRecord,
        own: bool,
    ) -> Result<SocialRecord, SwarmError> {
        let key = record.key();
        check(&key, &record, unix_ms()).map_err(SwarmError::Social)?;
        let held_record = held(ctx, &key).and_then(|h| SocialRecord::decode(&h).ok());
        let kept = match accept_checked(record, held_record.as_ref()) {
            Ok(a) => {
                if Self::store(ctx, &key, a.bytes.clone()).is_err() {
                    // Full: what this node publishes comes before what it
                    // heard; one heard record makes room.
                    self.evict_heard(ctx);
                    Self::store(ctx, &key, a.bytes.clone())?;
                }
                self.changed(ctx, &a.record, Via::Dht, None);
                a.record
            }
            // `Unchanged` is only ever said against a held record.
            Err(RecordError::Unchanged) => match held_record {
                Some(h) => h,
                None => return Err(SwarmError::Social(RecordError::Unchanged)),
            },
            Err(e) => return Err(SwarmError::Social(e)),
        };
        if own {
            self.own.insert(key);
        }
        self.push(ctx, &kept);
        Ok(kept)
    }

    /// Drops one record this node does not publish (the store is full).
    fn evict_heard(&self, ctx: &mut Ctx<'_>) {
        let store = ctx.swarm.behaviour_mut().kad.store_mut();
        let victim = store
            .records()
            .find(|r| RecordKey::from_bytes(r.key.as_ref()).is_none_or(|k| !self.own.contains(&k)))
            .map(|r| r.key.clone());
        if let Some(k) = victim {
            store.remove(&k);
        }
    }

    fn push(&mut self, ctx: &mut Ctx<'_>, record: &SocialRecord) {
        let bytes = record.encode();
        let kad = &mut ctx.swarm.behaviour_mut().kad;
        // Stores locally (already there) and replicates to the closest
        // peers when the routing table has any.
        if let Err(e) = kad.put_record(
            kad::Record::new(record.key().to_bytes(), bytes.clone()),
            Quorum::One,
        ) {
            debug!(error = %e, "record not put on the DHT");
        }
        match ctx
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(SOCIAL_TOPIC), bytes)
        {
            Ok(_) => count_verdict(ctx.metrics, "social_out", "published"),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
            | Err(gossipsub::PublishError::Duplicate) => {
                count_verdict(ctx.metrics, "social_out", "no_peers")
            }
            Err(e) => {
                warn!(error = %e, "cannot publish a social record");
                count_verdict(ctx.metrics, "social_out", "failed");
            }
        }
    }

    /// Looks `key` up: the local store, then the DHT; every record found is
    /// checked; the newest (profile) or the merge (follow sets) is the
    /// answer, and kept here when it is newer than what was held.
    pub fn get(&mut self, ctx: &mut Ctx<'_>, key: RecordKey, reply: GetReply) {
        if let Some(g) = self.gets.values_mut().find(|g| g.key == key) {
            g.replies.push(reply);
            return;
        }
        let local = held(ctx, &key).and_then(|h| SocialRecord::decode(&h).ok());
        let id = ctx
            .swarm
            .behaviour_mut()
            .kad
            .get_record(kad::RecordKey::new(&key.to_bytes()));
        self.gets.insert(
            id,
            Get {
                key,
                best: local.clone(),
                local,
                replies: vec![reply],
            },
        );
    }

    /// The record this node holds under `key`.
    pub fn held_one(&self, ctx: &mut Ctx<'_>, key: &RecordKey) -> Option<SocialRecord> {
        held(ctx, key).and_then(|b| SocialRecord::decode(&b).ok())
    }

    /// The records this node holds of `kind` (at most `limit`).
    pub fn held_records(
        &self,
        ctx: &mut Ctx<'_>,
        kind: RecordKind,
        limit: usize,
    ) -> Vec<SocialRecord> {
        ctx.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .records()
            .filter_map(|r| {
                let k = RecordKey::from_bytes(r.key.as_ref())?;
                (k.kind == kind).then(|| SocialRecord::decode(&r.value).ok())?
            })
            .take(limit)
            .collect()
    }

    /// A Kademlia query progressed (lookups of social records).
    pub fn on_query(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: kad::QueryId,
        result: QueryResult,
        last: bool,
    ) {
        let Some(g) = self.gets.get_mut(&id) else {
            return;
        };
        if let QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(r))) = result {
            if let Some(peer) = r.peer {
                let held = g.best.as_ref().map(|b| b.encode());
                match accept(
                    r.record.key.as_ref(),
                    &r.record.value,
                    held.as_deref(),
                    unix_ms(),
                ) {
                    Ok(a) => {
                        count_verdict(ctx.metrics, "social_lookup", "newer");
                        g.best = Some(a.record);
                    }
                    Err(RecordError::Unchanged) | Err(RecordError::NotNewer { .. }) => {}
                    Err(e) => {
                        let key = g.key;
                        Self::refused(ctx, Via::Lookup, Some(peer), Some(key), e);
                    }
                }
            }
        }
        if !last {
            return;
        }
        let Some(g) = self.gets.remove(&id) else {
            return;
        };
        if let Some(best) = &g.best {
            if g.local.as_ref() != Some(best) {
                // What peers returned is newer: keep it here too (the
                // store merges with what arrived meanwhile).
                let held_now = held(ctx, &g.key);
                if let Ok(a) = accept(
                    &g.key.to_bytes(),
                    &best.encode(),
                    held_now.as_deref(),
                    unix_ms(),
                ) {
                    if Self::store(ctx, &g.key, a.bytes).is_ok() {
                        self.changed(ctx, &a.record, Via::Lookup, None);
                    }
                }
            }
        }
        for r in g.replies {
            let _ = r.send(Ok(g.best.clone()));
        }
    }

    /// An inbound DHT put (Kademlia filters nothing itself).
    pub fn on_kad_put(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        source: PeerId,
        record: kad::Record,
    ) {
        let key = RecordKey::from_bytes(record.key.as_ref());
        if let Err(e) =
            self.dht_policy
                .admit(now, source, key.map(|k| k.subject).unwrap_or_default())
        {
            count_verdict(ctx.metrics, "social_dht", "rate_limited");
            debug!(peer = %source, error = %e, "DHT put over the peer's budget");
            return;
        }
        let held = key.and_then(|k| held(ctx, &k));
        match accept(
            record.key.as_ref(),
            &record.value,
            held.as_deref(),
            unix_ms(),
        ) {
            Ok(a) => {
                let k = a.record.key();
                if let Err(e) = Self::store(ctx, &k, a.bytes) {
                    debug!(error = %e, "record not stored");
                    count_verdict(ctx.metrics, "social_dht", "store_full");
                    return;
                }
                self.changed(ctx, &a.record, Via::Dht, Some(source));
            }
            Err(e) => Self::refused(ctx, Via::Dht, Some(source), key, e),
        }
    }

    /// A message on the social topic: checked, rated, merged; the verdict
    /// goes back to gossipsub.
    pub fn on_gossip(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        source: PeerId,
        msg_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let verdict = match SocialRecord::decode(&message.data) {
            Err(e) => Err(RecordError::Malformed(e)),
            Ok(r) => {
                let key = r.key();
                if let Err(e) = self.policy.admit(now, source, key.subject) {
                    count_verdict(ctx.metrics, "social_gossip", "rate_limited");
                    debug!(peer = %source, %key, error = %e, "social record over a budget");
                    ctx.events
                        .emit(Event::SocialRateLimited { from: source, key });
                    return report_to(ctx, &msg_id, &source, MessageAcceptance::Ignore);
                }
                let held = held(ctx, &key);
                accept(&key.to_bytes(), &message.data, held.as_deref(), unix_ms())
            }
        };
        match verdict {
            Ok(a) => {
                let key = a.record.key();
                if Self::store(ctx, &key, a.bytes).is_err() {
                    count_verdict(ctx.metrics, "social_gossip", "store_full");
                    return report_to(ctx, &msg_id, &source, MessageAcceptance::Ignore);
                }
                self.changed(ctx, &a.record, Via::Gossip, Some(source));
                report_to(ctx, &msg_id, &source, MessageAcceptance::Accept);
            }
            Err(e) => {
                let invalid = e.is_invalid();
                let key = SocialRecord::decode(&message.data).ok().map(|r| r.key());
                Self::refused(ctx, Via::Gossip, Some(source), key, e);
                let a = if invalid {
                    MessageAcceptance::Reject
                } else {
                    MessageAcceptance::Ignore
                };
                report_to(ctx, &msg_id, &source, a);
            }
        }
    }

    /// A peer subscribed to a topic: a new social peer is sent this node's
    /// own records and the ones most recently changed here.
    pub fn on_subscribed(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, topic: &str) {
        if topic != SOCIAL_TOPIC {
            return;
        }
        let mut keys: Vec<RecordKey> = self.own.iter().copied().collect();
        keys.extend(self.recent.iter().filter(|k| !self.own.contains(k)));
        for key in keys {
            let Some(bytes) = held(ctx, &key) else {
                continue;
            };
            ctx.swarm.behaviour_mut().kad.put_record_to(
                kad::Record::new(key.to_bytes(), bytes),
                std::iter::once(peer),
                Quorum::One,
            );
        }
    }

    /// A peer's last connection closed.
    pub fn on_disconnected(&mut self, peer: &PeerId) {
        self.policy.forget_peer(peer);
        self.dht_policy.forget_peer(peer);
    }

    /// Pushes this node's own records again every
    /// [`SocialConfig::republish`] (profiles are re-signed by the node
    /// before they expire; this keeps late joiners and lossy links served).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        if self
            .last_push
            .is_some_and(|t| now.saturating_duration_since(t) < self.config.republish)
        {
            return;
        }
        self.last_push = Some(now);
        let own: Vec<RecordKey> = self.own.iter().copied().collect();
        for key in own {
            if let Some(r) = self.held_one(ctx, &key) {
                self.push(ctx, &r);
            }
        }
    }
}
