//! A token bucket: the one rate limiter the protocol cores share (peers'
//! announcements, creators' VOD announcements, new chat keys).

use std::time::Instant;

/// Up to `burst` tokens, refilled at a rate per second.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens at `now`.
    pub(crate) fn full(burst: u32, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Whether the bucket would be full again at `now` (so forgetting it
    /// changes nothing).
    pub(crate) fn would_be_full(&self, now: Instant, burst: u32, rate: f64) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        self.tokens + refill >= f64::from(burst)
    }

    /// Refills at `rate` per second up to `burst`, then takes one token if
    /// there is one.
    pub(crate) fn take(&mut self, now: Instant, burst: u32, rate: f64) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
