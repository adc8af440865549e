//! The announcement policy: an IO-less core that decides, for every stream
//! announcement heard on the global topic, whether to forward it (and
//! deliver it to the node) or to drop it, and why.
//!
//! Anyone can create a key and sign announcements, so a valid signature
//! says nothing about whether an announcement deserves to travel. A flood
//! of fresh keys must neither fill this node's memory nor be relayed to the
//! rest of the mesh. The policy keeps, all bounded:
//!
//! - a token bucket per forwarding peer (a peer that sends announcements
//!   faster than honest relays ever forward them has the excess dropped,
//!   and nothing of it is relayed);
//! - the newest announcement seen per stream, in an LRU of at most
//!   [`AnnounceConfig::max_tracked`] streams (replays of older
//!   announcements and re-announcements sooner than
//!   [`AnnounceConfig::min_interval`] are dropped);
//! - how many tracked streams each creator has (at most
//!   [`AnnounceConfig::max_streams_per_creator`]).
//!
//! Dropped announcements are `Ignore`d, not `Reject`ed: an honest relay
//! may forward a burst it did not cause. Forged or malformed ones are
//! rejected (gossipsub P4 penalty).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use lru::LruCache;

use super::core::{IgnoreReason, Rejection, Verdict};
use super::wire::{SignedAnnouncement, StreamId};

/// Tunables of the announcement policy.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnounceConfig {
    /// Announcements a peer may send in a burst. Default 200.
    pub source_burst: u32,
    /// Announcements per second a peer may send on average. Default 50:
    /// 250 live streams re-announced every 5 s, all through one peer.
    pub source_rate: f64,
    /// Shortest interval between two announcements of one stream that are
    /// both forwarded, unless the second changes its state (ended, started
    /// again). Default 1 s.
    pub min_interval: Duration,
    /// Streams tracked at once (least recently announced evicted).
    /// Default 4096.
    pub max_tracked: usize,
    /// Tracked streams per creator key. Default 8.
    pub max_streams_per_creator: usize,
    /// Announcements signed this far ahead of this node's clock are
    /// dropped. Default 5 min.
    pub max_clock_skew: Duration,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            source_burst: 200,
            source_rate: 50.0,
            min_interval: Duration::from_secs(1),
            max_tracked: 4096,
            max_streams_per_creator: 8,
            max_clock_skew: Duration::from_secs(300),
        }
    }
}

/// What the policy decided, beyond the gossipsub verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceDecision {
    /// Forward (and deliver), drop, or reject.
    pub verdict: Verdict,
    /// For an accepted announcement: the stream's state changed (new,
    /// ended, or started again) rather than a periodic repeat.
    pub changed: bool,
}

impl AnnounceDecision {
    fn drop(reason: IgnoreReason) -> Self {
        AnnounceDecision {
            verdict: Verdict::Ignore(reason),
            changed: false,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Clone, Copy)]
struct Seen {
    updated_at_ms: u64,
    started_at_ms: u64,
    ended: bool,
    accepted_at: Instant,
}

/// The announcement policy of one node.
pub struct AnnouncePolicy {
    config: AnnounceConfig,
    sources: HashMap<PeerId, Bucket>,
    streams: LruCache<StreamId, Seen>,
    per_creator: HashMap<[u8; 32], usize>,
}

impl AnnouncePolicy {
    /// A policy with nothing tracked.
    pub fn new(config: AnnounceConfig) -> Self {
        let cap = NonZeroUsize::new(config.max_tracked.max(1)).unwrap_or(NonZeroUsize::MIN);
        AnnouncePolicy {
            config,
            sources: HashMap::new(),
            streams: LruCache::new(cap),
            per_creator: HashMap::new(),
        }
    }

    /// Streams tracked now.
    pub fn tracked(&self) -> usize {
        self.streams.len()
    }

    /// Peers with a rate bucket now.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }

    /// A peer disconnected: forget its bucket (reconnecting does not refill
    /// it faster than waiting would, since a new bucket starts full but the
    /// connection limits bound how often that can happen).
    pub fn peer_left(&mut self, peer: &PeerId) {
        self.sources.remove(peer);
    }

