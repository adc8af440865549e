//! Messages of the key protocol (`/vilokanam/keys/2`), framed on a key
//! session ([`super::session`]), postcard-encoded and size-capped.

use serde::{Deserialize, Serialize};

use super::paywall::{SealedKey, SEALED_KEY_LEN};
use crate::protocols::live::wire::{Sig, StreamId, WireError};

/// Largest encoded key request.
pub const MAX_KEY_REQUEST: usize = 512;
/// Largest encoded key response.
pub const MAX_KEY_RESPONSE: usize = 512;
/// Longest reason text in a refusal.
pub const MAX_REASON: usize = 200;

/// A payment carried by a key request: the viewer's latest voucher to the
/// stream's payee on its channel (the payee and the chain are the ones the
/// stream's signed offer names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Cumulative amount owed to the payee.
    pub cumulative: u128,
    /// The voucher's ed25519 signature (by the channel's voucher key).
    pub signature: Sig,
}

/// "Give me the key of `epoch` of `stream`; I pay on `channel`."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// The paid stream.
    pub stream: StreamId,
    /// The epoch whose key is wanted.
    pub epoch: u64,
    /// The viewer's channel (its voucher key is the one the key is sealed to).
    pub channel: u64,
    /// The latest voucher, if the viewer has paid anything yet.
    pub payment: Option<Payment>,
    /// The viewer's chat key, for a pass with the key (paid-viewers-only
    /// chats ask for one).
    pub holder: Option<[u8; 32]>,
}

/// Why a key was not given. Each reason is distinct, so the viewer's node
/// can say precisely what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRefusal {
    /// This node serves no keys for that stream (not paid, not its own,
    /// ended).
    #[error("this node serves no keys for that stream")]
    NotServed,
    /// The epoch is outside the window served (too old, or not yet begun).
    #[error("epoch {epoch} is outside the served window {first}..={last}")]
    EpochOutOfRange {
        /// Epoch asked for.
        epoch: u64,
        /// First epoch served.
        first: u64,
        /// Last epoch served.
        last: u64,
    },
    /// The viewer's vouchers do not cover the epochs it already has.
    #[error("paid {paid} but {required} is due for the epochs already given")]
    Unpaid {
        /// What the next key needs paid.
        required: u128,
        /// What the viewer's best voucher pays.
        paid: u128,
    },
    /// The voucher was refused (wrong chain, payee, channel, signature,
    /// an older one, over the deposit...): the reason says which.
    #[error("voucher refused: {0}")]
    BadVoucher(String),
    /// The channel is unknown, closed, not for this payee, or expires too
    /// soon to be claimed.
    #[error("channel refused: {0}")]
    BadChannel(String),
    /// The node is serving as many viewers as it may; try later.
    #[error("the key server is at its limit of viewers")]
    Busy,
}

impl KeyRefusal {
    /// A `BadVoucher` with its reason cut to [`MAX_REASON`].
    pub fn bad_voucher(reason: impl std::fmt::Display) -> Self {
        KeyRefusal::BadVoucher(cut(reason.to_string()))
    }

    /// A `BadChannel` with its reason cut to [`MAX_REASON`].
    pub fn bad_channel(reason: impl std::fmt::Display) -> Self {
        KeyRefusal::BadChannel(cut(reason.to_string()))
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The sealed key on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSealedKey {
    /// Ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// Encrypted epoch key and tag.
    #[serde(with = "serde_bytes_fixed")]
    pub sealed: [u8; SEALED_KEY_LEN],
}

impl From<SealedKey> for WireSealedKey {
    fn from(k: SealedKey) -> Self {
        WireSealedKey {
            ephemeral: k.ephemeral,
            sealed: k.sealed,
        }
    }
}

impl From<WireSealedKey> for SealedKey {
    fn from(k: WireSealedKey) -> Self {
        SealedKey {
            ephemeral: k.ephemeral,
            sealed: k.sealed,
        }
    }
}

/// The answer to a [`KeyRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyResponse {
    /// The key, sealed to the channel's voucher key.
    Granted {
        /// Its epoch.
        epoch: u64,
        /// The sealed key.
        key: WireSealedKey,
        /// The creator's pass for the request's `holder` (when it named
        /// one): it pays for the stream until the pass's time.
        pass: Option<crate::protocols::chat::wire::SignedViewerPass>,
    },
    /// No key, and why.
    Refused(KeyRefusal),
}

mod serde_bytes_fixed {
    use super::SEALED_KEY_LEN;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; SEALED_KEY_LEN], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; SEALED_KEY_LEN], D::Error> {
        let v: &[u8] = <&[u8]>::deserialize(d)?;
        v.try_into()
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"48 bytes"))
    }
}

/// Encodes a request, refusing one over [`MAX_KEY_REQUEST`].
pub fn encode_request(r: &KeyRequest) -> Result<Vec<u8>, WireError> {
    encode(r, MAX_KEY_REQUEST)
}

/// Decodes and validates a request.
pub fn decode_request(b: &[u8]) -> Result<KeyRequest, WireError> {
    let r: KeyRequest = decode(b, MAX_KEY_REQUEST)?;
    r.stream.validate()?;
    Ok(r)
}

/// Encodes a response, refusing one over [`MAX_KEY_RESPONSE`].
pub fn encode_response(r: &KeyResponse) -> Result<Vec<u8>, WireError> {
    encode(r, MAX_KEY_RESPONSE)
}

/// Decodes a response.
pub fn decode_response(b: &[u8]) -> Result<KeyResponse, WireError> {
    let r: KeyResponse = decode(b, MAX_KEY_RESPONSE)?;
    if let KeyResponse::Refused(KeyRefusal::BadVoucher(s) | KeyRefusal::BadChannel(s)) = &r {
        if s.len() > MAX_REASON {
            return Err(WireError::Field {
                field: "reason",
                reason: format!("{} bytes, at most {MAX_REASON}", s.len()),
            });
        }
    }
    Ok(r)
}

fn encode<T: Serialize>(v: &T, limit: usize) -> Result<Vec<u8>, WireError> {
    let b = postcard::to_stdvec(v).map_err(|e| WireError::Malformed(e.to_string()))?;
    if b.len() > limit {
        return Err(WireError::TooLarge {
            len: b.len(),
            limit,
        });
    }
    Ok(b)
}

fn decode<'a, T: Deserialize<'a>>(b: &'a [u8], limit: usize) -> Result<T, WireError> {
    if b.is_empty() {
        return Err(WireError::Empty);
    }
    if b.len() > limit {
        return Err(WireError::TooLarge {
            len: b.len(),
            limit,
        });
    }
    let (v, rest) =
        postcard::take_from_bytes(b).map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    Ok(v)
}
