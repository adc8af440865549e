//! The paywall's cryptography, IO-less: epoch keys, payload encryption and
//! keys sealed to one viewer.
//!
//! - **Epoch keys.** A paid stream has a secret only its creator (or a node
//!   it delegates to) holds. The key of epoch `e` is
//!   `HKDF-SHA256(ikm = secret, salt = stream, info = "vilokanam/paywall/1/epoch" ++ e)`:
//!   one key says nothing about another, so a viewer that paid for epoch
//!   `e` learns nothing about `e + 1`.
//! - **Payloads** are sealed with ChaCha20-Poly1305 under their epoch's
//!   key; the nonce is the chunk's sequence number (unique per stream: the
//!   publisher never reuses one), and the associated data binds stream,
//!   sequence and epoch, so a ciphertext cannot be replayed at another
//!   position. The CID addresses the ciphertext: relays verify and forward
//!   what they cannot read.
//! - **Sealed keys.** An epoch key travels only sealed to the viewer's
//!   voucher key (the ed25519 key its channel names), converted to X25519:
//!   the creator draws an ephemeral X25519 key, derives a one-time key with
//!   HKDF from the Diffie-Hellman secret, the stream and the epoch, and
//!   encrypts the 32-byte epoch key with it. Only the payer of the channel
//!   can open it, whoever carries it (the creator, or later a delegate).
//!
//! Secrets and keys have no `Debug` output, so they cannot reach a log.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::protocols::live::wire::StreamId;

/// Bytes the AEAD adds to a payload.
pub const TAG_LEN: usize = 16;
/// Length of a sealed epoch key: the key plus the AEAD tag.
pub const SEALED_KEY_LEN: usize = 32 + TAG_LEN;

const EPOCH_INFO: &[u8] = b"vilokanam/paywall/1/epoch";
const PAYLOAD_AAD: &[u8] = b"vilokanam/paywall/1/payload";
const PART_AAD: &[u8] = b"vilokanam/paywall/1/part";
const SEAL_INFO: &[u8] = b"vilokanam/paywall/1/seal";
const SECRET_INFO: &[u8] = b"vilokanam/paywall/1/stream-secret";

/// The epoch a chunk published at `unix_ms` belongs to, for epochs of
/// `epoch_secs`: wall-clock epochs, so they never repeat across restarts
/// and every node agrees on which epoch is current.
pub fn epoch_at(unix_ms: u64, epoch_secs: u32) -> u64 {
    unix_ms / (u64::from(epoch_secs.max(1)) * 1000)
}

/// Why a payload or a sealed key does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaywallError {
    /// The payload does not open with this epoch's key at this position
    /// (wrong key, wrong epoch or sequence, or tampered bytes).
    #[error("payload of chunk {seq} does not decrypt with the key of epoch {epoch}")]
    Payload {
        /// Chunk sequence number.
        seq: u64,
        /// Epoch tried.
        epoch: u64,
    },
    /// Shorter than the AEAD tag: cannot be a sealed payload.
    #[error("sealed payload of {0} bytes is shorter than the {TAG_LEN}-byte tag")]
    TooShort(usize),
    /// The sealed key is not for this viewer, stream or epoch, or was
    /// tampered with.
    #[error("sealed key for epoch {0} does not open with this node's voucher key")]
    SealedKey(u64),
    /// The viewer's voucher key is not a valid curve point.
    #[error("the viewer's voucher key is not a valid ed25519 public key")]
    BadViewerKey,
}

/// A paid stream's secret, from which every epoch key derives. Held by the
/// creator's node only.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamSecret([u8; 32]);

impl StreamSecret {
    /// The secret from 32 random bytes (the caller draws them: cores do no IO).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StreamSecret(bytes)
    }

    /// The secret of `stream`, derived from its creator's signing key: the
    /// same across restarts without storing anything, and never on the
    /// wire (a delegate would get epoch keys or this secret sealed to it).
    pub fn derive(creator: &SigningKey, stream: &StreamId) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(&stream_bytes(stream)), creator.as_bytes());
        let mut okm = [0u8; 32];
        let _ = hk.expand(SECRET_INFO, &mut okm);
        StreamSecret(okm)
    }

    /// The raw bytes, to store the secret (never to log it).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key of `epoch` of `stream`.
    pub fn epoch_key(&self, stream: &StreamId, epoch: u64) -> EpochKey {
        let hk = Hkdf::<Sha256>::new(Some(&stream_bytes(stream)), &self.0);
        let mut info = EPOCH_INFO.to_vec();
        info.extend_from_slice(&epoch.to_le_bytes());
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
        let _ = hk.expand(&info, &mut okm);
        EpochKey(okm)
    }
}

impl std::fmt::Debug for StreamSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSecret(..)")
    }
}

