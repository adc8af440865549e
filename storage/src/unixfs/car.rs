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
    let mut pos = 0;
    let hlen = get_varint(buf, &mut pos)? as usize;
    let hend = pos
        .checked_add(hlen)
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| UnixfsError::Malformed("CAR header runs past the end".into()))?;
    let h = &buf[pos..hend];
    // Only the shape `header` writes (one root, version 1).
    let root = (|| {
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
    .ok_or_else(|| UnixfsError::Malformed("CAR header is not {roots: [cid], version: 1}".into()))?;
    pos = hend;
    let mut blocks = vec![];
    while pos < buf.len() {
        let len = get_varint(buf, &mut pos)? as usize;
        if len > MAX_BLOCK + 100 {
            return Err(UnixfsError::Malformed(format!(
                "CAR section of {len} bytes"
            )));
        }
        let end = pos
            .checked_add(len)
            .filter(|e| *e <= buf.len())
            .ok_or_else(|| UnixfsError::Malformed("CAR section runs past the end".into()))?;
        let mut r = &buf[pos..end];
        let cid = Cid::read_bytes(&mut r)
            .map_err(|e| UnixfsError::Malformed(format!("CAR section CID: {e}")))?;
        verify(&cid, r)?;
        blocks.push((cid, r.to_vec()));
        pos = end;
    }
    Ok((root, blocks))
}
