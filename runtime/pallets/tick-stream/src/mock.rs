//! Mock runtime: system, balances (with holds) and tick-stream.

use crate as pallet_tick_stream;
use polkadot_sdk::frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU128, ConstU32},
};
use polkadot_sdk::sp_runtime::{traits::IdentityLookup, AccountId32, BuildStorage};
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io};

type Block = frame_system::mocking::MockBlock<Test>;
pub type Balance = u128;
/// 32-byte accounts, as in the runtime, so vouchers sign the same bytes.
pub type AccountId = AccountId32;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        TickStream: pallet_tick_stream,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountId = AccountId;
    type Lookup = IdentityLookup<AccountId>;
    type AccountData = pallet_balances::AccountData<Balance>;
    /// The runtime's database weights, so the refunds of `open` and
    /// `close` (database IO not done) show in the tests.
    type DbWeight = polkadot_sdk::frame_support::weights::constants::RocksDbWeight;
}

parameter_types! {
    pub const MaxHolds: u32 = 4;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type Balance = Balance;
    type ExistentialDeposit = ConstU128<1>;
    type AccountStore = System;
    type RuntimeHoldReason = RuntimeHoldReason;
}

impl pallet_tick_stream::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MaxPayees = ConstU32<4>;
    type WeightInfo = ();
}

pub const PAYER: AccountId = AccountId32::new([1; 32]);
pub const PAYEE: AccountId = AccountId32::new([2; 32]);
pub const OTHER: AccountId = AccountId32::new([3; 32]);
pub const RELAY: AccountId = AccountId32::new([4; 32]);
pub const RELAY2: AccountId = AccountId32::new([5; 32]);
pub const INITIAL: Balance = 1_000_000;

/// Genesis with five funded accounts, at block 1.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut t = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("genesis");
    pallet_balances::GenesisConfig::<Test> {
        balances: [PAYER, PAYEE, OTHER, RELAY, RELAY2]
            .into_iter()
            .map(|a| (a, INITIAL))
            .collect(),
        ..Default::default()
    }
    .assimilate_storage(&mut t)
    .expect("balances genesis");
    let mut ext = sp_io::TestExternalities::new(t);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