/// The content key of one epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct EpochKey([u8; 32]);

impl EpochKey {
    /// A key from its bytes (as opened from a [`SealedKey`]).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EpochKey(bytes)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

fn stream_bytes(stream: &StreamId) -> Vec<u8> {
    let mut b = stream.creator.to_vec();
    b.extend_from_slice(stream.name.as_bytes());
    b
}

fn payload_aad(stream: &StreamId, seq: u64, epoch: u64) -> Vec<u8> {
    let mut aad = PAYLOAD_AAD.to_vec();
    aad.extend_from_slice(&stream_bytes(stream));
    aad.extend_from_slice(&seq.to_le_bytes());
    aad.extend_from_slice(&epoch.to_le_bytes());
    aad
}

fn payload_nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n
}

/// The nonce of part `index` of chunk `seq`: never a whole chunk's (whose
/// bytes 8..10 are zero), never another part's.
fn part_nonce(seq: u64, index: u16) -> [u8; 12] {
    let mut n = payload_nonce(seq);
    n[8..10].copy_from_slice(&(0x8000 | index).to_le_bytes());
    n
}

fn part_aad(stream: &StreamId, seq: u64, index: u16, epoch: u64) -> Vec<u8> {
    let mut aad = PART_AAD.to_vec();
    aad.extend_from_slice(&stream_bytes(stream));
    aad.extend_from_slice(&seq.to_le_bytes());
    aad.extend_from_slice(&index.to_le_bytes());
    aad.extend_from_slice(&epoch.to_le_bytes());
    aad
}

/// Encrypts part `index` (LL-HLS) of chunk `seq` of `stream` in `epoch`:
/// `plaintext.len() + TAG_LEN` bytes. A chunk published as parts is its
/// parts' ciphertexts in order, so relays assemble and check it unread.
pub fn seal_part(
    key: &EpochKey,
    stream: &StreamId,
    seq: u64,
    index: u16,
    epoch: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    seal(
        key,
        &part_nonce(seq, index),
        &part_aad(stream, seq, index, epoch),
        plaintext,
    )
}

/// Decrypts what [`seal_part`] made, or says why not.
pub fn open_part(
    key: &EpochKey,
    stream: &StreamId,
    seq: u64,
    index: u16,
    epoch: u64,
    ciphertext: &[u8],
) -> Result<Vec<u8>, PaywallError> {
    open(
        key,
        &part_nonce(seq, index),
        &part_aad(stream, seq, index, epoch),
        ciphertext,
    )
    .map_err(|e| e.unwrap_or(PaywallError::Payload { seq, epoch }))
}

/// Decrypts chunk `seq` published as parts of `sizes` ciphertext bytes
/// each: every part opened on its own, the plaintexts in order.
pub fn open_parts(
    key: &EpochKey,
    stream: &StreamId,
    seq: u64,
    epoch: u64,
    sizes: impl IntoIterator<Item = usize>,
    ciphertext: &[u8],
) -> Result<Vec<u8>, PaywallError> {
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut at = 0usize;
    for (index, size) in sizes.into_iter().enumerate() {
        let part = ciphertext
            .get(at..at.saturating_add(size))
            .ok_or(PaywallError::TooShort(ciphertext.len()))?;
        out.extend(open_part(key, stream, seq, index as u16, epoch, part)?);
        at += size;
    }
    if at != ciphertext.len() {
        return Err(PaywallError::Payload { seq, epoch });
    }
    Ok(out)
}

/// Encrypts chunk `seq` of `stream` in `epoch`: `plaintext.len() + TAG_LEN` bytes.
pub fn seal_payload(
    key: &EpochKey,
    stream: &StreamId,
    seq: u64,
    epoch: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    seal(
        key,
        &payload_nonce(seq),
        &payload_aad(stream, seq, epoch),
        plaintext,
    )
}

/// ChaCha20-Poly1305 encryption under `key` (cannot fail with a valid key
/// and an in-memory buffer).
fn seal(key: &EpochKey, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    key.cipher()
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// Decrypts what [`seal`] made: `Err(Some(_))` for a ciphertext shorter
/// than a tag, `Err(None)` when it does not open.
fn open(
    key: &EpochKey,
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, Option<PaywallError>> {
    if ciphertext.len() < TAG_LEN {
        return Err(Some(PaywallError::TooShort(ciphertext.len())));
    }
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| None)
}

/// Decrypts what [`seal_payload`] made, or says why not.
pub fn open_payload(
    key: &EpochKey,
    stream: &StreamId,
    seq: u64,
    epoch: u64,
    ciphertext: &[u8],
) -> Result<Vec<u8>, PaywallError> {
    open(
        key,
        &payload_nonce(seq),
        &payload_aad(stream, seq, epoch),
        ciphertext,
    )
    .map_err(|e| e.unwrap_or(PaywallError::Payload { seq, epoch }))
}

/// An epoch key sealed to one viewer's voucher key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedKey {
    /// The sender's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The epoch key, encrypted (with its tag).
    pub sealed: [u8; SEALED_KEY_LEN],
}

