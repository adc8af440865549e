//! Vouchers: what the payer's node signs every second.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Domain tag at the start of every voucher message (same as the pallet's
/// `VOUCHER_TAG`).
pub const VOUCHER_TAG: [u8; 16] = *b"tick-stream/v1\0\0";

/// Length of a voucher message.
pub const MESSAGE_LEN: usize = 16 + 32 + 8 + 16;

/// Why a voucher is refused. The variants mirror the pallet's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoucherError {
    /// Signed for another chain.
    #[error("voucher for chain {voucher} but this channel lives on {expected}")]
    WrongChain {
        /// Genesis hash in the voucher (hex).
        voucher: String,
        /// Genesis hash of the channel's chain (hex).
        expected: String,
    },
    /// Signed for another channel.
    #[error("voucher for channel {voucher}, expected channel {expected}")]
    WrongChannel {
        /// Channel in the voucher.
        voucher: u64,
        /// Channel expected.
        expected: u64,
    },
    /// The signature does not verify against the channel's voucher key.
    #[error("voucher signature does not verify against the channel's voucher key")]
    BadSignature,
    /// The same cumulative amount was already accepted.
    #[error("voucher for {0} was already accepted")]
    Replayed(u128),
    /// A higher cumulative amount was already accepted.
    #[error("voucher for {amount} is older than the accepted {accepted}")]
    Outdated {
        /// Amount of the voucher.
        amount: u128,
        /// Amount already accepted.
        accepted: u128,
    },
    /// More than the channel's deposit.
    #[error("voucher for {amount} exceeds the deposit {deposit}")]
    ExceedsDeposit {
        /// Amount of the voucher.
        amount: u128,
        /// Deposit.
        deposit: u128,
    },
    /// The payer's deposit cannot pay another second.
    #[error("deposit {deposit} exhausted: paying second {second} needs {needed}")]
    DepositExhausted {
        /// Deposit.
        deposit: u128,
        /// The second that could not be paid.
        second: u64,
        /// Cumulative amount it would need.
        needed: u128,
    },
    /// An amount overflowed.
    #[error("amount overflow")]
    Overflow,
}

/// The exact bytes signed: tag, genesis hash, channel (u64 LE), cumulative
/// amount (u128 LE, as SCALE encodes it).
pub fn message(genesis: &[u8; 32], channel: u64, cumulative: u128) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    m[..16].copy_from_slice(&VOUCHER_TAG);
    m[16..48].copy_from_slice(genesis);
    m[48..56].copy_from_slice(&channel.to_le_bytes());
    m[56..].copy_from_slice(&cumulative.to_le_bytes());
    m
}

/// A signed statement: "on `chain`, channel `channel` owes `cumulative` in total".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voucher {
    /// Genesis hash of the chain.
    pub chain: [u8; 32],
    /// Channel id.
    pub channel: u64,
    /// Cumulative amount owed.
    pub cumulative: u128,
    /// ed25519 signature over [`message`].
    pub signature: [u8; 64],
}

impl Voucher {
    /// Signs a voucher with the payer node's key.
    pub fn sign(key: &SigningKey, chain: [u8; 32], channel: u64, cumulative: u128) -> Self {
        let signature = key.sign(&message(&chain, channel, cumulative)).to_bytes();
        Voucher {
            chain,
            channel,
            cumulative,
            signature,
        }
    }

    /// The signed bytes.
    pub fn message(&self) -> [u8; MESSAGE_LEN] {
        message(&self.chain, self.channel, self.cumulative)
    }

    /// Checks the signature (the chain's `ed25519_verify` accepts the same).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), VoucherError> {
        key.verify(&self.message(), &Signature::from_bytes(&self.signature))
            .map_err(|_| VoucherError::BadSignature)
    }
}

/// Verifies many vouchers at once (faster per voucher than one by one);
/// fails if any one is bad, without saying which.
pub fn verify_batch(vouchers: &[Voucher], keys: &[VerifyingKey]) -> Result<(), VoucherError> {
    if vouchers.len() != keys.len() {
        return Err(VoucherError::BadSignature);
    }
    let messages: Vec<[u8; MESSAGE_LEN]> = vouchers.iter().map(Voucher::message).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    let sigs: Vec<Signature> = vouchers
        .iter()
        .map(|v| Signature::from_bytes(&v.signature))
        .collect();
    ed25519_dalek::verify_batch(&refs, &sigs, keys).map_err(|_| VoucherError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same vector as the pallet's `voucher_message_matches_the_node_encoding`.
    #[test]
    fn message_matches_the_pallet_encoding() {
        let m = message(&[1; 32], 7, 1000);
        let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "7469636b2d73747265616d2f7631000001010101010101010101010101010101010101010101010101010101010101010700000000000000e8030000000000000000000000000000");
    }

    #[test]
    fn sign_verify_and_tamper() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let v = Voucher::sign(&k, [9; 32], 1, 500);
        v.verify(&k.verifying_key()).unwrap();
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert_eq!(v.verify(&other), Err(VoucherError::BadSignature));
        for mut t in [v.clone(), v.clone(), v.clone()] {
            t.cumulative += 1;
            assert_eq!(
                t.verify(&k.verifying_key()),
                Err(VoucherError::BadSignature)
            );
        }
        let mut t = v.clone();
        t.chain = [8; 32];
        assert_eq!(
            t.verify(&k.verifying_key()),
            Err(VoucherError::BadSignature)
        );
    }

    #[test]
    fn batch_verification_catches_one_bad_voucher() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let mut vs: Vec<Voucher> = (1..=16)
            .map(|s| Voucher::sign(&k, [0; 32], 2, s * 10))
            .collect();
        let keys = vec![k.verifying_key(); vs.len()];
        verify_batch(&vs, &keys).unwrap();
        vs[7].cumulative = 1;
        assert_eq!(verify_batch(&vs, &keys), Err(VoucherError::BadSignature));
    }
}
