//! Mock runtime: system, balances (with holds) and tick-stream.

use crate as pallet_tick_stream;
use polkadot_sdk::frame_support::{derive_impl, parameter_types, traits::ConstU128};
use polkadot_sdk::sp_runtime::BuildStorage;
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io};

type Block = frame_system::mocking::MockBlock<Test>;
pub type Balance = u128;
pub type AccountId = u64;

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
    type AccountData = pallet_balances::AccountData<Balance>;
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
    type WeightInfo = ();
}

pub const PAYER: AccountId = 1;
pub const PAYEE: AccountId = 2;
pub const OTHER: AccountId = 3;
pub const INITIAL: Balance = 1_000_000;

/// Genesis with three funded accounts, at block 1.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut t = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("genesis");
    pallet_balances::GenesisConfig::<Test> {
        balances: vec![(PAYER, INITIAL), (PAYEE, INITIAL), (OTHER, INITIAL)],
        ..Default::default()
    }
    .assimilate_storage(&mut t)
    .expect("balances genesis");
    let mut ext = sp_io::TestExternalities::new(t);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
