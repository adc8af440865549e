//! IO-less accounting for both ends of a channel: one payer's deposit that
//! pays several payees, each with its own cumulative vouchers.

use std::collections::BTreeMap;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::voucher::{Voucher, VoucherError};

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a channel allows, as it was opened on chain: both ends check
/// vouchers against these terms, with the pallet's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// Genesis hash of the chain.
    pub chain: [u8; 32],
    /// Channel id.
    pub channel: u64,
    /// Deposit (grows with top-ups).
    pub deposit: u128,
    /// Most payees the channel pays.
    pub max_payees: u32,
    /// Payees named at open: each may be owed up to the deposit.
    pub named: Vec<[u8; 32]>,
    /// Most a payee not named at open may be owed.
    pub payee_cap: u128,
}

impl Terms {
    /// Whether `payee` was named at open.
    pub fn is_named(&self, payee: &[u8; 32]) -> bool {
        self.named.contains(payee)
    }

    /// The most `payee` may be owed: the deposit if named, else the cap
    /// (never more than the deposit).
    pub fn limit(&self, payee: &[u8; 32]) -> u128 {
        if self.is_named(payee) {
            self.deposit
        } else {
            self.payee_cap.min(self.deposit)
        }
    }

    /// The error the pallet gives a voucher for `amount` above `payee`'s
    /// limit, or `None` if within it.
    fn over_limit(&self, payee: &[u8; 32], amount: u128) -> Option<VoucherError> {
        if amount <= self.limit(payee) {
            None
        } else if self.is_named(payee) {
            Some(VoucherError::ExceedsDeposit {
                amount,
                deposit: self.deposit,
            })
        } else {
            Some(VoucherError::ExceedsPayeeCap {
                amount,
                cap: self.payee_cap.min(self.deposit),
            })
        }
    }
}

/// The paying end: turns amounts owed to payees into vouchers, never
/// signing more in total than the deposit (so an honest payer never
/// overdraws its channel and always gets its collateral back).
pub struct Payer {
    key: SigningKey,
    terms: Terms,
    owed: BTreeMap<[u8; 32], u128>,
    total: u128,
}

impl Payer {
    /// A payer for an open channel whose vouchers `key` signs.
    pub fn new(key: SigningKey, terms: Terms) -> Self {
        Payer {
            key,
            terms,
            owed: BTreeMap::new(),
            total: 0,
        }
    }

    /// Owes `payee` `amount` more: the voucher for its new cumulative
    /// amount. Fails, changing nothing, when the deposit, the payee's limit
    /// or the channel's payee slots cannot take it.
    pub fn pay(&mut self, payee: [u8; 32], amount: u128) -> Result<Voucher, VoucherError> {
        let total = self
            .total
            .checked_add(amount)
            .ok_or(VoucherError::Overflow)?;
        if total > self.terms.deposit {
            return Err(VoucherError::DepositExhausted {
                deposit: self.terms.deposit,
                owed: self.total,
                wanted: amount,
            });
        }
        let known = self.owed.contains_key(&payee) || self.terms.is_named(&payee);
        if !known && self.payees() >= self.terms.max_payees as usize {
            return Err(VoucherError::TooManyPayees {
                max: self.terms.max_payees,
            });
        }
        let cumulative = self
            .owed(&payee)
            .checked_add(amount)
            .ok_or(VoucherError::Overflow)?;
        if let Some(e) = self.terms.over_limit(&payee, cumulative) {
            return Err(e);
        }
        self.owed.insert(payee, cumulative);
        self.total = total;
        Ok(Voucher::sign(
            &self.key,
            self.terms.chain,
            self.terms.channel,
            payee,
            cumulative,
        ))
    }

    /// Payees this payer has a slot for: the named ones and those it paid.
    fn payees(&self) -> usize {
        let late = self.owed.keys().filter(|p| !self.terms.is_named(p)).count();
        self.terms.named.len() + late
    }

    /// Owed to `payee` so far.
    pub fn owed(&self, payee: &[u8; 32]) -> u128 {
        self.owed.get(payee).copied().unwrap_or(0)
    }

    /// Owed to all payees so far.
    pub fn total_owed(&self) -> u128 {
        self.total
    }

    /// What the deposit can still pay.
    pub fn remaining(&self) -> u128 {
        self.terms.deposit.saturating_sub(self.total)
    }

    /// The channel's terms.
    pub fn terms(&self) -> &Terms {
        &self.terms
    }

    /// The deposit grew (after an on-chain `top_up`).
    pub fn top_up(&mut self, amount: u128) -> Result<(), VoucherError> {
        add_deposit(&mut self.terms.deposit, amount)
    }
}