fn seal_cipher(
    shared: &[u8; 32],
    viewer: &[u8; 32],
    stream: &StreamId,
    epoch: u64,
) -> ChaCha20Poly1305 {
    let hk = Hkdf::<Sha256>::new(Some(viewer), shared);
    let mut info = SEAL_INFO.to_vec();
    info.extend_from_slice(&stream_bytes(stream));
    info.extend_from_slice(&epoch.to_le_bytes());
    let mut k = [0u8; 32];
    let _ = hk.expand(&info, &mut k);
    ChaCha20Poly1305::new(Key::from_slice(&k))
}

/// Seals `key` (of `epoch` of `stream`) to the viewer whose voucher key is
/// `viewer`. `ephemeral` is 32 fresh random bytes, drawn by the caller.
pub fn seal_key(
    key: &EpochKey,
    viewer: &VerifyingKey,
    stream: &StreamId,
    epoch: u64,
    ephemeral: [u8; 32],
) -> SealedKey {
    let secret = x25519_dalek::StaticSecret::from(ephemeral);
    let their = x25519_dalek::PublicKey::from(viewer.to_montgomery().to_bytes());
    let shared = secret.diffie_hellman(&their);
    let cipher = seal_cipher(shared.as_bytes(), &viewer.to_bytes(), stream, epoch);
    let ct = cipher
        .encrypt(Nonce::from_slice(&[0u8; 12]), key.0.as_slice())
        .unwrap_or_default();
    let mut sealed = [0u8; SEALED_KEY_LEN];
    if ct.len() == SEALED_KEY_LEN {
        sealed.copy_from_slice(&ct);
    }
    SealedKey {
        ephemeral: x25519_dalek::PublicKey::from(&secret).to_bytes(),
        sealed,
    }
}

