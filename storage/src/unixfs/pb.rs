//! The two protobuf messages of UnixFS, encoded byte for byte as Kubo
//! (go-codec-dagpb, boxo) and js-ipfs (`@ipld/dag-pb`, `ipfs-unixfs`) encode
//! them, and decoded strictly: dag-pb's `PBNode { Links, Data }` and the
//! UnixFS `Data` message inside it.
//!
//! Canonical dag-pb: links first (field 2), then data (field 1); a link is
//! `Hash` (1), `Name` (2), `Tsize` (3), in that order. The decoder accepts
//! only that canonical form (what every IPFS implementation writes), with
//! bounded lengths, so a hostile block cannot make it allocate without end.

use cid::Cid;

use super::UnixfsError;

/// One link of a dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbLink {
    /// The child's CID.
    pub hash: Cid,
    /// The link's name (empty for a file's chunks, the entry name in a
    /// directory).
    pub name: Option<String>,
    /// The child's cumulative size: its block plus everything below it.
    pub tsize: Option<u64>,
}

/// A dag-pb node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbNode {
    /// Links, in the order they are encoded.
    pub links: Vec<PbLink>,
    /// The payload (a UnixFS `Data` message for UnixFS nodes).
    pub data: Option<Vec<u8>>,
}

/// The UnixFS node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    /// Raw bytes (old leaves).
    Raw = 0,
    /// A basic directory.
    Directory = 1,
    /// A file (a leaf with data, or a node over its chunks).
    File = 2,
    /// Metadata (unused).
    Metadata = 3,
    /// A symbolic link.
    Symlink = 4,
    /// A HAMT-sharded directory.
    HamtShard = 5,
}

impl DataType {
    fn from_u64(v: u64) -> Result<Self, UnixfsError> {
        Ok(match v {
            0 => Self::Raw,
            1 => Self::Directory,
            2 => Self::File,
            3 => Self::Metadata,
            4 => Self::Symlink,
            5 => Self::HamtShard,
            _ => return Err(UnixfsError::Malformed(format!("unknown UnixFS type {v}"))),
        })
    }
}

/// The UnixFS `Data` message (without mode and mtime, which our importer
/// never writes and the decoder skips).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixfsData {
    /// Node type.
    pub kind: DataType,
    /// Inline bytes (a leaf's content; a HAMT shard's bitfield).
    pub data: Option<Vec<u8>>,
    /// Total file size (files).
    pub filesize: Option<u64>,
    /// Each child's file size (a file node over chunks).
    pub blocksizes: Vec<u64>,
    /// Hash function of a HAMT shard.
    pub hash_type: Option<u64>,
    /// Fanout of a HAMT shard.
    pub fanout: Option<u64>,
}

impl UnixfsData {
    /// A message of `kind` with nothing else set.
    pub fn new(kind: DataType) -> Self {
        UnixfsData {
            kind,
            data: None,
            filesize: None,
            blocksizes: vec![],
            hash_type: None,
            fanout: None,
        }
    }
}

/// The most links a node may have for the decoder (a 1 MiB block of the
/// smallest links holds ~25,000; Kubo's files have 174, directories stay
/// under 256 KiB of links).
pub const MAX_LINKS: usize = 32_768;

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, UnixfsError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| UnixfsError::Malformed("truncated varint".into()))?;
        *pos += 1;
        if i == 9 && b > 1 {
            return Err(UnixfsError::Malformed("varint overflows 64 bits".into()));
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(UnixfsError::Malformed("varint not minimal".into()));
            }
            return Ok(v);
        }
    }
    Err(UnixfsError::Malformed("varint too long".into()))
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn get_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], UnixfsError> {
    let len = get_varint(buf, pos)?;
    let len = usize::try_from(len).map_err(|_| UnixfsError::Malformed("length overflow".into()))?;
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| UnixfsError::Malformed(format!("field of {len} bytes runs past the end")))?;
    let out = &buf[*pos..end];
    *pos = end;
    Ok(out)
}

impl PbNode {
    /// Canonical dag-pb bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.links {
            let mut link = Vec::new();
            put_bytes(&mut link, 0x0a, &l.hash.to_bytes());
            if let Some(name) = &l.name {
                put_bytes(&mut link, 0x12, name.as_bytes());
            }
            if let Some(t) = l.tsize {
                link.push(0x18);
                put_varint(&mut link, t);
            }
            put_bytes(&mut out, 0x12, &link);
        }
        if let Some(d) = &self.data {
            put_bytes(&mut out, 0x0a, d);
        }
        out
    }

    /// Decodes canonical dag-pb bytes (links, then at most one data field).
    pub fn decode(buf: &[u8]) -> Result<Self, UnixfsError> {
        let mut node = PbNode::default();
        let mut pos = 0;
        while pos < buf.len() {
            let tag = buf[pos];
            pos += 1;
            match tag {
                0x12 if node.data.is_none() => {
                    if node.links.len() >= MAX_LINKS {
                        return Err(UnixfsError::Malformed(format!(
                            "more than {MAX_LINKS} links"
                        )));
                    }
                    let link = get_bytes(buf, &mut pos)?;
                    node.links.push(decode_link(link)?);
                }
                0x12 => return Err(UnixfsError::Malformed("link after data".into())),
                0x0a if node.data.is_none() => {
                    node.data = Some(get_bytes(buf, &mut pos)?.to_vec());
                }
                0x0a => return Err(UnixfsError::Malformed("two data fields".into())),
                t => {
                    return Err(UnixfsError::Malformed(format!(
                        "unexpected dag-pb field tag {t:#04x}"
                    )))
                }
            }
        }
        Ok(node)
    }
}