    /// Decides on an announcement `source` forwarded; `wall_ms` is this
    /// node's clock (unix ms), for the skew check.
    pub fn on_announcement(
        &mut self,
        now: Instant,
        wall_ms: u64,
        source: PeerId,
        a: &SignedAnnouncement,
    ) -> AnnounceDecision {
        // Cheap checks first: a flood costs a hash-map lookup per message,
        // not a signature verification.
        if !self.take_token(now, source) {
            return AnnounceDecision::drop(IgnoreReason::RateLimited);
        }
        if let Err(e) = a.verify() {
            return AnnounceDecision {
                verdict: Verdict::Reject(Rejection::Invalid(e)),
                changed: false,
            };
        }
        self.record(now, wall_ms, a)
    }

    /// Records an announcement this node made itself (so echoes of it are
    /// recognised as repeats).
    pub fn on_local(&mut self, now: Instant, wall_ms: u64, a: &SignedAnnouncement) {
        let _ = self.record(now, wall_ms, a);
    }

    fn record(&mut self, now: Instant, wall_ms: u64, a: &SignedAnnouncement) -> AnnounceDecision {
        let ann = &a.announcement;
        let skew = self.config.max_clock_skew.as_millis() as u64;
        if ann.updated_at_ms > wall_ms.saturating_add(skew) {
            return AnnounceDecision::drop(IgnoreReason::FromFuture);
        }
        let seen = Seen {
            updated_at_ms: ann.updated_at_ms,
            started_at_ms: ann.started_at_ms,
            ended: ann.ended,
            accepted_at: now,
        };
        if let Some(old) = self.streams.get_mut(&ann.stream) {
            if ann.updated_at_ms <= old.updated_at_ms {
                return AnnounceDecision::drop(IgnoreReason::Outdated);
            }
            let changed = ann.ended != old.ended || ann.started_at_ms != old.started_at_ms;
            if !changed && now.duration_since(old.accepted_at) < self.config.min_interval {
                return AnnounceDecision::drop(IgnoreReason::TooFrequent);
            }
            *old = seen;
            return AnnounceDecision {
                verdict: Verdict::Accept,
                changed,
            };
        }
        let creator = ann.stream.creator;
        if self.per_creator.get(&creator).copied().unwrap_or(0)
            >= self.config.max_streams_per_creator
        {
            return AnnounceDecision::drop(IgnoreReason::CreatorLimit);
        }
        if let Some((evicted, _)) = self.streams.push(ann.stream.clone(), seen) {
            if evicted != ann.stream {
                self.forget_creator(&evicted.creator);
            }
        }
        *self.per_creator.entry(creator).or_insert(0) += 1;
        AnnounceDecision {
            verdict: Verdict::Accept,
            changed: true,
        }
    }

    fn forget_creator(&mut self, creator: &[u8; 32]) {
        if let Some(n) = self.per_creator.get_mut(creator) {
            *n -= 1;
            if *n == 0 {
                self.per_creator.remove(creator);
            }
        }
    }

