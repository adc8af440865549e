//! UnixFS, built exactly as Kubo builds it, so a VOD's root CID is the
//! CID `ipfs add -r --cid-version=1` prints for the same files.
//!
//! Kubo's defaults (and `ipfs-unixfs-importer`'s, checked against it by a
//! differential test): files cut into 262,144-byte chunks; leaves are raw
//! blocks (CIDv1) or dag-pb `File` nodes (CIDv0, Kubo's default without
//! `--cid-version=1`); a balanced tree of at most 174 links per node; a
//! file of one chunk is that chunk; directories are dag-pb `Directory`
//! nodes with links sorted by name. A directory whose links would exceed
//! Kubo's sharding threshold (the sum of name and CID lengths over
//! 262,144 bytes) becomes a HAMT in Kubo: this importer refuses such a
//! directory with [`UnixfsError::NeedsSharding`] instead of computing a CID
//! that differs from Kubo's, and the VOD layout keeps every directory under
//! the threshold with sub-directories.
//!
//! The module is IO-less: blocks go to a sink closure, and the reader
//! ([`read_file`], [`resolve`]) gets blocks through a closure.

pub mod car;
pub mod pb;

pub use cid::Cid;
use sha2::{Digest, Sha256};

pub use pb::{DataType, PbLink, PbNode, UnixfsData};

/// Chunk size of Kubo's default chunker (`size-262144`).
pub const CHUNK_SIZE: usize = 262_144;
/// Links per file node in Kubo's balanced layout.
pub const MAX_FILE_LINKS: usize = 174;
/// Kubo's `HAMTShardingSize`: a directory whose estimated size (names plus
/// CIDs) exceeds it is sharded.
pub const SHARD_THRESHOLD: usize = 262_144;
/// The largest block this node writes or accepts: Bitswap's limit (Kubo
/// refuses blocks over 2 MiB; ours are at most a chunk plus a node).
pub const MAX_BLOCK: usize = 2 * 1024 * 1024;
/// Multicodec of dag-pb.
pub const DAG_PB: u64 = 0x70;
/// Multicodec of raw.
pub const RAW: u64 = 0x55;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// Errors of the UnixFS importer and reader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnixfsError {
    /// A block is not valid dag-pb/UnixFS.
    #[error("malformed UnixFS block: {0}")]
    Malformed(String),
    /// A directory would be a HAMT shard in Kubo.
    #[error("directory of {entries} entries is {estimate} bytes of links, over Kubo's sharding threshold ({SHARD_THRESHOLD}): split it into sub-directories")]
    NeedsSharding {
        /// Entries.
        entries: usize,
        /// Estimated size.
        estimate: usize,
    },
    /// Two entries of a directory share a name, or a name is invalid.
    #[error("invalid directory entry name {0:?}")]
    BadName(String),
    /// A CID this module cannot verify (not sha2-256) or handle.
    #[error("unsupported CID {0}")]
    UnsupportedCid(String),
    /// A block needed is not available.
    #[error("block {0} is not available")]
    Missing(String),
    /// A path does not exist in the DAG.
    #[error("no entry {0:?}")]
    NotFound(String),
    /// A path names a directory where a file is wanted, or the reverse.
    #[error("{0}")]
    WrongKind(String),
    /// The block sink failed.
    #[error("block store: {0}")]
    Sink(String),
}

/// Which of Kubo's two CID profiles to build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CidVersion {
    /// `ipfs add` (no flags): CIDv0, dag-pb leaves.
    V0,
    /// `ipfs add --cid-version=1`: CIDv1, raw leaves.
    #[default]
    V1,
}

/// An imported file or directory: its CID and cumulative size (the `Tsize`
/// a parent's link gives it: its blocks' bytes, all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The root CID.
    pub cid: Cid,
    /// Cumulative size of its blocks.
    pub tsize: u64,
    /// Content bytes (files); 0 for directories.
    pub file_size: u64,
}

/// The CID of `bytes` under `codec` in `version` (CIDv0 only for dag-pb).
pub fn cid_of(version: CidVersion, codec: u64, bytes: &[u8]) -> Cid {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    cid_from_digest(version, codec, &digest)
}