/// The paid end: accepts vouchers for itself with the rules the pallet
/// applies, keeping the best one.
pub struct Payee {
    key: VerifyingKey,
    terms: Terms,
    me: [u8; 32],
    best: Option<Voucher>,
}

impl Payee {
    /// The payee `me` of an open channel whose vouchers `key` signs.
    pub fn new(key: VerifyingKey, terms: Terms, me: [u8; 32]) -> Self {
        Payee {
            key,
            terms,
            me,
            best: None,
        }
    }

    /// Checks a voucher and keeps it if it is the best so far; returns by
    /// how much it raised what is owed. Checks run in the pallet's order
    /// (a voucher naming another payee is `WrongPayee` here, which the
    /// chain reports as a bad signature), so a voucher accepted here is
    /// one `claim` accepts.
    pub fn accept(&mut self, v: Voucher) -> Result<u128, VoucherError> {
        if v.chain != self.terms.chain {
            return Err(VoucherError::WrongChain {
                voucher: hex(&v.chain),
                expected: hex(&self.terms.chain),
            });
        }
        if v.channel != self.terms.channel {
            return Err(VoucherError::WrongChannel {
                voucher: v.channel,
                expected: self.terms.channel,
            });
        }
        if v.payee != self.me {
            return Err(VoucherError::WrongPayee {
                voucher: hex(&v.payee),
                expected: hex(&self.me),
            });
        }
        v.verify(&self.key)?;
        let accepted = self.owed();
        if v.cumulative == accepted {
            return Err(VoucherError::Replayed(accepted));
        }
        if v.cumulative < accepted {
            return Err(VoucherError::Outdated {
                amount: v.cumulative,
                accepted,
            });
        }
        if let Some(e) = self.terms.over_limit(&self.me, v.cumulative) {
            return Err(e);
        }
        let raised = v.cumulative - accepted;
        self.best = Some(v);
        Ok(raised)
    }

    /// The voucher to claim on chain.
    pub fn best(&self) -> Option<&Voucher> {
        self.best.as_ref()
    }

    /// Owed by the best voucher.
    pub fn owed(&self) -> u128 {
        self.best.as_ref().map_or(0, |b| b.cumulative)
    }

