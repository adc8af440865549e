//! The `recordings` tree: every chunk of a recorded stream, in order, as a
//! UnixFS file whose blocks are in the [`crate::blocks`] tree.
//!
//! A chunk is imported the moment it arrives (256 KiB raw leaves and the
//! balanced tree over them, exactly as Kubo would add the segment file),
//! so turning a finished recording into a VOD only adds a playlist and
//! directories. The live chunk CID (one raw block of the whole segment) is
//! kept beside the file CID: they differ once a segment exceeds 256 KiB.
//!
//! **Crash safety.** A chunk's blocks and its index entry are written in
//! one sled transaction, so the index never names a block that is not on
//! disk; the database is flushed after every chunk (in the background), so
//! a crash loses at most the chunk being flushed.
//!
//! **Quota.** Recorded bytes are counted (per stream and in total, kept in
//! the tree itself); a chunk that would take the total past the quota is
//! refused with [`StorageError::QuotaExceeded`] and nothing is written.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::unixfs::{self, Cid, CidVersion, Entry};
use crate::{decode, encode, StorageError};

/// One recorded chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedChunk {
    /// Sequence number in the stream.
    pub seq: u64,
    /// CID of the segment as a UnixFS file (what the VOD links).
    pub file_cid: Vec<u8>,
    /// Cumulative size of the file's blocks.
    pub tsize: u64,
    /// The live chunk's CID digest (raw sha2-256 of the whole payload).
    pub live_digest: [u8; 32],
    /// Payload bytes.
    pub size: u64,
    /// Duration in microseconds.
    pub duration_us: u32,
    /// A discontinuity precedes it.
    pub discontinuity: bool,
    /// When it was published (unix ms, the creator's word).
    pub published_ms: u64,
    /// For a paid stream's ciphertext: what opening it takes (its epoch
    /// and sealed parts). `None` for a free stream. (Stored where an
    /// earlier version kept a flag that was always false: a `false` reads
    /// as `None`.)
    pub paid: Option<PaidChunk>,
}

/// How a recorded chunk of a paid stream was sealed: what a paying viewer
/// needs, beside the epoch key, to open it (the paywall's nonce and
/// associated data are the stream, the sequence number and the epoch),
/// and the creator's signed header that vouches for all of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidChunk {
    /// The paywall epoch whose key sealed it.
    pub epoch: u64,
    /// Sizes of its sealed parts in order (LL-HLS parts are sealed one by
    /// one); empty when the whole payload is sealed at once.
    pub parts: Vec<u32>,
    /// The chunk's header as the creator signed it, in its wire encoding
    /// (stream, sequence, duration, epoch, parts and the ciphertext's
    /// CID): a viewer checks it before it pays for the segment.
    pub header: Vec<u8>,
}

impl RecordedChunk {
    /// The file CID.
    pub fn cid(&self) -> Result<Cid, StorageError> {
        Cid::try_from(self.file_cid.as_slice()).map_err(|e| StorageError::CorruptRecord {
            tree: "recordings",
            key: format!("seq {}", self.seq),
            reason: e.to_string(),
        })
    }

    /// As a UnixFS directory entry.
    pub fn entry(&self) -> Result<Entry, StorageError> {
        Ok(Entry {
            cid: self.cid()?,
            tsize: self.tsize,
            file_size: self.size,
        })
    }
}

/// A chunk to record.
pub struct ChunkToRecord<'a> {
    /// Stream id (text).
    pub stream: &'a str,
    /// Sequence number.
    pub seq: u64,
    /// Payload.
    pub payload: &'a [u8],
    /// Duration in microseconds.
    pub duration_us: u32,
    /// Discontinuity flag.
    pub discontinuity: bool,
    /// Publication time (unix ms).
    pub published_ms: u64,
    /// For a paid stream's ciphertext, how it was sealed.
    pub paid: Option<PaidChunk>,
}

/// What [`Recordings::record`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Stored.
    Stored,
    /// Already recorded (a duplicate delivery).
    Duplicate,
}

/// The recordings tree (with the blocks tree it writes into).
pub struct Recordings {
    pub(crate) tree: sled::Tree,
    pub(crate) blocks: sled::Tree,
    pub(crate) quota: Mutex<u64>,
}

const TOTAL_KEY: &[u8] = b"\xfftotal";

fn chunk_key(stream: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 10);
    k.push(b'c');
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn prefix(stream: &str) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k
}

