//! The `vouchers` tree: the best voucher this node holds as a payee, one
//! per (channel, payee), and what of it was claimed on chain.
//!
//! A voucher is written and flushed ([`Kept::durable`]) *before* the key
//! it paid for is sent, so a node killed after accepting payment still
//! holds it after a restart and can claim it. A record only ever moves up: an update with
//! a lower amount is ignored, so a late or replayed write cannot lose
//! money. Entries exist only for channels that name this node's payee and
//! passed the chain checks; each costs its payer an on-chain deposit, so
//! peers cannot grow the tree for free; claimed-out channels are removed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{decode, update_record, IfCorrupt, StorageError};

/// How long the first voucher waiting for the disk waits for others to
/// join its flush (group commit). A payee flushes once per window instead
/// of once per voucher; each key answer waits at most this much longer.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(20);

/// Vouchers waiting for the next group flush.
#[derive(Default)]
pub(crate) struct Commits {
    waiting: Vec<oneshot::Sender<Result<(), sled::Error>>>,
    scheduled: bool,
    flushes: u64,
}

fn lock(c: &Mutex<Commits>) -> std::sync::MutexGuard<'_, Commits> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// A held voucher.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherRecord {
    /// The stream it pays for (text id).
    pub stream: String,
    /// The chain's genesis hash.
    pub chain: [u8; 32],
    /// The channel.
    pub channel: u64,
    /// The payee account it names.
    pub payee: [u8; 32],
    /// Cumulative amount.
    pub cumulative: u128,
    /// The ed25519 signature.
    pub signature: Vec<u8>,
    /// Cumulative amount claimed on chain so far.
    pub claimed: u128,
    /// Seconds of playback it pays for (the payee's own count).
    pub seconds: u64,
}

/// A voucher written to the tree, not yet known to be on disk.
#[must_use = "a kept voucher survives a crash only after `durable`"]
pub struct Kept {
    tree: sled::Tree,
    commits: Arc<Mutex<Commits>>,
    record: VoucherRecord,
}

impl Kept {
    /// The record as stored (the better of the held one and the new one).
    pub fn record(&self) -> &VoucherRecord {
        &self.record
    }

    /// Waits until the record (and every write before it) is on disk: it
    /// joins the next group flush, which starts [`COMMIT_WINDOW`] after
    /// its first member (needs a tokio runtime).
    pub async fn durable(self) -> Result<VoucherRecord, StorageError> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut c = lock(&self.commits);
            c.waiting.push(tx);
            !std::mem::replace(&mut c.scheduled, true)
        };
        if first {
            let (tree, commits) = (self.tree.clone(), self.commits.clone());
            tokio::spawn(async move {
                tokio::time::sleep(COMMIT_WINDOW).await;
                // Who joins later waits for the next flush: this one may
                // have started before its write.
                let waiters = {
                    let mut c = lock(&commits);
                    c.scheduled = false;
                    c.flushes += 1;
                    std::mem::take(&mut c.waiting)
                };
                let r = tree.flush_async().await.map(|_| ());
                for w in waiters {
                    let _ = w.send(r.clone());
                }
            });
        }
        match rx.await {
            Ok(r) => r.map(|()| self.record).map_err(StorageError::Db),
            Err(_) => Err(StorageError::NotFlushed("vouchers")),
        }
    }

    /// [`Kept::durable`], blocking the calling thread.
    pub fn durable_now(self) -> Result<VoucherRecord, StorageError> {
        self.tree.flush()?;
        Ok(self.record)
    }
}

/// The vouchers tree.
#[derive(Clone)]
pub struct Vouchers {
    pub(crate) tree: sled::Tree,
    pub(crate) commits: Arc<Mutex<Commits>>,
}

fn key(channel: u64, payee: &[u8; 32]) -> String {
    format!("{channel:020}-{}", hex::encode(payee))
}

impl Vouchers {
    /// Keeps `rec` if it pays more than what is held (never less), in the
    /// tree but not yet on disk: the returned [`Kept`] says what is stored
    /// and is crash-safe once [`Kept::durable`] returned. Writing and
    /// flushing are split so that a caller holding a lock writes under it
    /// and waits for the disk after releasing it; vouchers waiting within
    /// [`COMMIT_WINDOW`] of each other share one flush.
    pub fn keep_best(&self, rec: VoucherRecord) -> Result<Kept, StorageError> {
        let k = key(rec.channel, &rec.payee);
        let out = update_record(
            &self.tree,
            "vouchers",
            &k,
            IfCorrupt::Fail,
            || rec.clone(),
            |held| {
                if rec.cumulative > held.cumulative {
                    let claimed = held.claimed;
                    *held = rec.clone();
                    held.claimed = claimed;
                }
            },
        )?;
        Ok(Kept {
            tree: self.tree.clone(),
            commits: self.commits.clone(),
            record: out,
        })
    }

