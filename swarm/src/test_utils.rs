//! Helpers for tests and benches (feature `test-utils`; never a dependency
//! of production code).

use bytes::Bytes;
use ed25519_dalek::SigningKey;

use crate::protocols::live::core::Chunk;
use crate::protocols::live::wire::{ChunkCid, ChunkHeader, StreamId};

/// A chunk of `stream` at `seq` carrying `payload`, signed by `key` (the
/// stream's creator), 1 s long.
pub fn signed_chunk(key: &SigningKey, stream: &StreamId, seq: u64, payload: Bytes) -> Chunk {
    let header = ChunkHeader {
        stream: stream.clone(),
        seq,
        duration_us: 1_000_000,
        cid: ChunkCid::of(&payload),
        size: payload.len() as u32,
        published_at_ms: 0,
        discontinuity: false,
        epoch: None,
    }
    .sign(key)
    .expect("the key is the stream's creator and the fields are in range");
    Chunk { header, payload }
}
