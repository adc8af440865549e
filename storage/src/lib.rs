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
//!   - [`blocks`]: payloads by CID, verified on write;
//!   - [`vouchers`]: the best voucher held per (channel, payee), written
//!     before the key it paid for is sent;
//!   - [`sessions`]: the channels this node opened as a viewer, kept
//!     until the rest of each deposit is back;
//!   - [`recordings`]: recorded streams, chunk by chunk, as UnixFS files
//!     (bounded by a quota), their blocks in `blocks`;
//!   - [`vods`]: the VODs this node holds, by root CID.
//!
//! [`unixfs`] builds UnixFS DAGs exactly as Kubo does (IO-less).
//!
//! Every tree is bounded by what the local user does (publishing,
//! watching) or by an explicit cap ([`peers::MAX_PEERS`]); nothing a peer
//! sends can make the store grow.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod blocks;
pub mod chat;
mod error;
pub mod keys;
pub mod peers;
pub mod recordings;
pub mod search;
pub mod sessions;
pub mod social;
pub mod streams;
pub mod unixfs;
pub mod vods;
pub mod vouchers;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

pub use blocks::Blocks;
pub use chat::ChatStore;
pub use error::StorageError;
pub use keys::{load_account, load_or_create as load_or_create_keys, store_account, NodeKeys};
pub use peers::{KnownPeer, Peers};
pub use recordings::{ChunkToRecord, PaidChunk, RecordedChunk, Recordings};
pub use sessions::{SessionRecord, Sessions};
pub use social::SocialStore;
pub use streams::{StreamRecord, StreamRole, Streams};
pub use vods::{HeardVods, VodRecord, Vods};
pub use vouchers::{VoucherRecord, Vouchers};

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
    /// Vouchers held as a payee.
    pub vouchers: Vouchers,
    /// Channels opened as a viewer.
    pub sessions: Sessions,
    /// Recorded chunks (as UnixFS files) and VOD blocks.
    pub recordings: std::sync::Arc<Recordings>,
    /// VODs held.
    pub vods: Vods,
    /// VOD records other creators announced.
    pub heard_vods: HeardVods,
    /// Chat counters and moderation actions in force.
    pub chat: ChatStore,
    /// The records this node's user publishes (profile, follows).
    pub social: SocialStore,
}

impl Store {
    /// Opens (or creates) the database at `dir/db`, migrating old records.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = open_db(&dir.join("db"))?;
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
            vouchers: Vouchers {
                tree: db.open_tree("vouchers")?,
                commits: Default::default(),
            },
            sessions: Sessions {
                tree: db.open_tree("sessions")?,
            },
            recordings: std::sync::Arc::new(Recordings {
                tree: db.open_tree("recordings")?,
                blocks: db.open_tree("blocks")?,
                quota: std::sync::Mutex::new(DEFAULT_RECORD_QUOTA),
            }),
            vods: Vods {
                tree: db.open_tree("vods")?,
            },
            heard_vods: {
                let tree = db.open_tree("heard_vods")?;
                HeardVods {
                    count: std::sync::Arc::new(tree.len().into()),
                    tree,
                }
            },
            chat: ChatStore::open(db.open_tree("chat")?),
            social: SocialStore {
                tree: db.open_tree("social")?,
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

/// Default recording quota: 10 GiB.
pub const DEFAULT_RECORD_QUOTA: u64 = 10 << 30;

/// How long [`open_db`] retries a database whose lock is held.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the sled database at `path`. sled holds an exclusive lock on
/// the directory while any of its threads holds the database, and a
/// handle dropped in this process can still be held for a moment by
/// sled's background threads (its flusher finishing a write), so a held
/// lock is retried for [`LOCK_WAIT`] before it is reported as
/// [`StorageError::InUse`]. sled only offers a non-blocking `try_lock`,
/// so there is no event to wait for.
fn open_db(path: &Path) -> Result<sled::Db, StorageError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::open(path) {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(StorageError::InUse(path.to_owned()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What [`update_record`] does with a record it cannot decode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfCorrupt {
    /// Start over from the initial value (caches).
    Replace,
    /// Fail with [`StorageError::CorruptRecord`] and leave it alone.
    Fail,
}

/// Changes one record atomically (sled's compare-and-swap loop: `f` may
/// run more than once), creating it from `init` if absent; returns the
/// record as written. Writers of different fields never overwrite each
/// other.
pub(crate) fn update_record<T: Serialize + DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &str,
    if_corrupt: IfCorrupt,
    init: impl Fn() -> T,
    mut f: impl FnMut(&mut T),
) -> Result<T, StorageError> {
    let mut failed = None;
    let mut last = None;
    tree.update_and_fetch(key.as_bytes(), |old| {
        failed = None;
        let mut rec = match old.map(postcard::from_bytes::<T>) {
            None => init(),
            Some(Ok(r)) => r,
            Some(Err(_)) if if_corrupt == IfCorrupt::Replace => init(),
            Some(Err(e)) => {
                failed = Some(StorageError::CorruptRecord {
                    tree: name,
                    key: key.to_owned(),
                    reason: e.to_string(),
                });
                return old.map(<[u8]>::to_vec);
            }
        };
        f(&mut rec);
        match encode(&rec, name, key) {
            Ok(b) => {
                last = Some(rec);
                Some(b)
            }
            Err(e) => {
                failed = Some(e);
                old.map(<[u8]>::to_vec)
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    last.ok_or_else(|| StorageError::CorruptRecord {
        tree: name,
        key: key.to_owned(),
        reason: "record vanished during update".into(),
    })
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
