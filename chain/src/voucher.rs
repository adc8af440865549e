//! Vouchers: what the payer's node signs every second, one per payee.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Domain tag at the start of every voucher message (same as the pallet's
/// `VOUCHER_TAG`).
pub const VOUCHER_TAG: [u8; 16] = *b"tick-stream/v2\0\0";

/// Length of a voucher message: tag, genesis hash, channel, payee, amount.
pub const MESSAGE_LEN: usize = 16 + 32 + 8 + 32 + 16;

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
    /// Names another payee (a voucher is good only for the payee it names).
    #[error("voucher for payee {voucher}, but this payee is {expected}")]
    WrongPayee {
        /// Payee in the voucher (hex).
        voucher: String,
        /// This payee (hex).
        expected: String,
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
    /// More than the channel's deposit (the limit of a named payee).
    #[error("voucher for {amount} exceeds the deposit {deposit}")]
    ExceedsDeposit {
        /// Amount of the voucher.
        amount: u128,
        /// Deposit.
        deposit: u128,
    },
    /// More than the channel's cap for payees not named at open.
    #[error("voucher for {amount} exceeds the channel's cap {cap} for late payees")]
    ExceedsPayeeCap {
        /// Amount of the voucher.
        amount: u128,
        /// The cap.
        cap: u128,
    },
    /// The deposit cannot pay this much more: the payer's node never signs
    /// more in total than its deposit.
    #[error("deposit {deposit} exhausted: {owed} already owed, {wanted} more wanted")]
    DepositExhausted {
        /// Deposit.
        deposit: u128,
        /// Owed to all payees so far.
        owed: u128,
        /// The amount that could not be paid.
        wanted: u128,
    },
    /// Every payee slot of the channel is taken by other payees.
    #[error("the channel already pays its {max} payees")]
    TooManyPayees {
        /// The channel's `max_payees`.
        max: u32,
    },
    /// An amount overflowed.
    #[error("amount overflow")]
    Overflow,
}

/// The exact bytes signed: tag, genesis hash, channel (u64 LE), payee
/// account (32 bytes), cumulative amount (u128 LE, as SCALE encodes it).
pub fn message(
    genesis: &[u8; 32],
    channel: u64,
    payee: &[u8; 32],
    cumulative: u128,
) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    m[..16].copy_from_slice(&VOUCHER_TAG);
    m[16..48].copy_from_slice(genesis);
    m[48..56].copy_from_slice(&channel.to_le_bytes());
    m[56..88].copy_from_slice(payee);
    m[88..].copy_from_slice(&cumulative.to_le_bytes());
    m
}

/// A signed statement: "on `chain`, channel `channel` owes `payee`
/// `cumulative` in total".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voucher {
    /// Genesis hash of the chain.
    pub chain: [u8; 32],
    /// Channel id.
    pub channel: u64,
    /// The payee's account id.
    pub payee: [u8; 32],
    /// Cumulative amount owed to the payee.
    pub cumulative: u128,
    /// ed25519 signature over [`message`].
    pub signature: [u8; 64],
}

impl Voucher {
    /// Signs a voucher with the payer node's key.
    pub fn sign(
        key: &SigningKey,
        chain: [u8; 32],
        channel: u64,
        payee: [u8; 32],
        cumulative: u128,
    ) -> Self {
        let signature = key
            .sign(&message(&chain, channel, &payee, cumulative))
            .to_bytes();
        Voucher {
            chain,
            channel,
            payee,
            cumulative,
            signature,
        }
    }

    /// The signed bytes.
    pub fn message(&self) -> [u8; MESSAGE_LEN] {
        message(&self.chain, self.channel, &self.payee, self.cumulative)
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
        let m = message(&[1; 32], 7, &[2; 32], 1000);
        let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "7469636b2d73747265616d2f7632000001010101010101010101010101010101010101010101010101010101010101010700000000000000\
0202020202020202020202020202020202020202020202020202020202020202e8030000000000000000000000000000");
    }

    #[test]
    fn sign_verify_and_tamper() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let v = Voucher::sign(&k, [9; 32], 1, [2; 32], 500);
        v.verify(&k.verifying_key()).unwrap();
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert_eq!(v.verify(&other), Err(VoucherError::BadSignature));
        let tampered: [fn(&mut Voucher); 3] = [
            |t| t.cumulative += 1,
            |t| t.channel += 1,
            |t| t.payee[0] ^= 1,
        ];
        for tamper in tampered {
            let mut t = v.clone();
            tamper(&mut t);
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
            .map(|s| Voucher::sign(&k, [0; 32], 2, [3; 32], s * 10))
            .collect();
        let keys = vec![k.verifying_key(); vs.len()];
        verify_batch(&vs, &keys).unwrap();
        vs[7].cumulative = 1;
        assert_eq!(verify_batch(&vs, &keys), Err(VoucherError::BadSignature));
    }
}
