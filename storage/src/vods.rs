//! The `vods` tree: the VODs this node holds (built from its recordings or
//! fetched), by root CID. A record is what the node tells its user and its
//! API; the VOD's bytes are blocks in the [`crate::blocks`] tree.

use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering;

use crate::{decode, encode, StorageError};

/// A VOD held by this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VodRecord {
    /// Root CID (CIDv1 dag-pb, base32): the UnixFS directory with
    /// `index.m3u8`.
    pub root: String,
    /// The stream it was recorded from.
    pub stream: String,
    /// The creator's key (hex).
    pub creator: String,
    /// Title.
    pub title: String,
    /// Total duration (ms).
    pub duration_ms: u64,
    /// Segments.
    pub segments: u64,
    /// Bytes of all its blocks.
    pub bytes: u64,
    /// When it was made (unix ms).
    pub created_ms: u64,
    /// The creator's ed25519 signature over the bytes of its VOD
    /// announcement (`vilokanam_swarm`'s `VodAnnouncement::signing_bytes`;
    /// hex; empty when recorded by a node other than the creator's).
    pub signature: String,
    /// The IPFS daemon (Kubo RPC URL) it is pinned on, once it is.
    pub ipfs_pinned: Option<String>,
    /// Planck per second watched, for the VOD of a paid stream (its
    /// segments are the stream's ciphertext, opened with the same epoch
    /// keys and vouchers as live); 0 for a free VOD.
    pub price_per_sec: u128,
}

/// A record as the first version stored it (before paid VODs): read and
/// converted, so a store written by it keeps its VODs.
#[derive(Deserialize)]
struct VodRecordV1 {
    root: String,
    stream: String,
    creator: String,
    title: String,
    duration_ms: u64,
    segments: u64,
    bytes: u64,
    created_ms: u64,
    signature: String,
    ipfs_pinned: Option<String>,
}

impl From<VodRecordV1> for VodRecord {
    fn from(v: VodRecordV1) -> Self {
        VodRecord {
            root: v.root,
            stream: v.stream,
            creator: v.creator,
            title: v.title,
            duration_ms: v.duration_ms,
            segments: v.segments,
            bytes: v.bytes,
            created_ms: v.created_ms,
            signature: v.signature,
            ipfs_pinned: v.ipfs_pinned,
            price_per_sec: 0,
        }
    }
}

/// Decodes a stored record, of this version or the first.
fn decode_record(bytes: &[u8], root: &str) -> Result<VodRecord, StorageError> {
    match decode::<VodRecord>(bytes, "vods", root) {
        Ok(r) => Ok(r),
        Err(e) => match postcard::from_bytes::<VodRecordV1>(bytes) {
            Ok(v1) => Ok(v1.into()),
            Err(_) => Err(e),
        },
    }
}

impl VodRecord {
    /// Whether watching it is paid.
    pub fn is_paid(&self) -> bool {
        self.price_per_sec > 0
    }
}

/// The vods tree.
#[derive(Clone)]
pub struct Vods {
    pub(crate) tree: sled::Tree,
}

impl Vods {
    /// Stores (or replaces) a record.
    pub fn put(&self, rec: &VodRecord) -> Result<(), StorageError> {
        self.tree
            .insert(rec.root.as_bytes(), encode(rec, "vods", &rec.root)?)?;
        self.tree.flush()?;
        Ok(())
    }

    /// A record by root CID.
    pub fn get(&self, root: &str) -> Result<Option<VodRecord>, StorageError> {
        match self.tree.get(root.as_bytes())? {
            None => Ok(None),
            Some(v) => decode_record(&v, root).map(Some),
        }
    }

    /// Every record, newest first; corrupt ones are skipped with a warning.
    pub fn all(&self) -> Result<Vec<VodRecord>, StorageError> {
        let mut out = vec![];
        for item in self.tree.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match decode_record(&v, &key) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(vod = %key, error = %e, "skipping corrupt VOD record"),
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
        Ok(out)
    }

    /// Notes that the VOD is pinned on the IPFS daemon at `url`.
    pub fn set_ipfs_pinned(&self, root: &str, url: &str) -> Result<(), StorageError> {
        if let Some(mut r) = self.get(root)? {
            r.ipfs_pinned = Some(url.to_owned());
            self.put(&r)?;
        }
        Ok(())
    }

