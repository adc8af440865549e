//! IO-less payment-channel accounting for both ends of a channel.

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::voucher::{Voucher, VoucherError};

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The paying end: turns seconds watched into vouchers.
pub struct Payer {
    key: SigningKey,
    chain: [u8; 32],
    channel: u64,
    price_per_second: u128,
    deposit: u128,
    seconds: u64,
}

impl Payer {
    /// A payer for an open channel.
    pub fn new(
        key: SigningKey,
        chain: [u8; 32],
        channel: u64,
        price_per_second: u128,
        deposit: u128,
    ) -> Self {
        Payer {
            key,
            chain,
            channel,
            price_per_second,
            deposit,
            seconds: 0,
        }
    }

    /// Pays one more second: the voucher for the new cumulative amount.
    /// Fails, changing nothing, when the deposit cannot cover it.
    pub fn pay_second(&mut self) -> Result<Voucher, VoucherError> {
        let second = self.seconds.checked_add(1).ok_or(VoucherError::Overflow)?;
        let needed = u128::from(second)
            .checked_mul(self.price_per_second)
            .ok_or(VoucherError::Overflow)?;
        if needed > self.deposit {
            return Err(VoucherError::DepositExhausted {
                deposit: self.deposit,
                second,
                needed,
            });
        }
        self.seconds = second;
        Ok(Voucher::sign(&self.key, self.chain, self.channel, needed))
    }

    /// The deposit grew (after an on-chain `top_up`).
    pub fn top_up(&mut self, amount: u128) -> Result<(), VoucherError> {
        add_deposit(&mut self.deposit, amount)
    }

    /// Seconds paid so far.
    pub fn seconds_paid(&self) -> u64 {
        self.seconds
    }

    /// Seconds the remaining deposit still covers.
    pub fn seconds_left(&self) -> u64 {
        let total = self.deposit.checked_div(self.price_per_second).unwrap_or(0);
        u64::try_from(total)
            .unwrap_or(u64::MAX)
            .saturating_sub(self.seconds)
    }
}

/// The paid end: accepts vouchers with the rules the pallet applies.
pub struct Payee {
    key: VerifyingKey,
    chain: [u8; 32],
    channel: u64,
    price_per_second: u128,
    deposit: u128,
    best: Option<Voucher>,
}

impl Payee {
    /// A payee for an open channel whose vouchers `key` signs.
    pub fn new(
        key: VerifyingKey,
        chain: [u8; 32],
        channel: u64,
        price_per_second: u128,
        deposit: u128,
    ) -> Self {
        Payee {
            key,
            chain,
            channel,
            price_per_second,
            deposit,
            best: None,
        }
    }

    /// Checks a voucher and keeps it if it is the best so far; returns by
    /// how much it raised what is owed. Checks run in the pallet's order,
    /// so the error is the one `claim` would give.
    pub fn accept(&mut self, v: Voucher) -> Result<u128, VoucherError> {
        if v.chain != self.chain {
            return Err(VoucherError::WrongChain {
                voucher: hex(&v.chain),
                expected: hex(&self.chain),
            });
        }
        if v.channel != self.channel {
            return Err(VoucherError::WrongChannel {
                voucher: v.channel,
                expected: self.channel,
            });
        }
        v.verify(&self.key)?;
        let accepted = self.best.as_ref().map_or(0, |b| b.cumulative);
        if v.cumulative == accepted {
            return Err(VoucherError::Replayed(accepted));
        }
        if v.cumulative < accepted {
            return Err(VoucherError::Outdated {
                amount: v.cumulative,
                accepted,
            });
        }
        if v.cumulative > self.deposit {
            return Err(VoucherError::ExceedsDeposit {
                amount: v.cumulative,
                deposit: self.deposit,
            });
        }
        let raised = v.cumulative - accepted;
        self.best = Some(v);
        Ok(raised)
    }

    /// The voucher to claim on chain.
    pub fn best(&self) -> Option<&Voucher> {
        self.best.as_ref()
    }

    /// Seconds paid for by the best voucher.
    pub fn ticks(&self) -> u64 {
        let owed = self.best.as_ref().map_or(0, |b| b.cumulative);
        u64::try_from(owed.checked_div(self.price_per_second).unwrap_or(0)).unwrap_or(u64::MAX)
    }