    /// Group flushes started so far (each makes every voucher kept before
    /// it durable): vouchers per flush is what group commit saves.
    pub fn group_flushes(&self) -> u64 {
        lock(&self.commits).flushes
    }

    /// Records that `cumulative` of a channel's voucher was claimed.
    pub fn set_claimed(
        &self,
        channel: u64,
        payee: &[u8; 32],
        cumulative: u128,
    ) -> Result<(), StorageError> {
        let k = key(channel, payee);
        update_record(
            &self.tree,
            "vouchers",
            &k,
            IfCorrupt::Fail,
            VoucherRecord::default,
            |held| held.claimed = held.claimed.max(cumulative),
        )?;
        self.tree.flush()?;
        Ok(())
    }

    /// The held voucher of a channel for a payee.
    pub fn get(
        &self,
        channel: u64,
        payee: &[u8; 32],
    ) -> Result<Option<VoucherRecord>, StorageError> {
        let k = key(channel, payee);
        self.tree
            .get(k.as_bytes())?
            .map(|v| decode(&v, "vouchers", &k))
            .transpose()
    }

    /// Every held voucher, by channel.
    pub fn all(&self) -> Result<Vec<VoucherRecord>, StorageError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            out.push(decode(&v, "vouchers", &String::from_utf8_lossy(&k))?);
        }
        Ok(out)
    }

    /// Forgets a channel's voucher (closed on chain, fully claimed).
    pub fn remove(&self, channel: u64, payee: &[u8; 32]) -> Result<(), StorageError> {
        self.tree.remove(key(channel, payee).as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cumulative: u128) -> VoucherRecord {
        VoucherRecord {
            stream: "s".into(),
            chain: [1; 32],
            channel: 7,
            payee: [2; 32],
            cumulative,
            signature: vec![cumulative as u8; 64],
            claimed: 0,
            seconds: 0,
        }
    }

    #[tokio::test]
    async fn vouchers_waiting_together_share_one_flush_and_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::Store::open(dir.path()).unwrap();
            let v = &store.vouchers;
            let kept: Vec<Kept> = (0..50u64)
                .map(|c| {
                    let mut r = rec(100 + u128::from(c));
                    r.channel = c;
                    v.keep_best(r).unwrap()
                })
                .collect();
            // One task: every voucher joins before the window ends.
            let done = futures::future::join_all(kept.into_iter().map(Kept::durable)).await;
            assert!(done.iter().all(Result::is_ok), "{done:?}");
            assert_eq!(v.group_flushes(), 1, "fifty vouchers, one flush");
            // A later one waits for a flush of its own.
            let mut r = rec(7);
            r.channel = 99;
            v.keep_best(r).unwrap().durable().await.unwrap();
            assert_eq!(v.group_flushes(), 2);
        }
        let store = crate::Store::open(dir.path()).unwrap();
        let all = store.vouchers.all().unwrap();
        assert_eq!(all.len(), 51);
        assert_eq!(
            store
                .vouchers
                .get(49, &[2; 32])
                .unwrap()
                .unwrap()
                .cumulative,
            149
        );
    }

    #[test]
    fn only_a_better_voucher_replaces_the_held_one_and_it_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::Store::open(dir.path()).unwrap();
            let v = &store.vouchers;
            v.keep_best(rec(10)).unwrap().durable_now().unwrap();
            v.keep_best(rec(30)).unwrap().durable_now().unwrap();
            let kept = v.keep_best(rec(20)).unwrap();
            assert_eq!(kept.record().cumulative, 30, "never down");
            assert_eq!(kept.durable_now().unwrap().cumulative, 30);
            v.set_claimed(7, &[2; 32], 30).unwrap();
            v.keep_best(rec(40)).unwrap().durable_now().unwrap();
        }
        let store = crate::Store::open(dir.path()).unwrap();
        let held = store.vouchers.get(7, &[2; 32]).unwrap().unwrap();
        assert_eq!((held.cumulative, held.claimed), (40, 30));
        assert_eq!(store.vouchers.all().unwrap().len(), 1);
        store.vouchers.remove(7, &[2; 32]).unwrap();
        assert!(store.vouchers.get(7, &[2; 32]).unwrap().is_none());
    }
}