fn decode_link(buf: &[u8]) -> Result<PbLink, UnixfsError> {
    let mut pos = 0;
    let mut hash = None;
    let mut name = None;
    let mut tsize = None;
    let mut last = 0u8;
    while pos < buf.len() {
        let tag = buf[pos];
        pos += 1;
        let field = tag >> 3;
        if field <= last {
            return Err(UnixfsError::Malformed(
                "link fields repeated or out of order".into(),
            ));
        }
        last = field;
        match tag {
            0x0a => {
                let b = get_bytes(buf, &mut pos)?;
                hash = Some(
                    Cid::try_from(b)
                        .map_err(|e| UnixfsError::Malformed(format!("bad link CID: {e}")))?,
                );
            }
            0x12 => {
                let b = get_bytes(buf, &mut pos)?;
                name = Some(
                    String::from_utf8(b.to_vec())
                        .map_err(|_| UnixfsError::Malformed("link name is not UTF-8".into()))?,
                );
            }
            0x18 => tsize = Some(get_varint(buf, &mut pos)?),
            t => {
                return Err(UnixfsError::Malformed(format!(
                    "unexpected link field tag {t:#04x}"
                )))
            }
        }
    }
    Ok(PbLink {
        hash: hash.ok_or_else(|| UnixfsError::Malformed("link without a hash".into()))?,
        name,
        tsize,
    })
}

impl UnixfsData {
    /// The protobuf bytes, fields in ascending order as Kubo writes them
    /// (no data field when the data is empty; blocksizes not packed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0x08];
        put_varint(&mut out, self.kind as u64);
        if let Some(d) = self.data.as_deref().filter(|d| !d.is_empty()) {
            put_bytes(&mut out, 0x12, d);
        }
        if let Some(s) = self.filesize {
            out.push(0x18);
            put_varint(&mut out, s);
        }
        for b in &self.blocksizes {
            out.push(0x20);
            put_varint(&mut out, *b);
        }
        if let Some(h) = self.hash_type {
            out.push(0x28);
            put_varint(&mut out, h);
        }
        if let Some(f) = self.fanout {
            out.push(0x30);
            put_varint(&mut out, f);
        }
        out
    }

    /// Decodes a UnixFS `Data` message (mode and mtime are skipped).
    pub fn decode(buf: &[u8]) -> Result<Self, UnixfsError> {
        let mut pos = 0;
        let mut kind = None;
        let mut out = UnixfsData::new(DataType::Raw);
        while pos < buf.len() {
            let tag = buf[pos];
            pos += 1;
            match tag {
                0x08 => kind = Some(DataType::from_u64(get_varint(buf, &mut pos)?)?),
                0x12 => out.data = Some(get_bytes(buf, &mut pos)?.to_vec()),
                0x18 => out.filesize = Some(get_varint(buf, &mut pos)?),
                0x20 => {
                    if out.blocksizes.len() >= MAX_LINKS {
                        return Err(UnixfsError::Malformed("too many blocksizes".into()));
                    }
                    out.blocksizes.push(get_varint(buf, &mut pos)?)
                }
                // Packed blocksizes (legal protobuf, written by some).
                0x22 => {
                    let packed = get_bytes(buf, &mut pos)?;
                    let mut p = 0;
                    while p < packed.len() {
                        if out.blocksizes.len() >= MAX_LINKS {
                            return Err(UnixfsError::Malformed("too many blocksizes".into()));
                        }
                        out.blocksizes.push(get_varint(packed, &mut p)?);
                    }
                }
                0x28 => out.hash_type = Some(get_varint(buf, &mut pos)?),
                0x30 => out.fanout = Some(get_varint(buf, &mut pos)?),
                // mode (varint), mtime (message)
                0x38 => {
                    get_varint(buf, &mut pos)?;
                }
                0x42 => {
                    get_bytes(buf, &mut pos)?;
                }
                t => {
                    return Err(UnixfsError::Malformed(format!(
                        "unexpected UnixFS field tag {t:#04x}"
                    )))
                }
            }
        }
        out.kind =
            kind.ok_or_else(|| UnixfsError::Malformed("UnixFS data without a type".into()))?;
        Ok(out)
    }
}