/// A CID from a sha2-256 digest.
pub fn cid_from_digest(version: CidVersion, codec: u64, digest: &[u8; 32]) -> Cid {
    #[allow(clippy::expect_used)]
    let mh = cid::multihash::Multihash::<64>::wrap(SHA2_256, digest)
        .expect("a 32-byte digest fits a 64-byte multihash");
    match version {
        CidVersion::V0 if codec == DAG_PB =>
        {
            #[allow(clippy::expect_used)]
            Cid::new_v0(mh).expect("sha2-256 is valid for CIDv0")
        }
        _ => Cid::new_v1(codec, mh),
    }
}

/// The sha2-256 digest a CID names (the key of the block store), if it is
/// one this node can verify.
pub fn digest_of(cid: &Cid) -> Result<[u8; 32], UnixfsError> {
    let mh = cid.hash();
    if mh.code() != SHA2_256 || mh.size() != 32 || !matches!(cid.codec(), DAG_PB | RAW) {
        return Err(UnixfsError::UnsupportedCid(cid.to_string()));
    }
    let mut d = [0u8; 32];
    d.copy_from_slice(mh.digest());
    Ok(d)
}

/// Whether `bytes` is the block `cid` names.
pub fn verify(cid: &Cid, bytes: &[u8]) -> Result<(), UnixfsError> {
    let d = digest_of(cid)?;
    let got: [u8; 32] = Sha256::digest(bytes).into();
    if got == d {
        Ok(())
    } else {
        Err(UnixfsError::Malformed(format!(
            "block does not hash to {cid}"
        )))
    }
}

/// Where the importer puts blocks.
pub type Sink<'a> = dyn FnMut(&Cid, &[u8]) -> Result<(), UnixfsError> + 'a;

/// Imports one file's bytes: chunks, leaves and the balanced tree over
/// them, every block to `sink`. Returns the file's entry.
pub fn import_file(
    data: &[u8],
    version: CidVersion,
    sink: &mut Sink,
) -> Result<Entry, UnixfsError> {
    // (cid, tsize, file size) of each node of the current level.
    let mut level: Vec<Entry> = Vec::with_capacity(data.len() / CHUNK_SIZE + 1);
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(CHUNK_SIZE).collect()
    };
    for chunk in chunks {
        let (cid, block) = match version {
            CidVersion::V1 => (cid_of(version, RAW, chunk), chunk.to_vec()),
            CidVersion::V0 => {
                let mut d = UnixfsData::new(DataType::File);
                d.data = Some(chunk.to_vec());
                d.filesize = Some(chunk.len() as u64);
                let node = PbNode {
                    links: vec![],
                    data: Some(d.encode()),
                };
                let b = node.encode();
                (cid_of(version, DAG_PB, &b), b)
            }
        };
        sink(&cid, &block)?;
        level.push(Entry {
            cid,
            tsize: block.len() as u64,
            file_size: chunk.len() as u64,
        });
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / MAX_FILE_LINKS + 1);
        for group in level.chunks(MAX_FILE_LINKS) {
            next.push(file_node(group, version, sink)?);
        }
        level = next;
    }
    level
        .pop()
        .ok_or_else(|| UnixfsError::Malformed("no chunk".into()))
}

fn file_node(
    children: &[Entry],
    version: CidVersion,
    sink: &mut Sink,
) -> Result<Entry, UnixfsError> {
    let mut d = UnixfsData::new(DataType::File);
    d.blocksizes = children.iter().map(|c| c.file_size).collect();
    let file_size: u64 = d.blocksizes.iter().sum();
    d.filesize = Some(file_size);
    let node = PbNode {
        links: children
            .iter()
            .map(|c| PbLink {
                hash: c.cid,
                name: Some(String::new()),
                tsize: Some(c.tsize),
            })
            .collect(),
        data: Some(d.encode()),
    };
    let block = node.encode();
    let cid = cid_of(version, DAG_PB, &block);
    sink(&cid, &block)?;
    Ok(Entry {
        cid,
        tsize: block.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
        file_size,
    })
}

