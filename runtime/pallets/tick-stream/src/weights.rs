//! Weights of the tick-stream calls.
//!
//! PROVISIONAL: these figures are estimates (storage reads/writes counted
//! by hand, execution time guessed from similar balances calls plus one
//! ed25519 verification for `claim`). They have NOT been generated from a
//! benchmark run yet; that needs the runtime and `frame-omni-bencher`
//! (issue #3, still open). Do not deploy with them.

use core::marker::PhantomData;
use polkadot_sdk::frame_support::weights::{constants::RocksDbWeight, Weight};

/// Weight functions needed by the pallet.
pub trait WeightInfo {
    /// `open_channel`
    fn open_channel() -> Weight;
    /// `top_up`
    fn top_up() -> Weight;
    /// `extend`
    fn extend() -> Weight;
    /// `claim`
    fn claim() -> Weight;
    /// `close`
    fn close() -> Weight;
}

/// Provisional weights (see the module docs).
pub struct SubstrateWeight<T>(PhantomData<T>);

impl<T> WeightInfo for SubstrateWeight<T> {
    fn open_channel() -> Weight {
        // NextChannelId r/w, Channels w, Balances holds + account r/w.
        Weight::from_parts(60_000_000, 3_600)
            .saturating_add(RocksDbWeight::get().reads_writes(3, 4))
    }
    fn top_up() -> Weight {
        Weight::from_parts(50_000_000, 3_600)
            .saturating_add(RocksDbWeight::get().reads_writes(3, 3))
    }
    fn extend() -> Weight {
        Weight::from_parts(20_000_000, 3_600)
            .saturating_add(RocksDbWeight::get().reads_writes(1, 1))
    }
    fn claim() -> Weight {
        // + one ed25519 verification (~50 µs in wasm).
        Weight::from_parts(120_000_000, 6_200)
            .saturating_add(RocksDbWeight::get().reads_writes(5, 5))
    }
    fn close() -> Weight {
        Weight::from_parts(50_000_000, 3_600)
            .saturating_add(RocksDbWeight::get().reads_writes(3, 3))
    }
}

impl WeightInfo for () {
    fn open_channel() -> Weight {
        Weight::zero()
    }
    fn top_up() -> Weight {
        Weight::zero()
    }
    fn extend() -> Weight {
        Weight::zero()
    }
    fn claim() -> Weight {
        Weight::zero()
    }
    fn close() -> Weight {
        Weight::zero()
    }
}