/// Opens a key sealed to this node's voucher key.
pub fn open_key(
    sealed: &SealedKey,
    voucher_key: &SigningKey,
    stream: &StreamId,
    epoch: u64,
) -> Result<EpochKey, PaywallError> {
    let secret = x25519_dalek::StaticSecret::from(voucher_key.to_scalar_bytes());
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(sealed.ephemeral));
    let viewer = voucher_key.verifying_key().to_bytes();
    let cipher = seal_cipher(shared.as_bytes(), &viewer, stream, epoch);
    let pt = cipher
        .decrypt(Nonce::from_slice(&[0u8; 12]), sealed.sealed.as_slice())
        .map_err(|_| PaywallError::SealedKey(epoch))?;
    let mut k = [0u8; 32];
    if pt.len() != 32 {
        return Err(PaywallError::SealedKey(epoch));
    }
    k.copy_from_slice(&pt);
    Ok(EpochKey(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream() -> StreamId {
        StreamId::new([3; 32], "paid").unwrap()
    }

    #[test]
    fn parts_are_sealed_each_on_its_own_and_never_open_as_another() {
        let secret = StreamSecret::from_bytes([9; 32]);
        let s = stream();
        let k = secret.epoch_key(&s, 5);
        let pieces: [&[u8]; 3] = [b"first", b"second part", b"3"];
        let sealed: Vec<Vec<u8>> = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| seal_part(&k, &s, 40, i as u16, 5, p))
            .collect();
        for (i, (ct, p)) in sealed.iter().zip(pieces).enumerate() {
            assert_eq!(ct.len(), p.len() + TAG_LEN);
            assert_eq!(open_part(&k, &s, 40, i as u16, 5, ct).unwrap(), p);
            assert!(
                open_part(&k, &s, 40, i as u16 + 1, 5, ct).is_err(),
                "other index"
            );
            assert!(
                open_part(&k, &s, 41, i as u16, 5, ct).is_err(),
                "other segment"
            );
            assert!(
                open_part(&k, &s, 40, i as u16, 6, ct).is_err(),
                "other epoch"
            );
            assert!(
                open_payload(&k, &s, 40, 5, ct).is_err(),
                "a part is not a chunk"
            );
        }
        // Same plaintext at the same place as a whole chunk: other bytes
        // (another nonce), so no keystream is ever reused.
        assert_ne!(seal_payload(&k, &s, 40, 5, pieces[0]), sealed[0]);
        // The segment is the parts' ciphertexts in order.
        let whole = sealed.concat();
        let sizes = sealed.iter().map(Vec::len);
        assert_eq!(
            open_parts(&k, &s, 40, 5, sizes.clone(), &whole).unwrap(),
            pieces.concat()
        );
        assert!(open_parts(&k, &s, 40, 5, sizes.clone(), &whole[1..]).is_err());
        let mut swapped = sealed.clone();
        swapped.swap(0, 1);
        let sizes2 = swapped.iter().map(Vec::len);
        assert!(
            open_parts(&k, &s, 40, 5, sizes2, &swapped.concat()).is_err(),
            "order is bound"
        );
        let mut longer = whole.clone();
        longer.push(0);
        assert!(
            open_parts(&k, &s, 40, 5, sizes, &longer).is_err(),
            "trailing bytes"
        );
    }

    #[test]
    fn payloads_round_trip_and_refuse_any_other_position_or_key() {
        let secret = StreamSecret::from_bytes([9; 32]);
        let s = stream();
        let k5 = secret.epoch_key(&s, 5);
        let ct = seal_payload(&k5, &s, 40, 5, b"frames");
        assert_eq!(ct.len(), 6 + TAG_LEN);
        assert_ne!(&ct[..6], b"frames", "encrypted");
        assert_eq!(open_payload(&k5, &s, 40, 5, &ct).unwrap(), b"frames");
        let k6 = secret.epoch_key(&s, 6);
        assert_eq!(
            open_payload(&k6, &s, 40, 5, &ct),
            Err(PaywallError::Payload { seq: 40, epoch: 5 })
        );
        assert!(open_payload(&k5, &s, 41, 5, &ct).is_err(), "other position");
        assert!(open_payload(&k5, &s, 40, 6, &ct).is_err(), "other epoch");
        let other = StreamId::new([3; 32], "other").unwrap();
        assert!(
            open_payload(&k5, &other, 40, 5, &ct).is_err(),
            "other stream"
        );
        assert_eq!(
            open_payload(&k5, &s, 40, 5, &ct[..3]),
            Err(PaywallError::TooShort(3))
        );
    }

    #[test]
    fn the_derived_secret_is_stable_and_per_stream() {
        let creator = SigningKey::from_bytes(&[1; 32]);
        let s = stream();
        assert_eq!(
            StreamSecret::derive(&creator, &s),
            StreamSecret::derive(&creator, &s)
        );
        let other = StreamId::new([3; 32], "other").unwrap();
        assert_ne!(
            StreamSecret::derive(&creator, &s),
            StreamSecret::derive(&creator, &other)
        );
        assert_eq!(epoch_at(11_999, 6), 1);
        assert_eq!(epoch_at(12_000, 6), 2);
    }

    #[test]
    fn epoch_keys_differ_by_epoch_stream_and_secret() {
        let s = stream();
        let a = StreamSecret::from_bytes([1; 32]);
        let b = StreamSecret::from_bytes([2; 32]);
        assert_ne!(a.epoch_key(&s, 1), a.epoch_key(&s, 2));
        assert_ne!(a.epoch_key(&s, 1), b.epoch_key(&s, 1));
        let other = StreamId::new([3; 32], "paid2").unwrap();
        assert_ne!(a.epoch_key(&s, 1), a.epoch_key(&other, 1));
        assert_eq!(a.epoch_key(&s, 1), a.epoch_key(&s, 1), "deterministic");
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_viewer_stream_and_epoch() {
        let s = stream();
        let key = StreamSecret::from_bytes([4; 32]).epoch_key(&s, 7);
        let viewer = SigningKey::from_bytes(&[5; 32]);
        let sealed = seal_key(&key, &viewer.verifying_key(), &s, 7, [6; 32]);
        assert_eq!(open_key(&sealed, &viewer, &s, 7).unwrap(), key);
        let thief = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            open_key(&sealed, &thief, &s, 7),
            Err(PaywallError::SealedKey(7))
        );
        assert!(open_key(&sealed, &viewer, &s, 8).is_err(), "other epoch");
        let mut tampered = sealed.clone();
        tampered.sealed[0] ^= 1;
        assert!(open_key(&tampered, &viewer, &s, 7).is_err());
        assert!(!format!("{key:?}{:?}", StreamSecret::from_bytes([4; 32])).contains('4'));
    }

    proptest! {
        #[test]
        fn any_payload_round_trips_and_any_flipped_bit_is_refused(
            data in proptest::collection::vec(any::<u8>(), 0..2_000),
            seq in any::<u64>(),
            epoch in any::<u64>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let s = stream();
            let key = StreamSecret::from_bytes([7; 32]).epoch_key(&s, epoch);
            let mut ct = seal_payload(&key, &s, seq, epoch, &data);
            prop_assert_eq!(open_payload(&key, &s, seq, epoch, &ct).unwrap(), data);
            let i = flip.index(ct.len());
            ct[i] ^= 0x80;
            prop_assert!(open_payload(&key, &s, seq, epoch, &ct).is_err());
        }
    }
}
