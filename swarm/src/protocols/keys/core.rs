//! The key server's policy, IO-less: which viewer gets which epoch key,
//! against what payment.
//!
//! **The rule.** A viewer (one payment channel) may hold at most one epoch
//! it has not paid for. Before it gets its `n+1`-th distinct epoch key,
//! its vouchers must pay `n · epoch_secs · price`: every epoch it already
//! has, in full. So the first key is free (one epoch of credit, what lets
//! playback start before any money moved), and a viewer that stops paying
//! gets at most one more epoch. A key it already has is given again for
//! free (a lost response, a restarted player).
//!
//! Voucher checks (signature, chain, payee, channel, amounts) are the
//! caller's, with `vilokanam_chain::Payee` in the pallet's order; this core
//! only sees the amount the viewer's best voucher pays. That split is also
//! what delegation needs: a node the creator names can run the same core
//! with the stream's secret, and forward the best vouchers to the payee.
//!
//! State is bounded: streams are added by the creator's node only; viewers
//! are kept per (stream, channel) up to `max_viewers`, least recently seen
//! first out. A viewer evicted and back starts over with one epoch of
//! credit; each channel costs its payer an on-chain deposit and fee, far
//! more than an epoch, so eviction cannot be farmed for free content.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::time::Instant;

use ed25519_dalek::VerifyingKey;
use lru::LruCache;

use super::paywall::{seal_key, EpochKey, SealedKey, StreamSecret};
use super::wire::KeyRefusal;
use crate::protocols::live::wire::StreamId;

/// How many epochs behind the current one keys are still served (a viewer
/// a little behind live), at least; and how many ahead (prefetch).
pub const EPOCHS_BEHIND: u64 = 2;
/// Keys are also served for every epoch that started in the last this
/// many seconds: a player joining a live playlist starts a few segments
/// behind the live edge, which with short epochs is more than
/// [`EPOCHS_BEHIND`] epochs back. (Which epochs a viewer buys does not
/// change what it pays: every distinct key counts.)
pub const SECS_BEHIND: u64 = 12;
/// See [`EPOCHS_BEHIND`].
pub const EPOCHS_AHEAD: u64 = 1;
/// Epochs remembered per viewer as already given (re-given for free).
const REMEMBERED: usize = 4;

/// Limits of the key server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyServerConfig {
    /// Most viewers (channels, over all streams) tracked at once.
    pub max_viewers: NonZeroUsize,
}

impl Default for KeyServerConfig {
    fn default() -> Self {
        KeyServerConfig {
            max_viewers: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// What a paid stream charges, as its signed offer states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pricing {
    /// Price of one second, in planck.
    pub price_per_sec: u128,
    /// Length of an epoch in seconds.
    pub epoch_secs: u32,
}

impl Pricing {
    /// What `epochs` whole epochs cost (saturating: no deposit is that large).
    pub fn cost_of(&self, epochs: u64) -> u128 {
        self.price_per_sec
            .saturating_mul(u128::from(self.epoch_secs))
            .saturating_mul(u128::from(epochs))
    }
}

struct PaidStream {
    secret: StreamSecret,
    pricing: Pricing,
    current: u64,
    /// Its recording is a VOD: every past epoch is served.
    archive: bool,
}

struct Viewer {
    /// Distinct epochs given so far.
    given: u64,
    /// The latest epochs given (re-given free).
    recent: BTreeSet<u64>,
    /// Best amount paid, as the caller checked it.
    paid: u128,
}

/// A key given to a viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Its epoch.
    pub epoch: u64,
    /// The key, sealed to the viewer's voucher key.
    pub key: SealedKey,
    /// Whether this viewer had it already.
    pub repeat: bool,
}

/// One key request, as the caller checked it.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// The paid stream.
    pub stream: &'a StreamId,
    /// The viewer's channel.
    pub channel: u64,
    /// The channel's voucher key (what the key is sealed to).
    pub viewer: &'a VerifyingKey,
    /// The epoch wanted.
    pub epoch: u64,
    /// What the viewer's best voucher pays (checked by the caller).
    pub paid: u128,
}

