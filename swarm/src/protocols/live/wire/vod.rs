//! VOD announcements: a creator's signed record that a finished stream is
//! a VOD, with its root CID (the UnixFS directory `ipfs add -r
//! --cid-version=1` makes of its files) and what it is. They travel on the
//! announce topic, so every node learns which VODs exist and from whom.
//!
//! The signature is the one the creator's node stores with its VOD record
//! (`vilokanam_storage::VodRecord::signing_bytes`, the same bytes): a node
//! that heard a VOD keeps the creator's record as signed, and anyone can
//! check it later. The root travels as text, and only in its canonical
//! form (CIDv1, base32), so the signed bytes are unambiguous.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use super::{field, verify, Sig, StreamId, WireError, MAX_PRICE_PER_SEC, MAX_TITLE};

/// Longest root CID text (a CIDv1 sha2-256 in base32 is 59 characters).
pub const MAX_ROOT: usize = 100;
/// Most segments a VOD may claim (1,000 directories of 1,000).
pub const MAX_VOD_SEGMENTS: u64 = 1_000_000;
/// Longest VOD a record may claim (1,000,000 segments of the longest
/// segment).
pub const MAX_VOD_DURATION_MS: u64 =
    MAX_VOD_SEGMENTS * vilokanam_media::limits::MAX_SEGMENT_DURATION.as_millis() as u64;

/// What a creator says about one of its VODs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VodAnnouncement {
    /// The stream it was recorded from (names the creator).
    pub stream: StreamId,
    /// Root CID, canonical text (CIDv1 dag-pb, base32).
    pub root: String,
    /// Title.
    pub title: String,
    /// Total duration (ms).
    pub duration_ms: u64,
    /// Segments.
    pub segments: u64,
    /// Bytes of all its blocks.
    pub bytes: u64,
    /// When it was built (unix ms).
    pub created_ms: u64,
    /// Planck per second watched; 0 for a free VOD.
    pub price_per_sec: u128,
}

impl VodAnnouncement {
    /// Checks every field's range and the root's form (not the signature).
    pub fn validate(&self) -> Result<(), WireError> {
        self.stream.validate()?;
        if self.title.len() > MAX_TITLE {
            return Err(field("vod.title", format!("longer than {MAX_TITLE} bytes")));
        }
        if self.root.len() > MAX_ROOT {
            return Err(field("vod.root", format!("longer than {MAX_ROOT} bytes")));
        }
        let cid: cid::Cid = self
            .root
            .parse()
            .map_err(|e| field("vod.root", format!("not a CID: {e}")))?;
        if cid.version() != cid::Version::V1 || cid.to_string() != self.root {
            return Err(field(
                "vod.root",
                "not a CIDv1 in base32 (its canonical text)",
            ));
        }
        if self.segments == 0 || self.segments > MAX_VOD_SEGMENTS {
            return Err(field(
                "vod.segments",
                format!("{} not in 1..={MAX_VOD_SEGMENTS}", self.segments),
            ));
        }
        if self.duration_ms > MAX_VOD_DURATION_MS {
            return Err(field(
                "vod.duration_ms",
                format!("above {MAX_VOD_DURATION_MS} ms"),
            ));
        }
        if self.price_per_sec > MAX_PRICE_PER_SEC {
            return Err(field(
                "vod.price_per_sec",
                format!("above the {MAX_PRICE_PER_SEC} planck/s limit"),
            ));
        }
        Ok(())
    }

    /// What the creator signs: exactly the bytes its node signs for its
    /// stored VOD record (a domain tag, the texts length-prefixed, the
    /// numbers big-endian; the price only when there is one).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let creator = hex::encode(self.stream.creator);
        let stream = self.stream.to_string();
        let mut b = b"vilokanam/vod/1\0".to_vec();
        for s in [&self.root, &stream, &creator, &self.title] {
            b.extend_from_slice(&(s.len() as u64).to_be_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        for n in [self.duration_ms, self.segments, self.bytes, self.created_ms] {
            b.extend_from_slice(&n.to_be_bytes());
        }
        if self.price_per_sec > 0 {
            b.extend_from_slice(b"price");
            b.extend_from_slice(&self.price_per_sec.to_be_bytes());
        }
        b
    }

    /// Signs with the creator's key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedVodAnnouncement, WireError> {
        if key.verifying_key().to_bytes() != self.stream.creator {
            return Err(field(
                "vod.stream.creator",
                "does not match the signing key",
            ));
        }
        self.validate()?;
        let signature = Sig(key.sign(&self.signing_bytes()).to_bytes());
        Ok(SignedVodAnnouncement {
            vod: self,
            signature,
            sent_ms: 0,
        })
    }
}

