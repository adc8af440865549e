//! The Bitswap message (`/ipfs/bitswap/1.2.0`, also read as 1.1.0): a
//! protobuf, length-prefixed with an unsigned varint, one per frame.
//!
//! ```text
//! Message { Wantlist wantlist = 1; repeated bytes blocks = 2 (1.0.0);
//!           repeated Block payload = 3; repeated BlockPresence blockPresences = 4;
//!           int32 pendingBytes = 5; }
//! Wantlist { repeated Entry entries = 1; bool full = 2; }
//! Entry { bytes block = 1; int32 priority = 2; bool cancel = 3;
//!         WantType wantType = 4 (Block 0, Have 1); bool sendDontHave = 5; }
//! Block { bytes prefix = 1; bytes data = 2; }
//! BlockPresence { bytes cid = 1; BlockPresenceType type = 2 (Have 0, DontHave 1); }
//! ```
//!
//! The decoder skips fields it does not know (a peer's newer fields are not
//! an error), refuses frames over [`MAX_MESSAGE`] before reading them, and
//! bounds every repeated field.

use cid::Cid;

/// The largest frame read or written (Kubo's limit is 4 MiB).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// The most wantlist entries, blocks or presences one message may carry.
pub const MAX_ENTRIES: usize = 1024;

/// Errors decoding a Bitswap message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BitswapWireError {
    /// Not valid protobuf or not a valid Bitswap message.
    #[error("malformed Bitswap message: {0}")]
    Malformed(String),
    /// Over a bound.
    #[error("Bitswap message over a limit: {0}")]
    TooLarge(String),
}

fn bad(s: impl Into<String>) -> BitswapWireError {
    BitswapWireError::Malformed(s.into())
}

/// What a wantlist entry asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WantType {
    /// The block itself.
    Block,
    /// Whether the peer has it.
    Have,
}

/// One wantlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantEntry {
    /// The block wanted.
    pub cid: Cid,
    /// Priority (higher first).
    pub priority: i32,
    /// Cancels an earlier want.
    pub cancel: bool,
    /// Block or have.
    pub want_type: WantType,
    /// Ask for an explicit DONT_HAVE when the peer lacks it.
    pub send_dont_have: bool,
}

/// Block presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// The sender has the block.
    Have,
    /// The sender does not.
    DontHave,
}

/// A Bitswap message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Wantlist entries.
    pub wants: Vec<WantEntry>,
    /// The wantlist replaces the previous one.
    pub full: bool,
    /// Blocks, with the CID each was sent as (rebuilt from its prefix and
    /// its data; unverified until checked against a wanted CID).
    pub blocks: Vec<(CidPrefix, Vec<u8>)>,
    /// Presences.
    pub presences: Vec<(Cid, Presence)>,
}

/// A CID without its digest: version, codec, multihash code and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CidPrefix {
    /// CID version (0 or 1).
    pub version: u64,
    /// Multicodec.
    pub codec: u64,
    /// Multihash code.
    pub mh_code: u64,
    /// Multihash digest length.
    pub mh_len: u64,
}

