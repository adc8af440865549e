//! Benchmarks of the tick-stream calls (FRAME benchmarking v2), each in its
//! most expensive successful case: `claim` verifies a real ed25519
//! signature and moves held funds to a payee that already has an account.
//!
//! The voucher of the `claim` benchmark is signed ahead of time (the
//! runtime cannot sign): the benchmark pins the chain's genesis hash and
//! the channel id, so the signed message is the same on every runtime.
//! `bench_voucher_is_valid` in the tests checks the constants.

use super::*;
use crate::pallet::{Channel, Channels, NextChannelId, PayeeTicks};
use codec::Decode;
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::fungible::{Mutate, MutateHold};
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor, RawOrigin};
use polkadot_sdk::sp_runtime::traits::{Bounded, TrailingZeroInput, Zero};

/// Genesis hash the benchmarks pin (`BlockHash(0)`).
pub const BENCH_GENESIS: [u8; 32] = [0x11; 32];
/// Channel id of the benchmark channel.
pub const BENCH_CHANNEL: ChannelId = 0;
/// Cumulative amount of the benchmark voucher.
pub const BENCH_CUMULATIVE: u128 = 600;
/// Public key of the benchmark voucher key (secret: 32 bytes of 7).
pub const BENCH_VOUCHER_KEY: [u8; 32] = [
    234, 74, 108, 99, 226, 156, 82, 10, 190, 245, 80, 123, 19, 46, 197, 249, 149, 71, 118, 174,
    190, 190, 123, 146, 66, 30, 234, 105, 20, 70, 210, 44,
];
/// ed25519 signature of the benchmark voucher (see `bench_voucher_is_valid`).
pub const BENCH_SIGNATURE: [u8; 64] = [
    221, 37, 56, 159, 30, 99, 189, 45, 0, 96, 90, 28, 26, 139, 52, 201, 65, 93, 247, 65, 113, 197,
    185, 227, 142, 142, 9, 224, 139, 61, 164, 232, 16, 17, 231, 129, 185, 203, 153, 42, 6, 5, 125,
    210, 242, 23, 129, 122, 165, 115, 162, 164, 139, 173, 102, 76, 219, 178, 96, 137, 81, 89, 66,
    6,
];

fn funded<T: Config>(name: &'static str) -> T::AccountId {
    let who: T::AccountId = account(name, 0, 0);
    T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 4u32.into());
    who
}

fn amount<T: Config>(v: u128) -> BalanceOf<T> {
    v.try_into().ok().unwrap_or_else(BalanceOf::<T>::max_value)
}

/// A channel from a funded payer to `payee`, deposit held, as `open_channel` leaves it.
fn channel<T: Config>(payee: T::AccountId) -> T::AccountId {
    let payer = funded::<T>("payer");
    let deposit = amount::<T>(10 * BENCH_CUMULATIVE);
    assert!(T::Currency::hold(&HoldReason::ChannelDeposit.into(), &payer, deposit).is_ok());
    Channels::<T>::insert(
        BENCH_CHANNEL,
        Channel {
            payer: payer.clone(),
            payee,
            voucher_key: BENCH_VOUCHER_KEY,
            price_per_second: amount::<T>(5),
            deposit,
            claimed: Zero::zero(),
            expires_at: frame_system::Pallet::<T>::block_number() + 100u32.into(),
            ticks: 0,
        },
    );
    NextChannelId::<T>::put(BENCH_CHANNEL + 1);
    payer
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn open_channel() {
        let payer = funded::<T>("payer");
        let payee = funded::<T>("payee");
        let expires_at = frame_system::Pallet::<T>::block_number() + 100u32.into();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(payer),
            payee,
            BENCH_VOUCHER_KEY,
            amount::<T>(5),
            amount::<T>(1_000),
            expires_at,
        );
        assert!(Channels::<T>::contains_key(0));
    }

    #[benchmark]
    fn top_up() {
        let payer = channel::<T>(funded::<T>("payee"));
        #[extrinsic_call]
        _(RawOrigin::Signed(payer), BENCH_CHANNEL, amount::<T>(1_000));
        assert_eq!(
            Channels::<T>::get(BENCH_CHANNEL).map(|c| c.deposit),
            Some(amount::<T>(10 * BENCH_CUMULATIVE + 1_000))
        );
    }

    #[benchmark]
    fn extend() {
        let payer = channel::<T>(funded::<T>("payee"));
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
        let payee = funded::<T>("payee");
        channel::<T>(payee.clone());
        #[extrinsic_call]
        _(
            RawOrigin::Signed(payee.clone()),
            BENCH_CHANNEL,
            amount::<T>(BENCH_CUMULATIVE),
            genesis,
            BENCH_SIGNATURE,
        );
        assert_eq!(PayeeTicks::<T>::get(&payee), 120);
    }

    #[benchmark]
    fn close() {
        let payee = funded::<T>("payee");
        channel::<T>(payee.clone());
        #[extrinsic_call]
        _(RawOrigin::Signed(payee), BENCH_CHANNEL);
        assert!(!Channels::<T>::contains_key(BENCH_CHANNEL));
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
