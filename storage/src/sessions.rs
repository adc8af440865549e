//! The `sessions` tree: the channels this node opened as a viewer to pay
//! for a stream, one record per channel, kept after the session ends
//! until the rest of the deposit is back.
//!
//! The record is what lets the node get its money back on its own: if
//! the creator never closes the channel (its node died, or the voucher it
//! holds is worth less than a claim), the viewer's node closes it itself
//! once it expires — also after a restart, since the record is on disk.
//! It is also the viewer's history for `vilokanam spending`.
//!
//! Bounded: a record is created only by the local user's `watch` of a
//! paid stream (each one costs an on-chain deposit), and settled records
//! beyond [`MAX_SETTLED`] are dropped, oldest first.

use serde::{Deserialize, Serialize};

use crate::{decode, encode, update_record, IfCorrupt, StorageError};

/// Settled sessions kept for the history; older ones are dropped.
pub const MAX_SETTLED: usize = 1_000;

/// How a channel ended on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// The payee closed it (claiming first): the rest came back.
    ClosedByPayee,
    /// This node closed it after expiry and got `refunded` back.
    Reclaimed {
        /// Planck returned.
        refunded: u128,
    },
}

/// A channel this node pays from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The stream it paid for (text id).
    pub stream: String,
    /// The chain's genesis hash.
    pub chain: [u8; 32],
    /// The channel.
    pub channel: u64,
    /// The payee account.
    pub payee: [u8; 32],
    /// The deposit (budget plus top-ups).
    pub deposit: u128,
    /// Cumulative amount signed over.
    pub spent: u128,
    /// Seconds of playback paid.
    pub seconds_paid: u64,
    /// Block at which the payer may close it.
    pub expires_at: u32,
    /// When it was opened (ms since the epoch).
    pub opened_ms: u64,
    /// When the session ended (unwatch, shutdown), if it did.
    pub ended_ms: Option<u64>,
    /// How it was settled on chain, once it was.
    pub settled: Option<Settlement>,
}

/// The sessions tree.
#[derive(Clone)]
pub struct Sessions {
    pub(crate) tree: sled::Tree,
}

fn key(channel: u64) -> String {
    format!("{channel:020}")
}

impl Sessions {
    /// Stores a newly opened channel (flushed: the deposit is on chain).
    pub fn insert(&self, rec: &SessionRecord) -> Result<(), StorageError> {
        let k = key(rec.channel);
        self.tree
            .insert(k.as_bytes(), encode(rec, "sessions", &k)?)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Changes a channel's record with `f` (absent: nothing happens).
    /// Returns the record as written.
    pub fn update(
        &self,
        channel: u64,
        f: impl FnMut(&mut SessionRecord),
    ) -> Result<Option<SessionRecord>, StorageError> {
        let k = key(channel);
        if self.tree.get(k.as_bytes())?.is_none() {
            return Ok(None);
        }
        let rec = update_record(
            &self.tree,
            "sessions",
            &k,
            IfCorrupt::Fail,
            SessionRecord::default,
            f,
        )?;
        Ok(Some(rec))
    }

    /// Marks a channel settled (flushed), then drops the oldest settled
    /// records beyond [`MAX_SETTLED`].
    pub fn settle(&self, channel: u64, how: Settlement) -> Result<(), StorageError> {
        self.settle_keeping(channel, how, MAX_SETTLED)
    }

    fn settle_keeping(
        &self,
        channel: u64,
        how: Settlement,
        keep: usize,
    ) -> Result<(), StorageError> {
        self.update(channel, |r| r.settled = Some(how))?;
        self.tree.flush()?;
        let settled: Vec<_> = self
            .all()?
            .into_iter()
            .filter(|r| r.settled.is_some())
            .collect();
        // Keys are zero-padded channel ids: oldest channel first.
        for r in settled.iter().take(settled.len().saturating_sub(keep)) {
            self.tree.remove(key(r.channel).as_bytes())?;
        }
        Ok(())
    }

    /// A channel's record.
    pub fn get(&self, channel: u64) -> Result<Option<SessionRecord>, StorageError> {
        let k = key(channel);
        self.tree
            .get(k.as_bytes())?
            .map(|v| decode(&v, "sessions", &k))
            .transpose()
    }

    /// Every record, oldest channel first.
    pub fn all(&self) -> Result<Vec<SessionRecord>, StorageError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            out.push(decode(&v, "sessions", &String::from_utf8_lossy(&k))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(channel: u64) -> SessionRecord {
        SessionRecord {
            stream: "s".into(),
            channel,
            deposit: 100,
            expires_at: 50,
            ..Default::default()
        }
    }

    #[test]
    fn a_session_survives_reopening_and_settled_ones_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::Store::open(dir.path()).unwrap();
            let s = &store.sessions;
            s.insert(&rec(3)).unwrap();
            s.update(3, |r| {
                r.spent = 40;
                r.ended_ms = Some(9);
            })
            .unwrap();
            assert_eq!(s.update(4, |r| r.spent = 1).unwrap(), None, "absent");
        }
        let store = crate::Store::open(dir.path()).unwrap();
        let s = &store.sessions;
        let held = s.get(3).unwrap().unwrap();
        assert_eq!(
            (held.spent, held.ended_ms, held.settled),
            (40, Some(9), None)
        );
        assert!(s.get(4).unwrap().is_none());
        s.settle(3, Settlement::Reclaimed { refunded: 60 }).unwrap();
        assert_eq!(
            s.get(3).unwrap().unwrap().settled,
            Some(Settlement::Reclaimed { refunded: 60 })
        );
        // Settled records beyond the cap go, oldest first; open ones stay.
        s.insert(&rec(1)).unwrap();
        for c in 10..13 {
            s.insert(&rec(c)).unwrap();
            s.settle_keeping(c, Settlement::ClosedByPayee, 3).unwrap();
        }
        assert!(s.get(3).unwrap().is_none(), "the oldest settled is dropped");
        assert!(s.get(1).unwrap().is_some(), "an unsettled one stays");
        assert_eq!(s.all().unwrap().len(), 3 + 1);
    }
}