impl CidPrefix {
    /// The prefix of `cid`.
    pub fn of(cid: &Cid) -> Self {
        CidPrefix {
            version: cid.version() as u64,
            codec: cid.codec(),
            mh_code: cid.hash().code(),
            mh_len: u64::from(cid.hash().size()),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![];
        for v in [self.version, self.codec, self.mh_code, self.mh_len] {
            put_varint(&mut out, v);
        }
        out
    }

    fn decode(b: &[u8]) -> Result<Self, BitswapWireError> {
        let mut pos = 0;
        let mut next = || get_varint(b, &mut pos);
        Ok(CidPrefix {
            version: next()?,
            codec: next()?,
            mh_code: next()?,
            mh_len: next()?,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, BitswapWireError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint too long"))
}

/// One protobuf field: number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates the fields of a protobuf message.
fn fields(buf: &[u8]) -> impl Iterator<Item = Result<(u64, Field<'_>), BitswapWireError>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= buf.len() {
            return None;
        }
        let r = (|| {
            let key = get_varint(buf, &mut pos)?;
            let (num, wt) = (key >> 3, key & 7);
            let f = match wt {
                0 => Field::Varint(get_varint(buf, &mut pos)?),
                2 => {
                    let len = get_varint(buf, &mut pos)? as usize;
                    let end = pos
                        .checked_add(len)
                        .filter(|e| *e <= buf.len())
                        .ok_or_else(|| bad("field runs past the end"))?;
                    let b = &buf[pos..end];
                    pos = end;
                    Field::Bytes(b)
                }
                1 | 5 => {
                    let n = if wt == 1 { 8 } else { 4 };
                    if pos + n > buf.len() {
                        return Err(bad("truncated fixed field"));
                    }
                    pos += n;
                    Field::Fixed
                }
                w => return Err(bad(format!("wire type {w}"))),
            };
            Ok((num, f))
        })();
        if r.is_err() {
            pos = buf.len();
        }
        Some(r)
    })
}

fn cid_from(b: &[u8]) -> Result<Cid, BitswapWireError> {
    Cid::try_from(b).map_err(|e| bad(format!("bad CID: {e}")))
}

fn put_field(out: &mut Vec<u8>, num: u64, bytes: &[u8]) {
    put_varint(out, num << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, num: u64, v: u64) {
    put_varint(out, num << 3);
    put_varint(out, v);
}

impl Message {
    /// Protobuf bytes (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![];
        if !self.wants.is_empty() || self.full {
            let mut wl = vec![];
            for w in &self.wants {
                let mut e = vec![];
                put_field(&mut e, 1, &w.cid.to_bytes());
                put_uint(&mut e, 2, w.priority as u32 as u64);
                if w.cancel {
                    put_uint(&mut e, 3, 1);
                }
                if w.want_type == WantType::Have {
                    put_uint(&mut e, 4, 1);
                }
                if w.send_dont_have {
                    put_uint(&mut e, 5, 1);
                }
                put_field(&mut wl, 1, &e);
            }
            if self.full {
                put_uint(&mut wl, 2, 1);
            }
            put_field(&mut out, 1, &wl);
        }
        for (prefix, data) in &self.blocks {
            let mut b = vec![];
            put_field(&mut b, 1, &prefix.encode());
            put_field(&mut b, 2, data);
            put_field(&mut out, 3, &b);
        }
        for (cid, p) in &self.presences {
            let mut b = vec![];
            put_field(&mut b, 1, &cid.to_bytes());
            put_uint(&mut b, 2, if *p == Presence::DontHave { 1 } else { 0 });
            put_field(&mut out, 4, &b);
        }
        out
    }

    /// Decodes one message (without its length prefix).
    pub fn decode(buf: &[u8]) -> Result<Self, BitswapWireError> {
        if buf.len() > MAX_MESSAGE {
            return Err(BitswapWireError::TooLarge(format!("{} bytes", buf.len())));
        }
        let mut m = Message::default();
        let mut count = 0usize;
        let mut bump = || {
            count += 1;
            if count > MAX_ENTRIES * 3 {
                Err(BitswapWireError::TooLarge(format!(
                    "more than {} entries",
                    MAX_ENTRIES * 3
                )))
            } else {
                Ok(())
            }
        };
        for f in fields(buf) {
            match f? {
                (1, Field::Bytes(wl)) => {
                    for f in fields(wl) {
                        match f? {
                            (1, Field::Bytes(e)) => {
                                bump()?;
                                m.wants.push(decode_entry(e)?);
                            }
                            (2, Field::Varint(v)) => m.full = v != 0,
                            _ => {}
                        }
                    }
                }
                (2, Field::Bytes(data)) => {
                    // Bitswap 1.0.0: a CIDv0 block.
                    bump()?;
                    m.blocks.push((
                        CidPrefix {
                            version: 0,
                            codec: 0x70,
                            mh_code: 0x12,
                            mh_len: 32,
                        },
                        data.to_vec(),
                    ));
                }
                (3, Field::Bytes(b)) => {
                    bump()?;
                    let mut prefix = None;
                    let mut data = None;
                    for f in fields(b) {
                        match f? {
                            (1, Field::Bytes(p)) => prefix = Some(CidPrefix::decode(p)?),
                            (2, Field::Bytes(d)) => data = Some(d.to_vec()),
                            _ => {}
                        }
                    }
                    m.blocks.push((
                        prefix.ok_or_else(|| bad("block without a prefix"))?,
                        data.unwrap_or_default(),
                    ));
                }
                (4, Field::Bytes(b)) => {
                    bump()?;
                    let mut cid = None;
                    let mut p = Presence::Have;
                    for f in fields(b) {
                        match f? {
                            (1, Field::Bytes(c)) => cid = Some(cid_from(c)?),
                            (2, Field::Varint(v)) => {
                                p = if v == 1 {
                                    Presence::DontHave
                                } else {
                                    Presence::Have
                                }
                            }
                            _ => {}
                        }
                    }
                    m.presences
                        .push((cid.ok_or_else(|| bad("presence without a CID"))?, p));
                }
                _ => {}
            }
        }
        Ok(m)
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.wants.is_empty() && self.blocks.is_empty() && self.presences.is_empty() && !self.full
    }
}

fn decode_entry(e: &[u8]) -> Result<WantEntry, BitswapWireError> {
    let mut w = WantEntry {
        cid: Cid::default(),
        priority: 1,
        cancel: false,
        want_type: WantType::Block,
        send_dont_have: false,
    };
    let mut cid = None;
    for f in fields(e) {
        match f? {
            (1, Field::Bytes(c)) => cid = Some(cid_from(c)?),
            (2, Field::Varint(v)) => w.priority = v as i32,
            (3, Field::Varint(v)) => w.cancel = v != 0,
            (4, Field::Varint(v)) => {
                w.want_type = if v == 1 {
                    WantType::Have
                } else {
                    WantType::Block
                }
            }
            (5, Field::Varint(v)) => w.send_dont_have = v != 0,
            _ => {}
        }
    }
    w.cid = cid.ok_or_else(|| bad("want without a CID"))?;
    Ok(w)
}

/// The CID a received block claims to be: its prefix plus the hash of its
/// data (sha2-256 only; other hashes are refused).
pub fn block_cid(prefix: &CidPrefix, data: &[u8]) -> Result<Cid, BitswapWireError> {
    use sha2::Digest;
    if prefix.mh_code != 0x12 || prefix.mh_len != 32 {
        return Err(bad(format!(
            "multihash {:#x}/{} is not sha2-256",
            prefix.mh_code, prefix.mh_len
        )));
    }
    let digest = sha2::Sha256::digest(data);
    let mh =
        cid::multihash::Multihash::<64>::wrap(0x12, &digest).map_err(|e| bad(e.to_string()))?;
    match prefix.version {
        0 if prefix.codec == 0x70 => Cid::new_v0(mh).map_err(|e| bad(e.to_string())),
        1 => Ok(Cid::new_v1(prefix.codec, mh)),
        v => Err(bad(format!(
            "CID version {v} with codec {:#x}",
            prefix.codec
        ))),
    }
}

/// Appends `m` as a length-prefixed frame.
pub fn frame(m: &Message) -> Vec<u8> {
    let body = m.encode();
    let mut out = Vec::with_capacity(body.len() + 5);
    put_varint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}
