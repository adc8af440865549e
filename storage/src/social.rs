//! The `social` tree: the records this node's user publishes (its profile,
//! its follow operations, the followers index of its key), as the
//! encoded, signed records the swarm checks (`swarm::protocols::social`).
//!
//! - `rec/<kind>/<hex key>` → the record's wire bytes. A record here is
//!   republished at start and merged with what peers send about the same
//!   key (the user's other node), so follows never go back to a stale copy.
//!
//! The records of other users live in the swarm's DHT store (bounded,
//! in memory): they are fetched again when asked for.

use crate::StorageError;

/// Most records kept (three per user key this node publishes for).
pub const MAX_RECORDS: usize = 64;

/// The social tree.
#[derive(Clone)]
pub struct SocialStore {
    pub(crate) tree: sled::Tree,
}

fn key(record_key: &str) -> Vec<u8> {
    [b"rec/".as_slice(), record_key.as_bytes()].concat()
}

impl SocialStore {
    /// The record kept under `record_key` (`profile/<hex>`, ...).
    pub fn get(&self, record_key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tree.get(key(record_key))?.map(|v| v.to_vec()))
    }

    /// Keeps `bytes` under `record_key`, flushed before it returns (a
    /// follow acknowledged to the user survives a crash). Refused beyond
    /// [`MAX_RECORDS`] keys.
    pub fn put(&self, record_key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let k = key(record_key);
        if !self.tree.contains_key(&k)? && self.tree.scan_prefix(b"rec/").count() >= MAX_RECORDS {
            return Err(StorageError::Full(format!(
                "the social tree keeps at most {MAX_RECORDS} records"
            )));
        }
        self.tree.insert(k, bytes)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Keeps `cid` as the user's avatar (its blocks are kept from garbage
    /// collection while it is).
    pub fn set_avatar(&self, cid: &str) -> Result<(), StorageError> {
        self.tree.insert(b"avatar", cid.as_bytes())?;
        self.tree.flush()?;
        Ok(())
    }

    /// The user's avatar CID, if one was stored.
    pub fn avatar(&self) -> Result<Option<crate::unixfs::Cid>, StorageError> {
        let Some(v) = self.tree.get(b"avatar")? else {
            return Ok(None);
        };
        let s = String::from_utf8_lossy(&v).into_owned();
        s.parse()
            .map(Some)
            .map_err(|e: cid::Error| StorageError::CorruptRecord {
                tree: "social",
                key: "avatar".into(),
                reason: e.to_string(),
            })
    }

    /// Every record kept: (record key, bytes).
    pub fn all(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"rec/") {
            let (k, v) = item?;
            let k = String::from_utf8_lossy(&k[4..]).into_owned();
            out.push((k, v.to_vec()));
        }
        Ok(out)
    }
}
