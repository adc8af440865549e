//! The `vouchers` tree: the best voucher this node holds as a payee, one
//! per (channel, payee), and what of it was claimed on chain.
//!
//! A voucher is written (and flushed) *before* the key it paid for is
//! sent, so a node killed after accepting payment still holds it after a
//! restart and can claim it. A record only ever moves up: an update with
//! a lower amount is ignored, so a late or replayed write cannot lose
//! money. Entries exist only for channels that name this node's payee and
//! passed the chain checks; each costs its payer an on-chain deposit, so
//! peers cannot grow the tree for free; claimed-out channels are removed.

use serde::{Deserialize, Serialize};

use crate::{decode, update_record, IfCorrupt, StorageError};

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

/// The vouchers tree.
#[derive(Clone)]
pub struct Vouchers {
    pub(crate) tree: sled::Tree,
}

fn key(channel: u64, payee: &[u8; 32]) -> String {
    format!("{channel:020}-{}", hex::encode(payee))
}

impl Vouchers {
    /// Keeps `rec` if it pays more than what is held (never less); flushes
    /// before returning. Returns the record as stored.
    pub fn keep_best(&self, rec: VoucherRecord) -> Result<VoucherRecord, StorageError> {
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
        self.tree.flush()?;
        Ok(out)
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

    #[test]
    fn only_a_better_voucher_replaces_the_held_one_and_it_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::Store::open(dir.path()).unwrap();
            let v = &store.vouchers;
            v.keep_best(rec(10)).unwrap();
            v.keep_best(rec(30)).unwrap();
            assert_eq!(v.keep_best(rec(20)).unwrap().cumulative, 30, "never down");
            v.set_claimed(7, &[2; 32], 30).unwrap();
            v.keep_best(rec(40)).unwrap();
        }
        let store = crate::Store::open(dir.path()).unwrap();
        let held = store.vouchers.get(7, &[2; 32]).unwrap().unwrap();
        assert_eq!((held.cumulative, held.claimed), (40, 30));
        assert_eq!(store.vouchers.all().unwrap().len(), 1);
        store.vouchers.remove(7, &[2; 32]).unwrap();
        assert!(store.vouchers.get(7, &[2; 32]).unwrap().is_none());
    }
}
