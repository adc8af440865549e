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
//! VOD announcements go through the same per-peer bucket, then:
//!
//! - the VODs seen lately, in an LRU of at most
//!   [`AnnounceConfig::max_tracked`] roots (a VOD re-announced sooner than
//!   [`AnnounceConfig::vod_min_interval`] is dropped);
//! - a token bucket per creator for VODs not seen before
//!   ([`AnnounceConfig::vod_creator_burst`], then
//!   [`AnnounceConfig::vod_creator_rate`]): a key that announces VOD after
//!   VOD has the excess dropped, whoever forwards it.
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
use super::wire::{SignedAnnouncement, SignedVodAnnouncement, StreamId};
use crate::protocols::bucket::Bucket;

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
    /// Shortest interval between two forwarded announcements of one VOD
    /// (creators re-announce theirs for nodes that join later). Default
    /// 60 s.
    pub vod_min_interval: Duration,
    /// New VODs one creator may announce in a burst. Default 20.
    pub vod_creator_burst: u32,
    /// New VODs per second one creator may announce on average. Default
    /// one a minute.
    pub vod_creator_rate: f64,
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
            vod_min_interval: Duration::from_secs(60),
            vod_creator_burst: 20,
            vod_creator_rate: 1.0 / 60.0,
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
    /// VODs (creator, root) forwarded lately, and when: by creator too,
    /// so one key re-announcing another's root cannot hold the real
    /// creator's announcements back.
    vods: LruCache<([u8; 32], String), Instant>,
    /// New-VOD buckets per creator.
    vod_creators: LruCache<[u8; 32], Bucket>,
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
            vods: LruCache::new(cap),
            vod_creators: LruCache::new(cap),
        }
    }

    /// VODs tracked now.
    pub fn tracked_vods(&self) -> usize {
        self.vods.len()
    }

    /// Decides on a VOD announcement `source` forwarded; `wall_ms` is this
    /// node's clock (unix ms).
    pub fn on_vod(
        &mut self,
        now: Instant,
        wall_ms: u64,
        source: PeerId,
        v: &SignedVodAnnouncement,
    ) -> Verdict {
        if !self.take_token(now, source) {
            return Verdict::Ignore(IgnoreReason::RateLimited);
        }
        if let Err(e) = v.verify() {
            return Verdict::Reject(Rejection::Invalid(e));
        }
        self.record_vod(now, wall_ms, v)
    }

    /// Records a VOD announcement this node made itself.
    pub fn on_local_vod(&mut self, now: Instant, v: &SignedVodAnnouncement) {
        self.vods.put(vod_key(v), now);
    }

    fn record_vod(&mut self, now: Instant, wall_ms: u64, v: &SignedVodAnnouncement) -> Verdict {
        let skew = self.config.max_clock_skew.as_millis() as u64;
        if v.vod.created_ms > wall_ms.saturating_add(skew) {
            return Verdict::Ignore(IgnoreReason::FromFuture);
        }
        if let Some(at) = self.vods.get(&vod_key(v)) {
            if now.duration_since(*at) < self.config.vod_min_interval {
                return Verdict::Ignore(IgnoreReason::TooFrequent);
            }
        } else {
            let (burst, rate) = (self.config.vod_creator_burst, self.config.vod_creator_rate);
            let creator = v.vod.stream.creator;
            if self.vod_creators.get(&creator).is_none() {
                self.vod_creators.put(creator, Bucket::full(burst, now));
            }
            let Some(b) = self.vod_creators.get_mut(&creator) else {
                return Verdict::Ignore(IgnoreReason::CreatorLimit);
            };
            if !b.take(now, burst, rate) {
                return Verdict::Ignore(IgnoreReason::CreatorLimit);
            }
        }
        self.vods.put(vod_key(v), now);
        Verdict::Accept
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
        let (burst, rate) = (self.config.source_burst, self.config.source_rate);
        self.sources
            .entry(source)
            .or_insert_with(|| Bucket::full(burst, now))
            .take(now, burst, rate)
    }
}