    /// The deposit grew (after an on-chain `top_up`).
    pub fn top_up(&mut self, amount: u128) -> Result<(), VoucherError> {
        add_deposit(&mut self.deposit, amount)
    }
}

/// Adds a top-up to a deposit, refusing overflow (as the pallet does).
fn add_deposit(deposit: &mut u128, amount: u128) -> Result<(), VoucherError> {
    *deposit = deposit.checked_add(amount).ok_or(VoucherError::Overflow)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHAIN: [u8; 32] = [0x11; 32];

    fn pair(price: u128, deposit: u128) -> (Payer, Payee) {
        let k = SigningKey::from_bytes(&[5; 32]);
        let vk = k.verifying_key();
        (
            Payer::new(k, CHAIN, 3, price, deposit),
            Payee::new(vk, CHAIN, 3, price, deposit),
        )
    }

    #[test]
    fn one_hundred_twenty_seconds_pay_out_exactly() {
        let (mut payer, mut payee) = pair(10, 2_000);
        let mut total = 0;
        for _ in 0..120 {
            total += payee.accept(payer.pay_second().unwrap()).unwrap();
        }
        assert_eq!(total, 1_200);
        assert_eq!(payee.ticks(), 120);
        assert_eq!(payer.seconds_left(), 80);
    }

    #[test]
    fn deposit_exhaustion_stops_payment_until_top_up() {
        let (mut payer, mut payee) = pair(10, 25);
        payer.pay_second().unwrap();
        payer.pay_second().unwrap();
        assert!(matches!(
            payer.pay_second(),
            Err(VoucherError::DepositExhausted { second: 3, .. })
        ));
        payer.top_up(10).unwrap();
        payee.top_up(10).unwrap();
        let v = payer.pay_second().unwrap();
        assert_eq!(v.cumulative, 30);
        assert_eq!(payee.accept(v).unwrap(), 30);
    }

    #[test]
    fn payee_refuses_what_the_chain_would_refuse() {
        let (mut payer, mut payee) = pair(10, 100);
        let v1 = payer.pay_second().unwrap();
        let v2 = payer.pay_second().unwrap();
        payee.accept(v2.clone()).unwrap();
        assert_eq!(payee.accept(v2.clone()), Err(VoucherError::Replayed(20)));
        assert!(matches!(
            payee.accept(v1),
            Err(VoucherError::Outdated {
                amount: 10,
                accepted: 20
            })
        ));
        let k = SigningKey::from_bytes(&[5; 32]);
        let too_much = Voucher::sign(&k, CHAIN, 3, 101);
        assert!(matches!(
            payee.accept(too_much),
            Err(VoucherError::ExceedsDeposit { .. })
        ));
        let other_chain = Voucher::sign(&k, [0; 32], 3, 50);
        assert!(matches!(
            payee.accept(other_chain),
            Err(VoucherError::WrongChain { .. })
        ));
        let other_channel = Voucher::sign(&k, CHAIN, 4, 50);
        assert!(matches!(
            payee.accept(other_channel),
            Err(VoucherError::WrongChannel { .. })
        ));
        let rogue = Voucher::sign(&SigningKey::from_bytes(&[6; 32]), CHAIN, 3, 50);
        assert_eq!(payee.accept(rogue), Err(VoucherError::BadSignature));
        assert_eq!(payee.best(), Some(&v2), "the best voucher is unchanged");
    }

    proptest! {
        /// Vouchers delivered late, twice or out of order: the payee's owed
        /// amount is the highest valid cumulative, never above the deposit,
        /// and the increments it reports add up to it.
        #[test]
        fn out_of_order_delivery_never_overpays(
            price in 1u128..1_000,
            deposit in 1u128..100_000,
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..60),
        ) {
            let (mut payer, mut payee) = pair(price, deposit);
            let mut vouchers = vec![];
            while let Ok(v) = payer.pay_second() {
                vouchers.push(v);
                if vouchers.len() >= 200 { break; }
            }
            prop_assume!(!vouchers.is_empty());
            let mut sum = 0u128;
            let mut max = 0u128;
            for i in order {
                let v = vouchers[i.index(vouchers.len())].clone();
                let c = v.cumulative;
                if let Ok(raised) = payee.accept(v) {
                    sum += raised;
                    max = max.max(c);
                }
            }
            prop_assert_eq!(sum, max);
            prop_assert!(sum <= deposit);
            prop_assert_eq!(payee.best().map_or(0, |b| b.cumulative), max);
        }
    }
}
