//! Persistent state of a Vilokanam node.
//!
//! Everything that must outlive a restart lives under the node's data
//! directory:
//!
//! - the keys, one file per role ([`keys`]): transport identity, creator
//!   key, voucher key, chain account;
//! - `db/` (sled), one module per tree:
//!   - [`peers`]: addresses of peers seen, to reconnect after a restart;
//!   - [`streams`]: the streams this node publishes or watches (never the
//!     network's announcements), with the next sequence number of each
//!     published stream;
//!   - [`blocks`]: payloads by CID, verified on write.
//!
//! Every tree is bounded by what the local user does (publishing,
//! watching) or by an explicit cap ([`peers::MAX_PEERS`]); nothing a peer
//! sends can make the store grow.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod blocks;
mod error;
pub mod keys;
pub mod peers;
pub mod streams;

use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

pub use blocks::Blocks;
pub use error::StorageError;
pub use keys::{load_account, load_or_create as load_or_create_keys, store_account, NodeKeys};
pub use peers::{KnownPeer, Peers};
pub use streams::{StreamRecord, StreamRole, Streams};

/// The node's sled database, one handle per tree.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// Peers seen.
    pub peers: Peers,
    /// Streams published or watched.
    pub streams: Streams,
    /// Blocks by CID.
    pub blocks: Blocks,
}

impl Store {
    /// Opens (or creates) the database at `dir/db`, migrating old records.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::open(dir.join("db"))?;
        let store = Store {
            peers: Peers {
                tree: db.open_tree("peers")?,
            },
            streams: Streams {
                tree: db.open_tree("streams")?,
            },
            blocks: Blocks {
                tree: db.open_tree("blocks")?,
            },
            db,
        };
        let dropped = store.streams.migrate()?;
        if dropped > 0 {
            tracing::info!(
                dropped,
                "dropped stored announcements of streams this node neither publishes nor watches"
            );
        }
        Ok(store)
    }

    /// Flushes to disk (called on shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(self.db.size_on_disk()?)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    tree: &'static str,
    key: &str,
) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|e| StorageError::CorruptRecord {
        tree,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(
    value: &T,
    tree: &'static str,
    key: &str,
) -> Result<Vec<u8>, StorageError> {
    postcard::to_stdvec(value).map_err(|e| StorageError::CorruptRecord {
        tree,
        key: key.to_owned(),
        reason: format!("cannot encode: {e}"),
    })
}

#[cfg(test)]
mod tests;