    /// The root CIDs of every record (what garbage collection keeps).
    pub fn roots(&self) -> Result<Vec<crate::unixfs::Cid>, StorageError> {
        Ok(self
            .all()?
            .iter()
            .filter_map(|v| v.root.parse().ok())
            .collect())
    }

    /// Forgets a record (its blocks stay until the store is compacted).
    pub fn remove(&self, root: &str) -> Result<bool, StorageError> {
        Ok(self.tree.remove(root.as_bytes())?.is_some())
    }
}

/// Most VOD records heard from other creators kept (oldest built first out).
pub const MAX_HEARD: usize = 10_000;
/// Most heard records kept per creator (its newest).
pub const MAX_HEARD_PER_CREATOR: usize = 32;

/// The `heard_vods` tree: VOD records other creators announced (signed,
/// checked by the caller), keyed `<creator hex>/<root>`. A catalog of what
/// exists, not of what is held: nothing here keeps a block. Bounded: at
/// most [`MAX_HEARD_PER_CREATOR`] per creator (a key that announces VOD
/// after VOD pushes out its own oldest, not others'; a prefix scan of at
/// most that many) and [`MAX_HEARD`] in all (past it, the tenth heard
/// longest ago goes at once, so the full scan is rare). Eviction goes by
/// when this node heard a record, not by the time a record claims, so a
/// record dated in the future does not outlive the others.
#[derive(Clone)]
pub struct HeardVods {
    pub(crate) tree: sled::Tree,
    /// Records kept (sled's `len` walks the tree).
    pub(crate) count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn heard_key(creator: &str, root: &str) -> Vec<u8> {
    format!("{creator}/{root}").into_bytes()
}

/// A heard record and when this node heard it first.
#[derive(Serialize, Deserialize)]
struct Heard {
    heard_ms: u64,
    record: VodRecord,
}

impl HeardVods {
    /// Keeps a record heard at `now_ms` (signature checked by the
    /// caller); returns whether it is new here (a repeat changes nothing).
    /// Records heard longest ago are evicted past the bounds.
    pub fn put(&self, rec: &VodRecord, now_ms: u64) -> Result<bool, StorageError> {
        let key = heard_key(&rec.creator, &rec.root);
        if self.tree.contains_key(&key)? {
            return Ok(false);
        }
        let h = Heard {
            heard_ms: now_ms,
            record: rec.clone(),
        };
        if self
            .tree
            .insert(key, encode(&h, "heard_vods", &rec.root)?)?
            .is_none()
        {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        self.evict(&rec.creator)?;
        Ok(true)
    }

    /// Every record, newest (by its date) first; corrupt ones skipped with
    /// a warning.
    pub fn all(&self) -> Result<Vec<VodRecord>, StorageError> {
        let mut out: Vec<VodRecord> = self.scan(b"")?.into_iter().map(|h| h.record).collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
        Ok(out)
    }

    /// The records of `root` (one per creator that announced it).
    pub fn of_root(&self, root: &str) -> Result<Vec<VodRecord>, StorageError> {
        Ok(self
            .scan(b"")?
            .into_iter()
            .map(|h| h.record)
            .filter(|r| r.root == root)
            .collect())
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove(&self, r: &VodRecord) -> Result<(), StorageError> {
        if self.tree.remove(heard_key(&r.creator, &r.root))?.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Heard>, StorageError> {
        let mut out = vec![];
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match decode::<Heard>(&v, "heard_vods", &key) {
                Ok(h) => out.push(h),
                Err(e) => tracing::warn!(vod = %key, error = %e, "skipping corrupt heard VOD"),
            }
        }
        Ok(out)
    }

    fn evict(&self, creator: &str) -> Result<(), StorageError> {
        let mut own = self.scan(format!("{creator}/").as_bytes())?;
        if own.len() > MAX_HEARD_PER_CREATOR {
            // Its newest by its own dates: the creator's latest VODs.
            own.sort_by_key(|h| std::cmp::Reverse(h.record.created_ms));
            for h in &own[MAX_HEARD_PER_CREATOR..] {
                self.remove(&h.record)?;
            }
        }
        if self.len() > MAX_HEARD {
            let mut all = self.scan(b"")?;
            all.sort_by_key(|h| std::cmp::Reverse(h.heard_ms));
            let keep = MAX_HEARD - MAX_HEARD / 10;
            for h in all.drain(keep.min(all.len())..) {
                self.remove(&h.record)?;
            }
        }
        Ok(())
    }
}
