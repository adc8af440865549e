//! Signs a chunk header the way a creator's node does and verifies it the
//! way every relay does: `cargo run -p vilokanam-examples --example sign_chunk`.

use ed25519_dalek::SigningKey;
use vilokanam_swarm::wire::GossipMessage;
use vilokanam_swarm::{ChunkCid, ChunkHeader, StreamId};

fn main() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let payload = b"one keyframe-aligned MPEG-TS segment";
    let stream = StreamId::new(key.verifying_key().to_bytes(), "demo").expect("valid name");
    let signed = ChunkHeader {
        stream: stream.clone(),
        seq: 0,
        duration_us: 1_000_000,
        cid: ChunkCid::of(payload),
        size: payload.len() as u32,
        published_at_ms: 0,
        discontinuity: false,
        epoch: None,
        parts: vec![],
    }
    .sign(&key)
    .expect("header is valid");
    let wire = GossipMessage::Chunk(signed.clone()).encode();
    println!("stream  {stream}");
    println!("cid     {}", signed.header.cid);
    println!("header  {} bytes on the wire", wire.len());
    signed.verify().expect("signature verifies");
    signed.check_payload(payload).expect("payload matches CID");
    println!("verified: signature and payload CID");
}
