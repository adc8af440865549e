//! The announcer: re-announces every live published stream each
//! `announce_interval_secs` (so nodes joining later learn of it), and ends
//! published streams whose encoder went silent for `publish_idle_secs`;
//! and every `claim_check_secs` claims the held vouchers that are due
//! (worth `claim_fee_multiple` fees, or their channel near expiry) and,
//! as a viewer, closes its ended channels that expired unclosed; and
//! every `vod_announce_secs` announces this node's newest own VODs again.
//! Its clock is tokio's, so paused-time tests drive it.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::warn;

use super::NodeHandle;

/// How often idle streams are looked for.
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub async fn run(node: NodeHandle, mut stop: watch::Receiver<bool>) {
    let config = node.config();
    let mut every = tokio::time::interval(config.announce_interval());
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut idle = tokio::time::interval(IDLE_CHECK);
    idle.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let idle_after = config.publish_idle();
    let mut settle = tokio::time::interval(Duration::from_secs(config.claim_check_secs.max(1)));
    settle.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let fee_multiple = config.claim_fee_multiple;
    let idle_close = Duration::from_secs(config.close_idle_secs);
    let mut vods = tokio::time::interval(Duration::from_secs(config.vod_announce_secs.max(1)));
    vods.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = vods.tick() => node.announce_own_vods().await,
            _ = settle.tick() => {
                if let Err(e) = node.inner.payments.claim_due(fee_multiple, idle_close).await {
                    warn!(error = %e, "settlement check failed (retried next time)");
                }
                if let Err(e) = node.inner.payments.reclaim_expired().await {
                    warn!(error = %e, "reclaim check failed (retried next time)");
                }
            }
            _ = every.tick() => {
                for a in node.inner.publisher.live_announcements().await {
                    if let Err(e) = node.send_announcement(a).await {
                        warn!(error = %e, "re-announce failed");
                    }
                }
            }
            _ = idle.tick() => {
                for ending in node.inner.publisher.end_idle(Instant::now(), idle_after).await {
                    if let Err(e) = node.send_ending(ending).await {
                        warn!(error = %e, "announcing an idle end failed");
                    }
                }
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