/// A VOD announcement with the creator's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVodAnnouncement {
    /// The signed record.
    pub vod: VodAnnouncement,
    /// ed25519 signature by `vod.stream.creator` over
    /// [`VodAnnouncement::signing_bytes`].
    pub signature: Sig,
    /// When the creator's node sent it (unix ms; not signed, trusted for
    /// nothing). Gossip ids are content hashes and gossipsub drops a
    /// message it saw in the last minute, so each announcement round of a
    /// VOD must differ; what a relay forwards is limited by root
    /// (`AnnounceConfig::vod_min_interval`), so a changed copy gains
    /// nothing.
    pub sent_ms: u64,
}

impl SignedVodAnnouncement {
    /// Checks field ranges and the creator's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.vod.validate()?;
        verify(
            &self.vod.stream.creator,
            &self.vod.signing_bytes(),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::GossipMessage;
    use super::*;

    fn vod(key: &SigningKey) -> VodAnnouncement {
        VodAnnouncement {
            stream: StreamId::new(key.verifying_key().to_bytes(), "show").unwrap(),
            root: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
            title: "a show".into(),
            duration_ms: 10_000,
            segments: 10,
            bytes: 1_000_000,
            created_ms: 1_700_000_000_000,
            price_per_sec: 0,
        }
    }

    #[test]
    fn a_signed_vod_round_trips_and_a_forgery_or_bad_field_is_refused() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let signed = vod(&key).sign(&key).unwrap();
        signed.verify().unwrap();
        let bytes = GossipMessage::Vod(signed.clone()).encode();
        assert_eq!(
            GossipMessage::decode(&bytes).unwrap(),
            GossipMessage::Vod(signed.clone())
        );

        // Any field changed after signing: the signature no longer holds.
        let mut forged = signed.clone();
        forged.vod.price_per_sec = 1;
        assert_eq!(forged.verify(), Err(WireError::BadSignature));
        let mut forged = signed.clone();
        forged.vod.title = "another show".into();
        assert_eq!(forged.verify(), Err(WireError::BadSignature));
        // Signed by someone else for this creator's stream.
        let other = SigningKey::from_bytes(&[5; 32]);
        assert!(vod(&key).sign(&other).is_err());
        let mut stolen = signed.clone();
        stolen.signature = Sig(other.sign(&signed.vod.signing_bytes()).to_bytes());
        assert_eq!(stolen.verify(), Err(WireError::BadSignature));

        let bad = |f: fn(&mut VodAnnouncement), what: &str| {
            let mut v = vod(&key);
            f(&mut v);
            let e = v.clone().sign(&key).unwrap_err();
            assert!(e.to_string().contains(what), "{e} (wanted {what})");
            // Also on the wire: decoding refuses it.
            let unsigned = SignedVodAnnouncement {
                vod: v,
                signature: Sig([0; 64]),
                sent_ms: 0,
            };
            let e = GossipMessage::decode(&GossipMessage::Vod(unsigned).encode()).unwrap_err();
            assert!(e.to_string().contains(what), "{e} (wanted {what})");
        };
        // A free VOD signs what the first version of the record signed; a
        // paid one signs its price too.
        let free = vod(&key).signing_bytes();
        let paid = VodAnnouncement {
            price_per_sec: 9,
            ..vod(&key)
        }
        .signing_bytes();
        assert!(paid.starts_with(&free) && paid != free);

        bad(|v| v.title = "x".repeat(MAX_TITLE + 1), "vod.title");
        bad(|v| v.root = "not a cid".into(), "vod.root");
        bad(|v| v.root = "x".repeat(MAX_ROOT + 1), "vod.root");
        // CIDv0 and another base are not the canonical text.
        bad(
            |v| v.root = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n".into(),
            "vod.root",
        );
        bad(
            |v| v.root = "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7".into(),
            "vod.root",
        );
        bad(|v| v.segments = 0, "vod.segments");
        bad(|v| v.segments = MAX_VOD_SEGMENTS + 1, "vod.segments");
        bad(
            |v| v.duration_ms = MAX_VOD_DURATION_MS + 1,
            "vod.duration_ms",
        );
        bad(
            |v| v.price_per_sec = MAX_PRICE_PER_SEC + 1,
            "vod.price_per_sec",
        );
    }
}