/// Kubo's estimate of a directory's size, which decides sharding: the
/// sum over entries of the name's bytes plus the CID's bytes.
pub fn directory_estimate<'a>(entries: impl IntoIterator<Item = (&'a str, &'a Entry)>) -> usize {
    entries
        .into_iter()
        .map(|(n, e)| n.len() + e.cid.encoded_len())
        .sum()
}

/// Builds a basic directory over `entries` (any order: links are sorted
/// by name), its block to `sink`. Refuses a directory Kubo would shard.
pub fn import_directory(
    entries: &[(String, Entry)],
    version: CidVersion,
    sink: &mut Sink,
) -> Result<Entry, UnixfsError> {
    let estimate = directory_estimate(entries.iter().map(|(n, e)| (n.as_str(), e)));
    if estimate > SHARD_THRESHOLD {
        return Err(UnixfsError::NeedsSharding {
            entries: entries.len(),
            estimate,
        });
    }
    let mut sorted: Vec<&(String, Entry)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for w in sorted.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(UnixfsError::BadName(w[0].0.clone()));
        }
    }
    for (n, _) in &sorted {
        if n.is_empty() || n.contains('/') || n == "." || n == ".." {
            return Err(UnixfsError::BadName(n.clone()));
        }
    }
    let node = PbNode {
        links: sorted
            .iter()
            .map(|(n, e)| PbLink {
                hash: e.cid,
                name: Some(n.clone()),
                tsize: Some(e.tsize),
            })
            .collect(),
        data: Some(UnixfsData::new(DataType::Directory).encode()),
    };
    let block = node.encode();
    let cid = cid_of(version, DAG_PB, &block);
    sink(&cid, &block)?;
    Ok(Entry {
        cid,
        tsize: block.len() as u64 + sorted.iter().map(|(_, e)| e.tsize).sum::<u64>(),
        file_size: 0,
    })
}

/// A tree of files in memory (tests, small imports).
#[derive(Clone, Debug)]
pub enum Tree {
    /// A file's bytes.
    File(Vec<u8>),
    /// A directory's entries by name.
    Dir(Vec<(String, Tree)>),
}

/// Imports a [`Tree`] as `ipfs add -r` does.
pub fn import_tree(
    tree: &Tree,
    version: CidVersion,
    sink: &mut Sink,
) -> Result<Entry, UnixfsError> {
    match tree {
        Tree::File(b) => import_file(b, version, sink),
        Tree::Dir(children) => {
            let mut entries = Vec::with_capacity(children.len());
            for (name, child) in children {
                entries.push((name.clone(), import_tree(child, version, sink)?));
            }
            import_directory(&entries, version, sink)
        }
    }
}

/// Where the reader gets blocks (already verified against their CID).
pub type Source<'a> = dyn FnMut(&Cid) -> Result<Vec<u8>, UnixfsError> + 'a;

/// A decoded dag-pb UnixFS node, or a raw leaf.
pub enum Node {
    /// A raw block (a CIDv1 file chunk).
    Raw(Vec<u8>),
    /// A dag-pb node and its UnixFS data.
    Pb(PbNode, UnixfsData),
}

/// Decodes block `bytes` named by `cid`.
pub fn decode(cid: &Cid, bytes: Vec<u8>) -> Result<Node, UnixfsError> {
    match cid.codec() {
        RAW => Ok(Node::Raw(bytes)),
        DAG_PB => {
            let node = PbNode::decode(&bytes)?;
            let data = UnixfsData::decode(node.data.as_deref().unwrap_or_default())?;
            Ok(Node::Pb(node, data))
        }
        c => Err(UnixfsError::UnsupportedCid(format!("codec {c:#x}"))),
    }
}