fn u64_of(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Recordings {
    /// Sets the quota (bytes of recorded blocks over all streams).
    pub fn set_quota(&self, bytes: u64) {
        *self.quota.lock().unwrap_or_else(|p| p.into_inner()) = bytes;
    }

    /// The quota in bytes.
    pub fn quota(&self) -> u64 {
        *self.quota.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes recorded (over all streams, VOD playlists and directories
    /// included).
    pub fn used(&self) -> Result<u64, StorageError> {
        Ok(u64_of(self.tree.get(TOTAL_KEY)?))
    }

    /// Records one chunk: imports it as a UnixFS file and writes its blocks
    /// and index entry atomically. Refused over the quota.
    pub fn record(&self, c: &ChunkToRecord) -> Result<Recorded, StorageError> {
        let key = chunk_key(c.stream, c.seq);
        if self.tree.contains_key(&key)? {
            return Ok(Recorded::Duplicate);
        }
        let mut blocks: Vec<(Cid, Vec<u8>)> = vec![];
        let entry = unixfs::import_file(c.payload, CidVersion::V1, &mut |cid, b| {
            blocks.push((*cid, b.to_vec()));
            Ok(())
        })?;
        let rec = RecordedChunk {
            seq: c.seq,
            file_cid: entry.cid.to_bytes(),
            tsize: entry.tsize,
            live_digest: unixfs::digest_of(&unixfs::cid_of(
                CidVersion::V1,
                unixfs::RAW,
                c.payload,
            ))?,
            size: c.payload.len() as u64,
            duration_us: c.duration_us,
            discontinuity: c.discontinuity,
            published_ms: c.published_ms,
            paid: c.paid.clone(),
        };
        let value = encode(&rec, "recordings", c.stream)?;
        self.write_blocks(&blocks, Some((key, value)))?;
        Ok(Recorded::Stored)
    }

    /// Writes blocks this node built itself (not hashed again; blocks from
    /// peers go through [`Recordings::put_verified`]) and optionally one
    /// index entry in one transaction,
    /// counting new bytes against the quota.
    pub fn write_blocks(
        &self,
        blocks: &[(Cid, Vec<u8>)],
        index: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        let quota = self.quota();
        let mut digests = Vec::with_capacity(blocks.len());
        for (cid, _) in blocks {
            digests.push(unixfs::digest_of(cid)?);
        }
        let r = (&self.tree, &self.blocks).transaction(|(tree, bt)| {
            let mut added = 0u64;
            for ((_, bytes), d) in blocks.iter().zip(&digests) {
                if bt.insert(&d[..], bytes.as_slice())?.is_none() {
                    added += bytes.len() as u64;
                }
            }
            let used = u64_of(tree.get(TOTAL_KEY)?);
            if used.saturating_add(added) > quota {
                return Err(ConflictableTransactionError::Abort(
                    StorageError::QuotaExceeded {
                        quota,
                        used,
                        needed: added,
                    },
                ));
            }
            tree.insert(TOTAL_KEY, &used.saturating_add(added).to_be_bytes())?;
            if let Some((k, v)) = &index {
                tree.insert(k.as_slice(), v.as_slice())?;
            }
            Ok(())
        });
        match r {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// The recorded chunks of a stream, in order.
    pub fn chunks(&self, stream: &str) -> Result<Vec<RecordedChunk>, StorageError> {
        let mut out = vec![];
        for item in self.tree.scan_prefix(prefix(stream)) {
            let (_, v) = item?;
            out.push(decode(&v, "recordings", stream)?);
        }
        Ok(out)
    }

    /// Streams with recorded chunks.
    pub fn streams(&self) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = vec![];
        for item in self.tree.scan_prefix(b"c") {
            let (k, _) = item?;
            let Some(end) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let s = String::from_utf8_lossy(&k[1..end]).into_owned();
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Forgets exactly these chunks of a stream (the ones a VOD was built
    /// from: a chunk recorded meanwhile stays for the next build).
    pub fn clear_chunks(&self, stream: &str, seqs: &[u64]) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for s in seqs {
            batch.remove(chunk_key(stream, *s));
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Deletes every block that neither a root in `keep` (walked through
    /// the blocks held) nor a recorded chunk reaches, and recounts the
    /// bytes used: what removing a VOD frees. Returns the bytes freed.
    pub fn collect_garbage(&self, keep: &[Cid]) -> Result<u64, StorageError> {
        let mut live = std::collections::HashSet::new();
        let mut roots: Vec<Cid> = keep.to_vec();
        for item in self.tree.scan_prefix(b"c") {
            let (_, v) = item?;
            let c: RecordedChunk = decode(&v, "recordings", "gc")?;
            roots.push(c.cid()?);
        }
        for root in roots {
            let mut get = |c: &Cid| self.get_block(c);
            let r = unixfs::walk(&root, &mut get, &mut |c, _| {
                live.insert(unixfs::digest_of(c)?);
                Ok(())
            });
            match r {
                Ok(()) | Err(unixfs::UnixfsError::Missing(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (mut kept, mut freed) = (0u64, 0u64);
        for item in self.blocks.iter() {
            let (k, v) = item?;
            let live_block = <[u8; 32]>::try_from(k.as_ref()).is_ok_and(|d| live.contains(&d));
            if live_block {
                kept += v.len() as u64;
            } else {
                self.blocks.remove(&k)?;
                freed += v.len() as u64;
            }
        }
        self.tree.insert(TOTAL_KEY, &kept.to_be_bytes())?;
        Ok(freed)
    }

    /// A block by CID (verified on write; sha2-256 CIDs only).
    pub fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StorageError> {
        let d = unixfs::digest_of(cid)?;
        Ok(self.blocks.get(d)?.map(|v| v.to_vec()))
    }

    /// A block for the UnixFS reader: the bytes, or
    /// [`unixfs::UnixfsError::Missing`] naming it.
    pub fn get_block(&self, cid: &Cid) -> Result<Vec<u8>, unixfs::UnixfsError> {
        self.block(cid)
            .map_err(|e| unixfs::UnixfsError::Sink(e.to_string()))?
            .ok_or_else(|| unixfs::UnixfsError::Missing(cid.to_string()))
    }

    /// Whether a block is held.
    pub fn has_block(&self, cid: &Cid) -> Result<bool, StorageError> {
        let d = unixfs::digest_of(cid)?;
        Ok(self.blocks.contains_key(d)?)
    }

    /// Stores blocks fetched from peers, each checked against its CID
    /// first; counted against the quota.
    pub fn put_verified(&self, blocks: &[(Cid, Vec<u8>)]) -> Result<(), StorageError> {
        for (cid, b) in blocks {
            unixfs::verify(cid, b)?;
        }
        self.write_blocks(blocks, None)
    }
}
