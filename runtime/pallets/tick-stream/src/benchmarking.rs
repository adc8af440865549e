//! Benchmarks of the tick-stream calls (FRAME benchmarking v2), each in its
//! most expensive successful case:
//! - `open` names `MaxPayees` payees and holds deposit and collateral;
//! - `top_up` adds both;
//! - `claim` verifies a real ed25519 signature, binds a late payee to the
//!   last free slot and pays it partly from the deposit, partly from the
//!   collateral (two held transfers, the `Overdrawn` path);
//! - `close` burns the collateral of an overdrawn channel and clears
//!   `MaxPayees` payee entries.
//!
//! The voucher of the `claim` benchmark is signed ahead of time (the
//! runtime cannot sign): the benchmark pins the chain's genesis hash, the
//! channel id and the payee, so the signed message is the same on every
//! runtime with 32-byte accounts. `bench_voucher_is_valid` in the tests
//! checks the constants.

use super::*;
use crate::pallet::{Channel, Channels, NextChannelId, PayeeState, Payees};
use alloc::vec::Vec;
use codec::Decode;
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::{
    fungible::{Mutate, MutateHold},
    Get,
};
use polkadot_sdk::frame_support::BoundedVec;
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor, RawOrigin};
use polkadot_sdk::sp_runtime::traits::{Bounded, TrailingZeroInput, Zero};

/// Genesis hash the benchmarks pin (`BlockHash(0)`).
pub const BENCH_GENESIS: [u8; 32] = [0x11; 32];
/// Channel id of the benchmark channel.
pub const BENCH_CHANNEL: ChannelId = 0;
/// The payee of the benchmark voucher (a 32-byte account id).
pub const BENCH_PAYEE: [u8; 32] = [0x22; 32];
/// Cumulative amount of the benchmark voucher.
pub const BENCH_CUMULATIVE: u128 = 600;
/// Public key of the benchmark voucher key (secret: 32 bytes of 7).
pub const BENCH_VOUCHER_KEY: [u8; 32] = [
    234, 74, 108, 99, 226, 156, 82, 10, 190, 245, 80, 123, 19, 46, 197, 249, 149, 71, 118, 174,
    190, 190, 123, 146, 66, 30, 234, 105, 20, 70, 210, 44,
];
/// ed25519 signature of the benchmark voucher (see `bench_voucher_is_valid`).
pub const BENCH_SIGNATURE: [u8; 64] = [
    9, 79, 0, 69, 181, 172, 3, 26, 25, 150, 59, 9, 43, 88, 104, 231, 44, 243, 27, 114, 134, 122,
    93, 237, 157, 248, 146, 35, 69, 5, 20, 136, 139, 133, 204, 248, 149, 2, 185, 13, 102, 242, 31,
    223, 126, 232, 183, 239, 54, 155, 240, 70, 94, 196, 194, 197, 48, 58, 94, 242, 188, 20, 45, 8,
];

fn funded<T: Config>(who: T::AccountId) -> T::AccountId {
    T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 4u32.into());
    who
}

fn named_account<T: Config>(name: &'static str, i: u32) -> T::AccountId {
    funded::<T>(account(name, i, 0))
}

fn amount<T: Config>(v: u128) -> BalanceOf<T> {
    v.try_into().ok().unwrap_or_else(BalanceOf::<T>::max_value)
}

fn bench_payee<T: Config>() -> T::AccountId {
    let who = T::AccountId::decode(&mut TrailingZeroInput::new(&BENCH_PAYEE))
        .expect("any 32 bytes decode as an account id");
    funded::<T>(who)
}

