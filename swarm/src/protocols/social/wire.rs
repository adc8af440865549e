//! Social records: profiles and follow operations, signed by the key they
//! are about, stored on the Kademlia DHT and pushed on the social topic.
//!
//! Three kinds of record, each under a key derived from one ed25519 key
//! (its *subject*, [`RecordKey`]):
//!
//! - **profile** of a creator: one signed, versioned [`Profile`] (the
//!   newest version wins; a record is at most [`MAX_PROFILE_RECORD`]
//!   bytes, IPNS's limit, and carries its expiry);
//! - **follows** of a user: every [`FollowOp`] the user signed, one per
//!   creator, merged as a last-writer-wins element set (a CRDT): a node
//!   that holds a stale copy adds what it knows instead of overwriting;
//! - **followers** of a creator: the same operations indexed by the
//!   creator they name, so that anyone can count a creator's followers
//!   from signatures they can check.
//!
//! Every field is checked on decode, and every signature before a record is
//! stored or forwarded ([`super::core`]).

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::protocols::live::wire::{
    decode_versioned, encode_versioned, field, signing_bytes, verify, Sig, WireError,
};

/// The gossipsub topic on which nodes push the records they publish.
pub const SOCIAL_TOPIC: &str = "/vilokanam/social/1";
/// Largest profile record (IPNS's record limit).
pub const MAX_PROFILE_RECORD: usize = 10 * 1024;
/// Largest follows or followers record.
pub const MAX_FOLLOW_RECORD: usize = 64 * 1024;
/// Most operations in one follows or followers record (one per creator,
/// or per follower): 400 × ~140 bytes stays under [`MAX_FOLLOW_RECORD`].
pub const MAX_FOLLOW_OPS: usize = 400;
/// Largest record of any kind (the DHT store's value cap).
pub const MAX_RECORD: usize = MAX_FOLLOW_RECORD;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 50;
/// Longest bio, in characters.
pub const MAX_BIO_CHARS: usize = 300;
/// Longest avatar CID text.
pub const MAX_AVATAR_CID: usize = 128;
/// Longest life of a profile record: its creator's node signs it again
/// before then (republishing).
pub const MAX_PROFILE_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// How far in the future a timestamp may be (clock skew).
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

const DOMAIN_PROFILE: &[u8] = b"vilokanam/profile/v1\0";
const DOMAIN_FOLLOW: &[u8] = b"vilokanam/follow-op/v1\0";
const KEY_PREFIX: &str = "/vilokanam/social/1/";

/// Which record of a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordKind {
    /// A creator's profile.
    Profile,
    /// The creators a user follows.
    Follows,
    /// The users who follow a creator.
    Followers,
}

impl RecordKind {
    fn as_str(self) -> &'static str {
        match self {
            RecordKind::Profile => "profile",
            RecordKind::Follows => "follows",
            RecordKind::Followers => "followers",
        }
    }

    /// The size limit of records of this kind.
    pub fn limit(self) -> usize {
        match self {
            RecordKind::Profile => MAX_PROFILE_RECORD,
            RecordKind::Follows | RecordKind::Followers => MAX_FOLLOW_RECORD,
        }
    }
}

/// The DHT key of a record: its kind and the key it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// Which record.
    pub kind: RecordKind,
    /// The ed25519 key it is about (the creator of a profile, the follower
    /// of a follows record, the creator of a followers record).
    pub subject: [u8; 32],
}

impl RecordKey {
    /// The key's bytes on the DHT: `/vilokanam/social/1/<kind>/<hex key>`.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{KEY_PREFIX}{}/{}",
            self.kind.as_str(),
            hex::encode(self.subject)
        )
        .into_bytes()
    }

    /// Parses DHT key bytes; `None` for anything that is not one of ours.
    pub fn from_bytes(b: &[u8]) -> Option<RecordKey> {
        let s = std::str::from_utf8(b).ok()?.strip_prefix(KEY_PREFIX)?;
        let (kind, key) = s.split_once('/')?;
        let kind = match kind {
            "profile" => RecordKind::Profile,
            "follows" => RecordKind::Follows,
            "followers" => RecordKind::Followers,
            _ => return None,
        };
        if key.len() != 64 || key.bytes().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let mut subject = [0u8; 32];
        hex::decode_to_slice(key, &mut subject).ok()?;
        Some(RecordKey { kind, subject })
    }
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), hex::encode(self.subject))
    }
}

/// A creator's public profile, as the creator signs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The creator's key (whose signature it carries).
    pub creator: [u8; 32],
    /// Version: the unix ms of the edit, strictly increasing per creator.
    pub version: u64,
    /// After this (unix ms) the record is refused; at most
    /// [`MAX_PROFILE_TTL_MS`] after `version`.
    pub expires_ms: u64,
    /// Display name (at most [`MAX_NAME_CHARS`] characters).
    pub name: String,
    /// Bio (at most [`MAX_BIO_CHARS`] characters).
    pub bio: String,
    /// The avatar image's CID (UnixFS file), fetched from peers and checked
    /// against it.
    pub avatar: Option<String>,
}

fn check_text(
    name: &'static str,
    s: &str,
    max: usize,
    allow_newlines: bool,
) -> Result<(), WireError> {
    if s.chars().count() > max {
        return Err(field(name, format!("longer than {max} characters")));
    }
    if s.chars()
        .any(|c| c.is_control() && !(allow_newlines && c == '\n'))
    {
        return Err(field(name, "contains control characters"));
    }
    Ok(())
}

