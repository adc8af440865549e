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
        parts: vec![],
    }
    .sign(key)
    .expect("the key is the stream's creator and the fields are in range");
    Chunk { header, payload }
}

/// A segment of `stream` at `seq` published as `pieces` (LL-HLS parts of
/// 250 ms each, the first independent), all signed by `key`: the parts
/// and the segment chunk that lists them (its payload is the pieces in
/// order).
pub fn signed_parts(
    key: &SigningKey,
    stream: &StreamId,
    seq: u64,
    pieces: &[&[u8]],
) -> (Vec<crate::protocols::live::core::Part>, Chunk) {
    use crate::protocols::live::core::Part;
    use crate::protocols::live::wire::{PartHeader, PartInfo};
    let mut parts = vec![];
    let mut infos = vec![];
    for (i, piece) in pieces.iter().enumerate() {
        let payload = Bytes::copy_from_slice(piece);
        let header = PartHeader {
            stream: stream.clone(),
            seq,
            index: i as u16,
            independent: i == 0,
            duration_us: 250_000,
            target_us: 250_000,
            cid: ChunkCid::of(&payload),
            size: payload.len() as u32,
            published_at_ms: 0,
            discontinuity: false,
            epoch: None,
        }
        .sign(key)
        .expect("the key is the stream's creator and the fields are in range");
        infos.push(PartInfo {
            size: payload.len() as u32,
            duration_us: 250_000,
            independent: i == 0,
        });
        parts.push(Part { header, payload });
    }
    let payload = Bytes::from(pieces.concat());
    let header = ChunkHeader {
        stream: stream.clone(),
        seq,
        duration_us: 250_000 * pieces.len() as u32,
        cid: ChunkCid::of(&payload),
        size: payload.len() as u32,
        published_at_ms: 0,
        discontinuity: false,
        epoch: None,
        parts: infos,
    }
    .sign(key)
    .expect("the key is the stream's creator and the fields are in range");
    (parts, Chunk { header, payload })
}

/// A chat user for tests: a key (from a seed byte), its proof of work, and
/// its message counter.
pub struct ChatUser {
    /// Its key.
    pub key: SigningKey,
    /// The key's proof of work.
    pub pow: u64,
    /// The last counter it used.
    pub seq: u64,
}

impl ChatUser {
    /// A user whose key is 32 times `seed`.
    pub fn new(seed: u8) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let pow = crate::protocols::chat::wire::find_pow(&key.verifying_key().to_bytes());
        ChatUser { key, pow, seq: 0 }
    }

    /// Its public key.
    pub fn id(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Its next message in `stream`'s chat, sent at `at_ms`.
    pub fn say(
        &mut self,
        stream: &StreamId,
        at_ms: u64,
        text: &str,
    ) -> crate::protocols::chat::SignedChatMessage {
        self.say_with(stream, at_ms, text, None)
    }

    /// Its follow of `creator` made at `at_ms`.
    pub fn follow_op(
        &self,
        creator: [u8; 32],
        at_ms: u64,
    ) -> crate::protocols::social::SignedFollowOp {
        crate::protocols::social::FollowOp {
            follower: self.id(),
            creator,
            follow: true,
            at_ms,
        }
        .sign(&self.key)
        .expect("a valid test follow")
    }

    /// Its next message, carrying `follow` (its follow of the creator).
    pub fn say_with(
        &mut self,
        stream: &StreamId,
        at_ms: u64,
        text: &str,
        follow: Option<crate::protocols::social::SignedFollowOp>,
    ) -> crate::protocols::chat::SignedChatMessage {
        self.seq += 1;
        crate::protocols::chat::ChatMessage {
            stream: stream.clone(),
            sender: self.id(),
            seq: self.seq,
            sent_ms: at_ms,
            text: text.into(),
            pow: self.pow,
            follow: follow.map(Box::new),
            pass: None,
        }
        .sign(&self.key)
        .expect("a valid test message")
    }

    /// A moderation action by it in `stream`'s chat, issued at `at_ms`.
    pub fn act(
        &self,
        stream: &StreamId,
        at_ms: u64,
        kind: crate::protocols::chat::ModKind,
    ) -> crate::protocols::chat::SignedModAction {
        crate::protocols::chat::ModAction {
            stream: stream.clone(),
            issuer: self.id(),
            issued_ms: at_ms,
            kind,
        }
        .sign(&self.key)
        .expect("a valid test action")
    }
}

/// A social user for tests: a key from a seed byte, and signed records.
pub struct SocialUser {
    /// Its key.
    pub key: SigningKey,
}

impl SocialUser {
    /// A user whose key is 32 times `seed`.
    pub fn new(seed: u8) -> Self {
        SocialUser {
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// Its public key.
    pub fn id(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Its profile record, version `version` (unix ms), valid for a day.
    pub fn profile(&self, version: u64, name: &str) -> crate::protocols::social::SocialRecord {
        crate::protocols::social::SocialRecord::Profile(
            crate::protocols::social::Profile {
                creator: self.id(),
                version,
                expires_ms: version + 24 * 3600 * 1000,
                name: name.into(),
                bio: String::new(),
                avatar: None,
            }
            .sign(&self.key)
            .expect("a valid test profile"),
        )
    }

    /// Its signed follow (or unfollow) of `creator` at `at_ms`.
    pub fn op(
        &self,
        creator: [u8; 32],
        follow: bool,
        at_ms: u64,
    ) -> crate::protocols::social::SignedFollowOp {
        crate::protocols::social::FollowOp {
            follower: self.id(),
            creator,
            follow,
            at_ms,
        }
        .sign(&self.key)
        .expect("a valid test operation")
    }

    /// Its follows record holding `ops`.
    pub fn follows(
        &self,
        ops: Vec<crate::protocols::social::SignedFollowOp>,
    ) -> crate::protocols::social::SocialRecord {
        crate::protocols::social::SocialRecord::Follows {
            subject: self.id(),
            ops,
        }
    }
}