fn vod_key(v: &SignedVodAnnouncement) -> ([u8; 32], String) {
    (v.vod.stream.creator, v.vod.root.clone())
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

    fn vod(key: &SigningKey, n: u64, created: u64) -> SignedVodAnnouncement {
        // A distinct canonical root per key and n.
        let mut digest = [n as u8; 32];
        digest[31] = key.to_bytes()[0];
        let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
        crate::protocols::live::wire::VodAnnouncement {
            stream: StreamId::new(key.verifying_key().to_bytes(), "s").unwrap(),
            root: cid::Cid::new_v1(0x70, mh).to_string(),
            title: String::new(),
            duration_ms: 1_000,
            segments: 1,
            bytes: 10,
            created_ms: created,
            price_per_sec: 0,
        }
        .sign(key)
        .unwrap()
    }

    #[test]
    fn vod_announcements_are_checked_deduplicated_and_rate_limited_per_creator() {
        let cfg = AnnounceConfig {
            vod_creator_burst: 3,
            vod_creator_rate: 1.0,
            ..AnnounceConfig::default()
        };
        let mut p = AnnouncePolicy::new(cfg);
        let t0 = Instant::now();
        let key = SigningKey::from_bytes(&[6; 32]);
        let src = PeerId::random();
        assert_eq!(p.on_vod(t0, WALL, src, &vod(&key, 0, 100)), Verdict::Accept);
        // The same VOD again soon: dropped; a minute later: forwarded.
        assert_eq!(
            p.on_vod(t0, WALL, src, &vod(&key, 0, 100)),
            Verdict::Ignore(IgnoreReason::TooFrequent)
        );
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            p.on_vod(later, WALL, src, &vod(&key, 0, 100)),
            Verdict::Accept
        );
        // One creator's new VODs: a burst of 3 (refilled by now), then one
        // a second.
        for n in 1..=3 {
            assert_eq!(
                p.on_vod(later, WALL, src, &vod(&key, n, 100)),
                Verdict::Accept
            );
        }
        assert_eq!(
            p.on_vod(later, WALL, src, &vod(&key, 4, 100)),
            Verdict::Ignore(IgnoreReason::CreatorLimit)
        );
        // ... whoever forwards them; another creator is not held back.
        assert_eq!(
            p.on_vod(later, WALL, PeerId::random(), &vod(&key, 4, 100)),
            Verdict::Ignore(IgnoreReason::CreatorLimit)
        );
        let other = SigningKey::from_bytes(&[7; 32]);
        assert_eq!(
            p.on_vod(later, WALL, src, &vod(&other, 4, 100)),
            Verdict::Accept
        );
        let after = later + Duration::from_secs(1);
        assert_eq!(
            p.on_vod(after, WALL, src, &vod(&key, 4, 100)),
            Verdict::Accept
        );
        // Another key announcing the same root does not hold the real
        // creator's next round back.
        let squatter = SigningKey::from_bytes(&[8; 32]);
        let mut claim = vod(&key, 5, 100).vod;
        claim.stream = StreamId::new(squatter.verifying_key().to_bytes(), "s").unwrap();
        let claim = claim.sign(&squatter).unwrap();
        assert_eq!(p.on_vod(after, WALL, src, &claim), Verdict::Accept);
        let real = vod(&key, 5, 100);
        assert_eq!(real.vod.root, claim.vod.root);
        let again = after + Duration::from_secs(1); // the creator's next token
        assert_eq!(p.on_vod(again, WALL, src, &real), Verdict::Accept);
        // From the future, forged: dropped, rejected, nothing recorded.
        let n = p.tracked_vods();
        assert_eq!(
            p.on_vod(after, WALL, src, &vod(&other, 9, WALL + 301_000)),
            Verdict::Ignore(IgnoreReason::FromFuture)
        );
        let mut forged = vod(&other, 10, 100);
        forged.vod.bytes += 1;
        assert!(matches!(
            p.on_vod(after, WALL, src, &forged),
            Verdict::Reject(Rejection::Invalid(_))
        ));
        assert_eq!(p.tracked_vods(), n);
        // The per-peer bucket covers VODs too.
        let flood = PeerId::random();
        let mut dropped = 0;
        for i in 0..300u64 {
            let k = SigningKey::from_bytes(&[(i % 200) as u8 + 20; 32]);
            if p.on_vod(after, WALL, flood, &vod(&k, i, 100))
                == Verdict::Ignore(IgnoreReason::RateLimited)
            {
                dropped += 1;
            }
        }
        assert_eq!(dropped, 100, "a burst of 200 from one peer");
    }
}