impl Profile {
    /// Checks every field's range (not the signature, not the clock).
    pub fn validate(&self) -> Result<(), WireError> {
        if self.name.trim().is_empty() {
            return Err(field("profile.name", "empty"));
        }
        check_text("profile.name", &self.name, MAX_NAME_CHARS, false)?;
        check_text("profile.bio", &self.bio, MAX_BIO_CHARS, true)?;
        if let Some(a) = &self.avatar {
            if a.len() > MAX_AVATAR_CID {
                return Err(field("profile.avatar", "CID text too long"));
            }
            let cid: cid::Cid = a
                .parse()
                .map_err(|e| field("profile.avatar", format!("not a CID: {e}")))?;
            if cid.version() != cid::Version::V1 {
                return Err(field("profile.avatar", "not a CIDv1"));
            }
        }
        if self.expires_ms <= self.version {
            return Err(field("profile.expires_ms", "not after the version"));
        }
        if self.expires_ms - self.version > MAX_PROFILE_TTL_MS {
            return Err(field(
                "profile.expires_ms",
                "more than 30 days after the version",
            ));
        }
        Ok(())
    }

    /// Signs with the creator's key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedProfile, WireError> {
        if key.verifying_key().to_bytes() != self.creator {
            return Err(field("profile.creator", "does not match the signing key"));
        }
        self.validate()?;
        let signature = Sig(key.sign(&signing_bytes(DOMAIN_PROFILE, &self)).to_bytes());
        Ok(SignedProfile {
            profile: self,
            signature,
        })
    }
}

/// A profile with its creator's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedProfile {
    /// The signed profile.
    pub profile: Profile,
    /// ed25519 by `profile.creator`.
    pub signature: Sig,
}

impl SignedProfile {
    /// Checks field ranges and the creator's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.profile.validate()?;
        verify(
            &self.profile.creator,
            &signing_bytes(DOMAIN_PROFILE, &self.profile),
            &self.signature,
        )
    }
}

/// One follow or unfollow, as the follower signs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FollowOp {
    /// The follower's key (whose signature it carries).
    pub follower: [u8; 32],
    /// The creator followed or unfollowed.
    pub creator: [u8; 32],
    /// Follow (`true`) or unfollow (`false`).
    pub follow: bool,
    /// When (unix ms); per (follower, creator), the newest operation wins.
    pub at_ms: u64,
}

impl FollowOp {
    /// Signs with the follower's key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedFollowOp, WireError> {
        if key.verifying_key().to_bytes() != self.follower {
            return Err(field("follow.follower", "does not match the signing key"));
        }
        if self.follower == self.creator {
            return Err(field("follow.creator", "a key cannot follow itself"));
        }
        let signature = Sig(key.sign(&signing_bytes(DOMAIN_FOLLOW, &self)).to_bytes());
        Ok(SignedFollowOp {
            op: self,
            signature,
        })
    }
}

/// A follow operation with its follower's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedFollowOp {
    /// The signed operation.
    pub op: FollowOp,
    /// ed25519 by `op.follower`.
    pub signature: Sig,
}

impl SignedFollowOp {
    /// Checks the follower's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        if self.op.follower == self.op.creator {
            return Err(field("follow.creator", "a key cannot follow itself"));
        }
        verify(
            &self.op.follower,
            &signing_bytes(DOMAIN_FOLLOW, &self.op),
            &self.signature,
        )
    }

    /// Whether `self` wins over `other` for the same (follower, creator):
    /// the later one; at the same instant an unfollow; then the larger
    /// signature (any fixed rule makes every node pick the same).
    pub fn wins_over(&self, other: &SignedFollowOp) -> bool {
        (self.op.at_ms, !self.op.follow, self.signature.0)
            > (other.op.at_ms, !other.op.follow, other.signature.0)
    }
}

/// A social record: what is stored under a [`RecordKey`] and pushed on the
/// social topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocialRecord {
    /// A creator's profile.
    Profile(SignedProfile),
    /// Operations by one follower (`subject`), at most one per creator.
    Follows {
        /// The follower.
        subject: [u8; 32],
        /// Its operations, sorted by creator.
        ops: Vec<SignedFollowOp>,
    },
    /// Operations naming one creator (`subject`), at most one per follower.
    Followers {
        /// The creator.
        subject: [u8; 32],
        /// The operations, sorted by follower.
        ops: Vec<SignedFollowOp>,
    },
}

impl SocialRecord {
    /// The key it is stored under.
    pub fn key(&self) -> RecordKey {
        match self {
            SocialRecord::Profile(p) => RecordKey {
                kind: RecordKind::Profile,
                subject: p.profile.creator,
            },
            SocialRecord::Follows { subject, .. } => RecordKey {
                kind: RecordKind::Follows,
                subject: *subject,
            },
            SocialRecord::Followers { subject, .. } => RecordKey {
                kind: RecordKind::Followers,
                subject: *subject,
            },
        }
    }

    /// The operations of a follows or followers record (empty for a
    /// profile).
    pub fn ops(&self) -> &[SignedFollowOp] {
        match self {
            SocialRecord::Profile(_) => &[],
            SocialRecord::Follows { ops, .. } | SocialRecord::Followers { ops, .. } => ops,
        }
    }

    /// Encodes (version byte, postcard).
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Decodes, checking the size limit of the largest kind first and the
    /// kind's own limit after (not the signatures: [`super::core`]).
    pub fn decode(bytes: &[u8]) -> Result<SocialRecord, WireError> {
        let r: SocialRecord = decode_versioned(bytes, MAX_RECORD)?;
        let limit = r.key().kind.limit();
        if bytes.len() > limit {
            return Err(WireError::TooLarge {
                len: bytes.len(),
                limit,
            });
        }
        Ok(r)
    }
}