/// The creator-side policy of the paywall.
pub struct KeyServer {
    streams: HashMap<StreamId, PaidStream>,
    viewers: LruCache<(StreamId, u64), (Viewer, Instant)>,
}

impl KeyServer {
    /// An empty key server.
    pub fn new(config: KeyServerConfig) -> Self {
        KeyServer {
            streams: HashMap::new(),
            viewers: LruCache::new(config.max_viewers),
        }
    }

    /// Serves keys of a paid stream this node publishes.
    pub fn add_stream(&mut self, stream: StreamId, secret: StreamSecret, pricing: Pricing) {
        self.streams.insert(
            stream,
            PaidStream {
                secret,
                pricing,
                current: 0,
                archive: false,
            },
        );
    }

    /// Serves every epoch up to the current one (and [`EPOCHS_AHEAD`]),
    /// not only the live window: the stream's VOD is watched from any
    /// point. The payment rule is the same (each distinct key is paid for,
    /// one epoch of credit), so a viewer that seeks pays for what it opens.
    pub fn set_archive(&mut self, stream: &StreamId, archive: bool) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.archive = archive;
        }
    }

    /// Stops serving a stream and forgets its viewers.
    pub fn remove_stream(&mut self, stream: &StreamId) {
        self.streams.remove(stream);
        let gone: Vec<_> = self
            .viewers
            .iter()
            .filter(|((s, _), _)| s == stream)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.viewers.pop(&k);
        }
    }

    /// The publisher reached `epoch` (never moves back).
    pub fn advance(&mut self, stream: &StreamId, epoch: u64) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.current = s.current.max(epoch);
        }
    }

    /// The key the publisher encrypts `epoch` with.
    pub fn epoch_key(&self, stream: &StreamId, epoch: u64) -> Option<EpochKey> {
        self.streams
            .get(stream)
            .map(|s| s.secret.epoch_key(stream, epoch))
    }

    /// Viewers tracked now.
    pub fn viewers(&self) -> usize {
        self.viewers.len()
    }

    /// Decides a key request. `ephemeral` is 32 fresh random bytes for
    /// sealing.
    pub fn grant(
        &mut self,
        now: Instant,
        ask: Ask<'_>,
        ephemeral: [u8; 32],
    ) -> Result<Grant, KeyRefusal> {
        let Ask {
            stream,
            channel,
            viewer,
            epoch,
            paid,
        } = ask;
        let s = self.streams.get(stream).ok_or(KeyRefusal::NotServed)?;
        let behind =
            EPOCHS_BEHIND.max(SECS_BEHIND.div_ceil(u64::from(s.pricing.epoch_secs.max(1))));
        let first = if s.archive {
            0
        } else {
            s.current.saturating_sub(behind)
        };
        let last = s.current.saturating_add(EPOCHS_AHEAD);
        if epoch < first || epoch > last {
            return Err(KeyRefusal::EpochOutOfRange { epoch, first, last });
        }
        let pricing = s.pricing;
        let key = s.secret.epoch_key(stream, epoch);
        let id = (stream.clone(), channel);
        let (v, seen) = match self.viewers.get_mut(&id) {
            Some(v) => v,
            None => {
                self.viewers.put(
                    id.clone(),
                    (
                        Viewer {
                            given: 0,
                            recent: BTreeSet::new(),
                            paid: 0,
                        },
                        now,
                    ),
                );
                self.viewers.get_mut(&id).ok_or(KeyRefusal::Busy)?
            }
        };
        *seen = now;
        v.paid = v.paid.max(paid);
        let repeat = v.recent.contains(&epoch);
        if !repeat {
            let required = pricing.cost_of(v.given);
            if v.paid < required {
                return Err(KeyRefusal::Unpaid {
                    required,
                    paid: v.paid,
                });
            }
            v.given += 1;
            v.recent.insert(epoch);
            while v.recent.len() > REMEMBERED {
                v.recent.pop_first();
            }
        }
        Ok(Grant {
            epoch,
            key: seal_key(&key, viewer, stream, epoch, ephemeral),
            repeat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::keys::paywall::open_key;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    const PRICE: u128 = 2_000_000; // 2 µTICK/s
    const EPOCH: u32 = 6;

    fn server(max: usize) -> (KeyServer, StreamId) {
        let mut k = KeyServer::new(KeyServerConfig {
            max_viewers: NonZeroUsize::new(max).unwrap(),
        });
        let s = StreamId::new([1; 32], "paid").unwrap();
        k.add_stream(
            s.clone(),
            StreamSecret::from_bytes([2; 32]),
            Pricing {
                price_per_sec: PRICE,
                epoch_secs: EPOCH,
            },
        );
        (k, s)
    }

    fn ask<'a>(
        stream: &'a StreamId,
        channel: u64,
        viewer: &'a VerifyingKey,
        epoch: u64,
        paid: u128,
    ) -> Ask<'a> {
        Ask {
            stream,
            channel,
            viewer,
            epoch,
            paid,
        }
    }

    fn viewer() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    #[test]
    fn one_epoch_of_credit_then_every_epoch_must_be_paid() {
        let (mut k, s) = server(10);
        let now = Instant::now();
        let vk = viewer().verifying_key();
        let per_epoch = PRICE * u128::from(EPOCH);
        // The first key is free.
        let g = k.grant(now, ask(&s, 7, &vk, 0, 0), [9; 32]).unwrap();
        let key = open_key(&g.key, &viewer(), &s, 0).unwrap();
        assert_eq!(Some(key), k.epoch_key(&s, 0));
        // The next needs the first paid.
        k.advance(&s, 1);
        assert_eq!(
            k.grant(now, ask(&s, 7, &vk, 1, per_epoch - 1), [9; 32]),
            Err(KeyRefusal::Unpaid {
                required: per_epoch,
                paid: per_epoch - 1
            })
        );
        assert!(k.grant(now, ask(&s, 7, &vk, 1, per_epoch), [9; 32]).is_ok());
        // A key it has is given again, free; a new one needs two epochs paid.
        let again = k.grant(now, ask(&s, 7, &vk, 1, 0), [9; 32]).unwrap();
        assert!(again.repeat);
        k.advance(&s, 2);
        assert!(matches!(
            k.grant(now, ask(&s, 7, &vk, 2, per_epoch), [9; 32]),
            Err(KeyRefusal::Unpaid { .. })
        ));
        assert!(k
            .grant(now, ask(&s, 7, &vk, 2, 2 * per_epoch), [9; 32])
            .is_ok());
    }

    #[test]
    fn an_archived_stream_sells_any_past_epoch_under_the_same_rule() {
        let (mut k, s) = server(10);
        let now = Instant::now();
        let vk = viewer().verifying_key();
        let per_epoch = PRICE * u128::from(EPOCH);
        k.advance(&s, 1_000);
        k.set_archive(&s, true);
        // The first key is credit, from the start of the recording.
        assert!(k.grant(now, ask(&s, 1, &vk, 3, 0), [1; 32]).is_ok());
        // The next distinct one, wherever the viewer seeks, needs the
        // first paid in full.
        assert_eq!(
            k.grant(now, ask(&s, 1, &vk, 500, per_epoch - 1), [1; 32]),
            Err(KeyRefusal::Unpaid {
                required: per_epoch,
                paid: per_epoch - 1
            })
        );
        assert!(k
            .grant(now, ask(&s, 1, &vk, 500, per_epoch), [1; 32])
            .is_ok());
        // Still nothing ahead of now.
        assert!(matches!(
            k.grant(now, ask(&s, 1, &vk, 1_002, 9 * per_epoch), [1; 32]),
            Err(KeyRefusal::EpochOutOfRange {
                first: 0,
                last: 1_001,
                ..
            })
        ));
        // Back to live: the window again.
        k.set_archive(&s, false);
        assert!(matches!(
            k.grant(now, ask(&s, 1, &vk, 4, 9 * per_epoch), [1; 32]),
            Err(KeyRefusal::EpochOutOfRange { .. })
        ));
    }

    #[test]
    fn epochs_outside_the_window_and_unknown_streams_are_refused() {
        let (mut k, s) = server(10);
        let now = Instant::now();
        let vk = viewer().verifying_key();
        k.advance(&s, 10);
        assert_eq!(
            k.grant(now, ask(&s, 1, &vk, 12, 0), [0; 32]),
            Err(KeyRefusal::EpochOutOfRange {
                epoch: 12,
                first: 8,
                last: 11
            })
        );
        assert!(matches!(
            k.grant(now, ask(&s, 1, &vk, 7, 0), [0; 32]),
            Err(KeyRefusal::EpochOutOfRange { .. })
        ));
        // With 1 s epochs the window reaches 12 s back.
        let short = StreamId::new([1; 32], "short").unwrap();
        k.add_stream(
            short.clone(),
            StreamSecret::from_bytes([3; 32]),
            Pricing {
                price_per_sec: PRICE,
                epoch_secs: 1,
            },
        );
        k.advance(&short, 100);
        assert!(k.grant(now, ask(&short, 2, &vk, 88, 0), [0; 32]).is_ok());
        assert_eq!(
            k.grant(now, ask(&short, 3, &vk, 87, 0), [0; 32]),
            Err(KeyRefusal::EpochOutOfRange {
                epoch: 87,
                first: 88,
                last: 101
            })
        );
        let other = StreamId::new([1; 32], "free").unwrap();
        assert_eq!(
            k.grant(now, ask(&other, 1, &vk, 0, 0), [0; 32]),
            Err(KeyRefusal::NotServed)
        );
        k.remove_stream(&s);
        k.remove_stream(&short);
        assert_eq!(
            k.grant(now, ask(&s, 1, &vk, 10, 0), [0; 32]),
            Err(KeyRefusal::NotServed)
        );
        assert_eq!(k.viewers(), 0);
    }

    #[test]
    fn viewers_are_bounded_least_recently_seen_first_out() {
        let (mut k, s) = server(3);
        let now = Instant::now();
        let vk = viewer().verifying_key();
        for ch in 0..10 {
            k.grant(now, ask(&s, ch, &vk, 0, 0), [0; 32]).unwrap();
        }
        assert_eq!(k.viewers(), 3);
    }

    proptest! {
        /// Whatever a viewer pays and asks for, the keys it holds never
        /// exceed what it paid for by more than one epoch.
        #[test]
        fn a_viewer_is_never_more_than_one_epoch_ahead_of_its_payments(
            steps in proptest::collection::vec((0u64..3, 0u128..5), 1..60),
        ) {
            let (mut k, s) = server(10);
            let now = Instant::now();
            let vk = viewer().verifying_key();
            let per_epoch = PRICE * u128::from(EPOCH);
            let mut paid = 0u128;
            let mut current = 0u64;
            let mut held = BTreeSet::new();
            for (advance, pay_epochs) in steps {
                current += advance;
                k.advance(&s, current);
                paid += pay_epochs * per_epoch / 2;
                for e in current.saturating_sub(EPOCHS_BEHIND)..=current + EPOCHS_AHEAD {
                    if k.grant(now, ask(&s, 1, &vk, e, paid), [0; 32]).is_ok() {
                        held.insert(e);
                    }
                }
                let held_n = held.len() as u128;
                prop_assert!(held_n * per_epoch <= paid + per_epoch,
                    "holds {} epochs, paid {}", held_n, paid);
            }
        }
    }
}