    /// The deposit grew (after an on-chain `top_up`).
    pub fn top_up(&mut self, amount: u128) -> Result<(), VoucherError> {
        add_deposit(&mut self.terms.deposit, amount)
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
    const CREATOR: [u8; 32] = [0xc1; 32];
    const RELAY: [u8; 32] = [0xd1; 32];
    const RELAY2: [u8; 32] = [0xd2; 32];

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    fn terms(deposit: u128, max_payees: u32, cap: u128) -> Terms {
        Terms {
            chain: CHAIN,
            channel: 3,
            deposit,
            max_payees,
            named: vec![CREATOR],
            payee_cap: cap,
        }
    }

    fn pair(deposit: u128) -> (Payer, Payee) {
        let t = terms(deposit, 1, 0);
        (
            Payer::new(key(), t.clone()),
            Payee::new(key().verifying_key(), t, CREATOR),
        )
    }

    #[test]
    fn one_hundred_twenty_seconds_pay_out_exactly() {
        let (mut payer, mut payee) = pair(2_000);
        let mut total = 0;
        for _ in 0..120 {
            total += payee.accept(payer.pay(CREATOR, 10).unwrap()).unwrap();
        }
        assert_eq!(total, 1_200);
        assert_eq!(payee.owed(), 1_200);
        assert_eq!(payer.remaining(), 800);
    }

    #[test]
    fn deposit_exhaustion_stops_payment_until_top_up() {
        let (mut payer, mut payee) = pair(25);
        payer.pay(CREATOR, 10).unwrap();
        payer.pay(CREATOR, 10).unwrap();
        assert_eq!(
            payer.pay(CREATOR, 10).err(),
            Some(VoucherError::DepositExhausted {
                deposit: 25,
                owed: 20,
                wanted: 10
            })
        );
        payer.top_up(10).unwrap();
        payee.top_up(10).unwrap();
        let v = payer.pay(CREATOR, 10).unwrap();
        assert_eq!(v.cumulative, 30);
        assert_eq!(payee.accept(v).unwrap(), 30);
    }

    #[test]
    fn one_deposit_pays_the_creator_and_relays_within_their_limits() {
        let mut payer = Payer::new(key(), terms(1_000, 3, 100));
        payer.pay(CREATOR, 700).unwrap();
        payer.pay(RELAY, 60).unwrap();
        assert!(matches!(
            payer.pay(RELAY, 41),
            Err(VoucherError::ExceedsPayeeCap {
                amount: 101,
                cap: 100
            })
        ));
        payer.pay(RELAY2, 100).unwrap();
        assert_eq!(
            payer.pay([0xd3; 32], 1).err(),
            Some(VoucherError::TooManyPayees { max: 3 })
        );
        assert!(matches!(
            payer.pay(CREATOR, 141),
            Err(VoucherError::DepositExhausted { owed: 860, .. })
        ));
        assert_eq!(payer.total_owed(), 860);
        assert_eq!(
            (payer.owed(&CREATOR), payer.owed(&RELAY)),
            (700, 60),
            "refusals changed nothing"
        );
    }

    #[test]
    fn payee_refuses_what_the_chain_would_refuse() {
        let (mut payer, mut payee) = pair(100);
        let v1 = payer.pay(CREATOR, 10).unwrap();
        let v2 = payer.pay(CREATOR, 10).unwrap();
        payee.accept(v2.clone()).unwrap();
        assert_eq!(payee.accept(v2.clone()), Err(VoucherError::Replayed(20)));
        assert!(matches!(
            payee.accept(v1),
            Err(VoucherError::Outdated {
                amount: 10,
                accepted: 20
            })
        ));
        let k = key();
        let too_much = Voucher::sign(&k, CHAIN, 3, CREATOR, 101);
        assert!(matches!(
            payee.accept(too_much),
            Err(VoucherError::ExceedsDeposit { .. })
        ));
        let other_chain = Voucher::sign(&k, [0; 32], 3, CREATOR, 50);
        assert!(matches!(
            payee.accept(other_chain),
            Err(VoucherError::WrongChain { .. })
        ));
        let other_channel = Voucher::sign(&k, CHAIN, 4, CREATOR, 50);
        assert!(matches!(
            payee.accept(other_channel),
            Err(VoucherError::WrongChannel { .. })
        ));
        let other_payee = Voucher::sign(&k, CHAIN, 3, RELAY, 50);
        assert!(matches!(
            payee.accept(other_payee),
            Err(VoucherError::WrongPayee { .. })
        ));
        let rogue = Voucher::sign(&SigningKey::from_bytes(&[6; 32]), CHAIN, 3, CREATOR, 50);
        assert_eq!(payee.accept(rogue), Err(VoucherError::BadSignature));
        assert_eq!(payee.best(), Some(&v2), "the best voucher is unchanged");
    }

    #[test]
    fn a_late_payee_is_held_to_the_cap() {
        let t = terms(1_000, 2, 100);
        let mut relay = Payee::new(key().verifying_key(), t, RELAY);
        let over = Voucher::sign(&key(), CHAIN, 3, RELAY, 101);
        assert_eq!(
            relay.accept(over),
            Err(VoucherError::ExceedsPayeeCap {
                amount: 101,
                cap: 100
            })
        );
        assert_eq!(
            relay.accept(Voucher::sign(&key(), CHAIN, 3, RELAY, 100)),
            Ok(100)
        );
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
            let (mut payer, mut payee) = pair(deposit);
            let mut vouchers = vec![];
            while let Ok(v) = payer.pay(CREATOR, price) {
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

        /// However an honest payer's node is asked to pay the creator and
        /// relays, it never signs more in total than the deposit, nor more
        /// to a payee than its limit, nor to more payees than the slots:
        /// its channel is never overdrawn.
        #[test]
        fn an_honest_payer_never_over_issues(
            deposit in 1u128..10_000,
            cap in 0u128..5_000,
            max_payees in 1u32..5,
            asks in proptest::collection::vec((0usize..6, 0u128..3_000), 1..80),
        ) {
            let mut payer = Payer::new(key(), terms(deposit, max_payees, cap));
            let payees: Vec<[u8; 32]> = (0..6u8).map(|i| if i == 0 { CREATOR } else { [i; 32] }).collect();
            for (who, amount) in asks {
                let _ = payer.pay(payees[who], amount);
                let owed: Vec<u128> = payees.iter().map(|p| payer.owed(p)).collect();
                prop_assert_eq!(owed.iter().sum::<u128>(), payer.total_owed());
                prop_assert!(payer.total_owed() <= deposit);
                for (p, o) in payees.iter().zip(&owed) {
                    prop_assert!(*o <= payer.terms().limit(p));
                }
                let paid = payees.iter().zip(&owed).filter(|(p, o)| **o > 0 || **p == CREATOR).count();
                prop_assert!(paid <= max_payees as usize);
            }
        }
    }
}
