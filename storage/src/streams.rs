//! The `streams` tree: the streams this node publishes or watches, and
//! nothing else. Announcements heard from the network live in memory
//! (bounded) and are never written here, so no peer can grow the store.
//!
//! For a published stream the record holds the next sequence number, which
//! is persisted *before* a chunk with that number is signed, so a crash
//! can never make the restarted stream sign two chunks for one number.
//! Updates are atomic read-modify-writes (`update_and_fetch`): writers of
//! different fields never overwrite each other.

use serde::{Deserialize, Serialize};

use crate::{decode, encode, update_record, IfCorrupt, StorageError};

/// Why a stream is in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamRole {
    /// This node publishes it.
    #[default]
    Published,
    /// The user watches it.
    Watched,
}

/// A stream in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The latest signed announcement, as encoded on the wire (may be
    /// empty for a watched stream not yet heard of).
    pub announcement: Vec<u8>,
    /// Next sequence number to publish (published streams).
    pub next_seq: u64,
    /// Last time the record changed (unix ms).
    pub updated_ms: u64,
    /// Why it is stored.
    pub role: StreamRole,
}

/// The record layout before roles existed: every announcement heard was
/// stored. On open, old records of published streams are kept, the rest
/// (the network's announcements) are dropped.
#[derive(Deserialize)]
struct RecordV1 {
    announcement: Vec<u8>,
    next_seq: u64,
    updated_ms: u64,
}

/// The streams tree.
#[derive(Clone)]
pub struct Streams {
    pub(crate) tree: sled::Tree,
}

impl Streams {
    /// Migrates records of the old layout (see [`StreamRecord`]).
    pub(crate) fn migrate(&self) -> Result<usize, StorageError> {
        let mut dropped = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            if postcard::from_bytes::<StreamRecord>(&v).is_ok() {
                continue;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            match postcard::from_bytes::<RecordV1>(&v) {
                Ok(old) if old.next_seq > 0 => {
                    let rec = StreamRecord {
                        announcement: old.announcement,
                        next_seq: old.next_seq,
                        updated_ms: old.updated_ms,
                        role: StreamRole::Published,
                    };
                    self.tree.insert(&k, encode(&rec, "streams", &key)?)?;
                }
                _ => {
                    self.tree.remove(&k)?;
                    dropped += 1;
                }
            }
        }
        Ok(dropped)
    }

    /// The record of a stream (by its textual id).
    pub fn get(&self, id: &str) -> Result<Option<StreamRecord>, StorageError> {
        match self.tree.get(id.as_bytes())? {
            None => Ok(None),
            Some(v) => decode(&v, "streams", id).map(Some),
        }
    }

    /// Changes one stream's record atomically (creating it with `role` if
    /// absent); returns the record as written. `f` may run more than once.
    pub fn update(
        &self,
        id: &str,
        role: StreamRole,
        f: impl FnMut(&mut StreamRecord),
    ) -> Result<StreamRecord, StorageError> {
        update_record(
            &self.tree,
            "streams",
            id,
            IfCorrupt::Fail,
            || StreamRecord {
                role,
                ..StreamRecord::default()
            },
            f,
        )
    }

    /// Removes a stream's record.
    pub fn remove(&self, id: &str) -> Result<(), StorageError> {
        self.tree.remove(id.as_bytes())?;
        Ok(())
    }

    /// Every record; corrupt ones are skipped with a warning.
    pub fn all(&self) -> Result<Vec<(String, StreamRecord)>, StorageError> {
        let mut out = vec![];
        for item in self.tree.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match decode(&v, "streams", &key) {
                Ok(r) => out.push((key, r)),
                Err(e) => {
                    tracing::warn!(stream = %key, error = %e, "skipping corrupt stream record")
                }
            }
        }
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