/// A channel from a funded payer with `MaxPayees` slots, none named, late
/// payees capped at `BENCH_CUMULATIVE`: 900 of its 1,000 deposit already
/// paid, the collateral held, `bound` slots taken.
fn channel<T: Config>(bound: u32) -> T::AccountId {
    let payer = named_account::<T>("payer", 0);
    let max = T::MaxPayees::get();
    let deposit = amount::<T>(1_000);
    let cap = amount::<T>(BENCH_CUMULATIVE);
    let collateral =
        required_collateral::<T>(deposit, 0, max, cap).expect("benchmark amounts do not overflow");
    assert!(
        T::Currency::hold(&HoldReason::ChannelDeposit.into(), &payer, amount::<T>(100)).is_ok()
    );
    assert!(T::Currency::hold(&HoldReason::ChannelCollateral.into(), &payer, collateral).is_ok());
    for i in 0..bound {
        Payees::<T>::insert(
            BENCH_CHANNEL,
            named_account::<T>("relay", i),
            PayeeState {
                claimed: amount::<T>(1),
                named: false,
            },
        );
    }
    Channels::<T>::insert(
        BENCH_CHANNEL,
        Channel {
            payer: payer.clone(),
            voucher_key: BENCH_VOUCHER_KEY,
            deposit,
            collateral,
            max_payees: max,
            named_payees: 0,
            bound_payees: bound,
            payee_cap: cap,
            paid: amount::<T>(900),
            expires_at: frame_system::Pallet::<T>::block_number() + 100u32.into(),
            legacy: false,
        },
    );
    NextChannelId::<T>::put(BENCH_CHANNEL + 1);
    payer
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn open() {
        let payer = named_account::<T>("payer", 0);
        let max = T::MaxPayees::get();
        let payees: Vec<T::AccountId> = (0..max).map(|i| named_account::<T>("payee", i)).collect();
        let payees: BoundedVec<_, T::MaxPayees> = payees.try_into().expect("MaxPayees payees");
        let deposit = amount::<T>(1_000);
        let collateral = required_collateral::<T>(deposit, max, max, Zero::zero())
            .expect("benchmark amounts do not overflow");
        let expires_at = frame_system::Pallet::<T>::block_number() + 100u32.into();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(payer),
            BENCH_VOUCHER_KEY,
            payees,
            max,
            Zero::zero(),
            deposit,
            collateral,
            expires_at,
        );
        assert!(Channels::<T>::contains_key(0));
    }

    #[benchmark]
    fn top_up() {
        let payer = channel::<T>(0);
        let max: u128 = T::MaxPayees::get().into();
        // Raising the deposit raises the cover the late slots need only
        // through the cap, which is unchanged: any collateral will do.
        #[extrinsic_call]
        _(
            RawOrigin::Signed(payer),
            BENCH_CHANNEL,
            amount::<T>(1_000),
            amount::<T>(max),
        );
        assert_eq!(
            Channels::<T>::get(BENCH_CHANNEL).map(|c| c.deposit),
            Some(amount::<T>(2_000))
        );
    }

    #[benchmark]
    fn extend() {
        let payer = channel::<T>(0);
        let later: BlockNumberFor<T> = frame_system::Pallet::<T>::block_number() + 1_000u32.into();
        #[extrinsic_call]
        _(RawOrigin::Signed(payer), BENCH_CHANNEL, later);
        assert_eq!(
            Channels::<T>::get(BENCH_CHANNEL).map(|c| c.expires_at),
            Some(later)
        );
    }

    #[benchmark]
    fn claim() {
        let genesis = T::Hash::decode(&mut TrailingZeroInput::new(&BENCH_GENESIS))
            .expect("any 32 bytes decode as a hash");
        frame_system::BlockHash::<T>::insert(BlockNumberFor::<T>::zero(), genesis);
        let payee = bench_payee::<T>();
        channel::<T>(T::MaxPayees::get() - 1);
        #[extrinsic_call]
        _(
            RawOrigin::Signed(payee.clone()),
            BENCH_CHANNEL,
            amount::<T>(BENCH_CUMULATIVE),
            genesis,
            BENCH_SIGNATURE,
        );
        assert_eq!(
            Payees::<T>::get(BENCH_CHANNEL, &payee).map(|p| p.claimed),
            Some(amount::<T>(BENCH_CUMULATIVE))
        );
        assert_eq!(
            Channels::<T>::get(BENCH_CHANNEL).map(|c| c.paid),
            Some(amount::<T>(900 + BENCH_CUMULATIVE))
        );
    }

    #[benchmark]
    fn close() {
        let payer = channel::<T>(T::MaxPayees::get());
        // Overdrawn: 100 of the collateral already paid out.
        Channels::<T>::mutate(BENCH_CHANNEL, |c| {
            if let Some(c) = c {
                c.paid = amount::<T>(1_100);
                c.expires_at = frame_system::Pallet::<T>::block_number();
            }
        });
        #[extrinsic_call]
        _(RawOrigin::Signed(payer), BENCH_CHANNEL);
        assert!(!Channels::<T>::contains_key(BENCH_CHANNEL));
        assert!(Payees::<T>::iter_prefix(BENCH_CHANNEL).next().is_none());
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
