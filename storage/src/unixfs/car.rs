//! CARv1 (content-addressed archive): the file `ipfs dag import` takes and
//! `ipfs dag export` writes. A header (DAG-CBOR `{roots: [CID], version: 1}`,
//! varint-length-prefixed), then each block as `varint(len) CID bytes`.

use cid::Cid;

use super::pb::{get_varint, put_varint};
use super::{verify, UnixfsError, MAX_BLOCK};

/// The CARv1 header naming `root`, with its length prefix.
pub fn header(root: &Cid) -> Vec<u8> {
    let cid = root.to_bytes();
    // DAG-CBOR: map(2) { "roots": [tag 42 (bytes 0x00 ‖ cid)], "version": 1 },
    // keys in length-then-bytes order.
    let mut h = vec![0xa2, 0x65];
    h.extend_from_slice(b"roots");
    h.extend_from_slice(&[0x81, 0xd8, 0x2a]);
    let n = cid.len() + 1;
    if n < 24 {
        h.push(0x40 | n as u8);
    } else {
        h.push(0x58);
        h.push(n as u8);
    }
    h.push(0x00);
    h.extend_from_slice(&cid);
    h.push(0x67);
    h.extend_from_slice(b"version");
    h.push(0x01);
    let mut out = Vec::with_capacity(h.len() + 2);
    put_varint(&mut out, h.len() as u64);
    out.extend_from_slice(&h);
    out
}

/// One block section of a CAR.
pub fn section(cid: &Cid, data: &[u8]) -> Vec<u8> {
    let c = cid.to_bytes();
    let mut out = Vec::with_capacity(c.len() + data.len() + 4);
    put_varint(&mut out, (c.len() + data.len()) as u64);
    out.extend_from_slice(&c);
    out.extend_from_slice(data);
    out
}

/// Blocks read from a CAR, in file order.
pub type CarBlocks = Vec<(Cid, Vec<u8>)>;

/// Reads a CARv1 with one root: returns the root and every block, each
/// verified against its CID.
pub fn read(buf: &[u8]) -> Result<(Cid, CarBlocks), UnixfsError> {
    let mut r = Reader::default();
    let blocks = r.push(buf)?;
    let root = r.finish()?;
    Ok((root, blocks))
}

/// An incremental CARv1 reader: bytes in as they come (an HTTP body), each
/// block out once whole, verified against its CID. Memory: one block.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
    root: Option<Cid>,
}

/// Parses a varint at the start of `b`: `None` if incomplete.
fn peek_varint(b: &[u8]) -> Result<Option<(u64, usize)>, UnixfsError> {
    let mut pos = 0;
    match get_varint(b, &mut pos) {
        Ok(v) => Ok(Some((v, pos))),
        Err(_) if b.len() < 10 && b.iter().all(|x| x & 0x80 != 0) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Reader {
    /// The root, once the header is read.
    pub fn root(&self) -> Option<Cid> {
        self.root
    }

    /// Feeds bytes; returns the blocks completed by them.
    pub fn push(&mut self, data: &[u8]) -> Result<CarBlocks, UnixfsError> {
        self.buf.extend_from_slice(data);
        let mut out = vec![];
        let mut pos = 0;
        while let Some((len, n)) = peek_varint(&self.buf[pos..])? {
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= MAX_BLOCK + 100)
                .ok_or_else(|| UnixfsError::Malformed(format!("CAR section of {len} bytes")))?;
            if self.buf.len() - pos - n < len {
                break;
            }
            let body = &self.buf[pos + n..pos + n + len];
            if self.root.is_none() {
                self.root = Some(parse_header(body)?);
            } else {
                let mut r = body;
                let cid = Cid::read_bytes(&mut r)
                    .map_err(|e| UnixfsError::Malformed(format!("CAR section CID: {e}")))?;
                verify(&cid, r)?;
                out.push((cid, r.to_vec()));
            }
            pos += n + len;
        }
        self.buf.drain(..pos);
        Ok(out)
    }

    /// Ends the input: the root, or why the CAR is incomplete.
    pub fn finish(self) -> Result<Cid, UnixfsError> {
        if !self.buf.is_empty() {
            return Err(UnixfsError::Malformed(format!(
                "CAR ends in the middle of a section ({} bytes left)",
                self.buf.len()
            )));
        }
        self.root
            .ok_or_else(|| UnixfsError::Malformed("CAR without a header".into()))
    }
}

/// Only the header shape [`header`] writes (one root, version 1).
fn parse_header(h: &[u8]) -> Result<Cid, UnixfsError> {
    (|| {
        let rest = h
            .strip_prefix(&[0xa2, 0x65][..])?
            .strip_prefix(&b"roots"[..])?;
        let rest = rest.strip_prefix(&[0x81, 0xd8, 0x2a][..])?;
        let (n, rest) = match rest.first()? {
            b @ 0x40..=0x57 => ((b - 0x40) as usize, &rest[1..]),
            0x58 => (*rest.get(1)? as usize, &rest[2..]),
            _ => return None,
        };
        let cid_bytes = rest.get(..n)?.strip_prefix(&[0u8][..])?;
        let tail = &rest[n..];
        if tail != [&[0x67][..], b"version", &[0x01]].concat() {
            return None;
        }
        Cid::try_from(cid_bytes).ok()
    })()
    .ok_or_else(|| UnixfsError::Malformed("CAR header is not {roots: [cid], version: 1}".into()))
}