    fn take_token(&mut self, now: Instant, source: PeerId) -> bool {
        let cfg = &self.config;
        let b = self.sources.entry(source).or_insert(Bucket {
            tokens: f64::from(cfg.source_burst),
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * cfg.source_rate;
        b.tokens = (b.tokens + refill).min(f64::from(cfg.source_burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::live::wire::Announcement;
    use ed25519_dalek::SigningKey;

    fn ann(key: &SigningKey, name: &str, updated: u64, ended: bool) -> SignedAnnouncement {
        Announcement {
            stream: StreamId::new(key.verifying_key().to_bytes(), name).unwrap(),
            title: String::new(),
            tags: vec![],
            codec: "mpegts".into(),
            started_at_ms: 1,
            updated_at_ms: updated,
            last_seq: None,
            ended,
            offer: None,
        }
        .sign(key)
        .unwrap()
    }

    const WALL: u64 = 1_000_000;

    #[test]
    fn fresh_keys_cannot_flood_through_one_peer() {
        let t0 = Instant::now();
        let mut p = AnnouncePolicy::new(AnnounceConfig::default());
        let flooder = PeerId::random();
        let mut accepted = 0;
        for i in 0..10_000u32 {
            let key = SigningKey::from_bytes(&[(i % 251) as u8 + 1; 32]);
            let name = format!("s{i}");
            let d = p.on_announcement(t0, WALL, flooder, &ann(&key, &name, 10, false));
            if d.verdict == Verdict::Accept {
                accepted += 1;
            } else {
                assert!(matches!(
                    d.verdict,
                    Verdict::Ignore(IgnoreReason::RateLimited | IgnoreReason::CreatorLimit)
                ));
            }
        }
        assert!(accepted <= 200, "{accepted} accepted in one instant");
        // An honest peer is unaffected by the flooder's bucket.
        let honest = SigningKey::from_bytes(&[255; 32]);
        let d = p.on_announcement(t0, WALL, PeerId::random(), &ann(&honest, "live", 10, false));
        assert_eq!(d.verdict, Verdict::Accept);
        // The bucket refills at the configured rate.
        let later = t0 + Duration::from_secs(1);
        let mut more = 0;
        for i in 0..1000u32 {
            let key = SigningKey::from_bytes(&[(i % 200) as u8 + 1; 32]);
            let d = p.on_announcement(
                later,
                WALL,
                flooder,
                &ann(&key, &format!("x{i}"), 10, false),
            );
            more += usize::from(d.verdict == Verdict::Accept);
        }
        assert!(more <= 51, "{more} after 1 s");
    }

    #[test]
    fn tracked_streams_and_creators_are_bounded() {
        let t0 = Instant::now();
        let config = AnnounceConfig {
            max_tracked: 100,
            source_burst: 100_000,
            ..AnnounceConfig::default()
        };
        let mut p = AnnouncePolicy::new(config);
        for i in 0..5_000u32 {
            let key = SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]);
            p.on_announcement(
                t0,
                WALL,
                PeerId::random(),
                &ann(&key, &format!("s{i}"), 10, false),
            );
            assert!(p.tracked() <= 100);
            assert!(p.per_creator.values().all(|n| *n <= 8));
            assert!(p.per_creator.len() <= 100);
        }
        // One creator with many streams hits its own limit.
        let key = SigningKey::from_bytes(&[9; 32]);
        let mut p = AnnouncePolicy::new(AnnounceConfig::default());
        let verdicts: Vec<Verdict> = (0..10)
            .map(|i| {
                p.on_announcement(
                    t0,
                    WALL,
                    PeerId::random(),
                    &ann(&key, &format!("s{i}"), 10, false),
                )
                .verdict
            })
            .collect();
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Accept).count(),
            8
        );
        assert_eq!(verdicts[9], Verdict::Ignore(IgnoreReason::CreatorLimit));
    }

    #[test]
    fn replays_repeats_and_future_announcements_are_dropped() {
        let t0 = Instant::now();
        let key = SigningKey::from_bytes(&[3; 32]);
        let src = PeerId::random();
        let mut p = AnnouncePolicy::new(AnnounceConfig::default());
        let first = p.on_announcement(t0, WALL, src, &ann(&key, "s", 100, false));
        assert_eq!(
            first,
            AnnounceDecision {
                verdict: Verdict::Accept,
                changed: true
            }
        );
        // A replay of the same or an older one.
        let d = p.on_announcement(t0, WALL, src, &ann(&key, "s", 100, false));
        assert_eq!(d.verdict, Verdict::Ignore(IgnoreReason::Outdated));
        // A newer one too soon.
        let d = p.on_announcement(t0, WALL, src, &ann(&key, "s", 200, false));
        assert_eq!(d.verdict, Verdict::Ignore(IgnoreReason::TooFrequent));
        // ... unless it changes the state: the end travels at once.
        let d = p.on_announcement(t0, WALL, src, &ann(&key, "s", 300, true));
        assert_eq!(
            d,
            AnnounceDecision {
                verdict: Verdict::Accept,
                changed: true
            }
        );
        // A later repeat is forwarded, as a repeat.
        let d = p.on_announcement(
            t0 + Duration::from_secs(2),
            WALL,
            src,
            &ann(&key, "s", 400, true),
        );
        assert_eq!(
            d,
            AnnounceDecision {
                verdict: Verdict::Accept,
                changed: false
            }
        );
        let d = p.on_announcement(t0, WALL, src, &ann(&key, "f", WALL + 301_000, false));
        assert_eq!(d.verdict, Verdict::Ignore(IgnoreReason::FromFuture));
    }

    #[test]
    fn forged_announcement_is_rejected() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut a = ann(&key, "s", 100, false);
        a.announcement.title = "tampered".into();
        let mut p = AnnouncePolicy::new(AnnounceConfig::default());
        let d = p.on_announcement(Instant::now(), WALL, PeerId::random(), &a);
        assert!(matches!(d.verdict, Verdict::Reject(Rejection::Invalid(_))));
        assert_eq!(p.tracked(), 0, "nothing recorded");
    }
}