/// The CID that `path` (names separated by `/`) leads to from directory
/// `root`. Basic directories only (HAMT shards are reported as such).
pub fn resolve(root: &Cid, path: &str, get: &mut Source) -> Result<Cid, UnixfsError> {
    let mut cur = *root;
    for name in path.split('/').filter(|s| !s.is_empty()) {
        let Node::Pb(node, data) = decode(&cur, get(&cur)?)? else {
            return Err(UnixfsError::WrongKind(format!(
                "{cur} is a file, not a directory"
            )));
        };
        match data.kind {
            DataType::Directory => {}
            DataType::HamtShard => {
                return Err(UnixfsError::WrongKind(format!(
                    "{cur} is a HAMT-sharded directory (not supported by this reader)"
                )))
            }
            _ => return Err(UnixfsError::WrongKind(format!("{cur} is not a directory"))),
        }
        cur = node
            .links
            .iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| l.hash)
            .ok_or_else(|| UnixfsError::NotFound(path.to_owned()))?;
    }
    Ok(cur)
}

/// The largest file [`read_file`] returns in one piece.
pub const MAX_READ: u64 = 64 * 1024 * 1024;

/// A file's bytes, reassembled from its DAG (checked: every node's sizes
/// must add up, depth is bounded).
pub fn read_file(cid: &Cid, get: &mut Source) -> Result<Vec<u8>, UnixfsError> {
    let mut out = Vec::new();
    let mut budget = MAX_READ_BLOCKS;
    read_into(cid, get, &mut out, 0, &mut budget)?;
    Ok(out)
}

/// The most blocks [`read_file`] visits: a 64 MiB file of 256 KiB chunks
/// has 257 blocks; a hostile DAG of empty leaves must not keep a thread.
pub const MAX_READ_BLOCKS: usize = 4096;

fn read_into(
    cid: &Cid,
    get: &mut Source,
    out: &mut Vec<u8>,
    depth: u32,
    budget: &mut usize,
) -> Result<(), UnixfsError> {
    if depth > 16 {
        return Err(UnixfsError::Malformed("file DAG deeper than 16".into()));
    }
    *budget = budget.checked_sub(1).ok_or_else(|| {
        UnixfsError::Malformed(format!("file of more than {MAX_READ_BLOCKS} blocks"))
    })?;
    match decode(cid, get(cid)?)? {
        Node::Raw(b) => append(out, &b),
        Node::Pb(node, data) => {
            if !matches!(data.kind, DataType::File | DataType::Raw) {
                return Err(UnixfsError::WrongKind(format!("{cid} is not a file")));
            }
            let start = out.len();
            if let Some(d) = &data.data {
                append(out, d)?;
            }
            if !node.links.is_empty() && node.links.len() != data.blocksizes.len() {
                return Err(UnixfsError::Malformed(format!(
                    "{cid}: {} links but {} blocksizes",
                    node.links.len(),
                    data.blocksizes.len()
                )));
            }
            if node.links.len() > 1 && data.blocksizes.contains(&0) {
                return Err(UnixfsError::Malformed(format!(
                    "{cid}: an empty chunk among several"
                )));
            }
            for (l, size) in node.links.iter().zip(&data.blocksizes) {
                let before = out.len();
                read_into(&l.hash, get, out, depth + 1, budget)?;
                if (out.len() - before) as u64 != *size {
                    return Err(UnixfsError::Malformed(format!(
                        "{}: {} bytes where its parent says {size}",
                        l.hash,
                        out.len() - before
                    )));
                }
            }
            if let Some(fs) = data.filesize {
                if (out.len() - start) as u64 != fs {
                    return Err(UnixfsError::Malformed(format!(
                        "{cid}: {} bytes where filesize says {fs}",
                        out.len() - start
                    )));
                }
            }
            Ok(())
        }
    }
}

fn append(out: &mut Vec<u8>, b: &[u8]) -> Result<(), UnixfsError> {
    if (out.len() + b.len()) as u64 > MAX_READ {
        return Err(UnixfsError::Malformed(format!(
            "file larger than {MAX_READ} bytes"
        )));
    }
    out.extend_from_slice(b);
    Ok(())
}

/// Every block of the DAG under `root`, depth first in link order, each
/// once (the order `ipfs dag export` writes a CAR in).
pub fn walk(root: &Cid, get: &mut Source, visit: &mut Sink) -> Result<(), UnixfsError> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let bytes = get(&cid)?;
        visit(&cid, &bytes)?;
        if cid.codec() == DAG_PB {
            let node = PbNode::decode(&bytes)?;
            for l in node.links.iter().rev() {
                stack.push(l.hash);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
