//! The `peers` tree: addresses of peers this node was connected to, so it
//! can reconnect after a restart. Bounded: at most [`MAX_PEERS`] records
//! (the least recently seen are dropped) with at most four addresses each.

use serde::{Deserialize, Serialize};

use crate::{decode, update_record, IfCorrupt, StorageError};

/// Most peer records kept.
pub const MAX_PEERS: usize = 1024;
/// Most addresses kept per peer.
pub const MAX_ADDRS: usize = 4;

/// A peer this node has been connected to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Multiaddrs it was reached at, most recent first.
    pub addrs: Vec<String>,
    /// Last connection time (unix ms).
    pub last_seen_ms: u64,
}

/// The peers tree.
#[derive(Clone)]
pub struct Peers {
    pub(crate) tree: sled::Tree,
}

impl Peers {
    /// Records that `peer` was reached at `addr` (atomically, so
    /// concurrent connections never lose an address).
    pub fn remember(&self, peer: &str, addr: &str, now_ms: u64) -> Result<(), StorageError> {
        // A corrupt record of a cache is simply replaced.
        update_record(
            &self.tree,
            "peers",
            peer,
            IfCorrupt::Replace,
            || KnownPeer {
                addrs: vec![],
                last_seen_ms: 0,
            },
            |rec| {
                rec.addrs.retain(|a| a != addr);
                rec.addrs.insert(0, addr.to_owned());
                rec.addrs.truncate(MAX_ADDRS);
                rec.last_seen_ms = now_ms;
            },
        )?;
        if self.tree.len() > MAX_PEERS {
            self.prune(MAX_PEERS)?;
        }
        Ok(())
    }

    fn prune(&self, keep: usize) -> Result<(), StorageError> {
        let mut all = self.all()?;
        all.sort_by_key(|p| std::cmp::Reverse(p.1.last_seen_ms));
        for (key, _) in all.into_iter().skip(keep) {
            self.tree.remove(key.as_bytes())?;
        }
        Ok(())
    }

    fn all(&self) -> Result<Vec<(String, KnownPeer)>, StorageError> {
        let mut out = vec![];
        for item in self.tree.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match decode::<KnownPeer>(&v, "peers", &key) {
                Ok(p) => out.push((key, p)),
                Err(e) => tracing::warn!(peer = %key, error = %e, "skipping corrupt peer record"),
            }
        }
        Ok(out)
    }

    /// Known peers, most recently seen first (at most `limit`). Corrupt
    /// records are skipped with a warning rather than failing start-up.
    pub fn recent(&self, limit: usize) -> Result<Vec<(String, KnownPeer)>, StorageError> {
        let mut out = self.all()?;
        out.sort_by_key(|p| std::cmp::Reverse(p.1.last_seen_ms));
        out.truncate(limit);
        Ok(out)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}
