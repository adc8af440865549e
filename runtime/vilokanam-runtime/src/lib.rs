//! FRAME runtime of the Vilokanam settlement chain.
//!
//! Pallets: system, timestamp, aura (block authoring; chopsticks' dev mode
//! expects Aura), grandpa (finality, for full nodes and light clients),
//! balances (with holds), transaction-payment, sudo and tick-stream
//! (per-second payment channels). The `development` genesis preset funds
//! the well-known dev accounts and makes Alice the Aura authority, the
//! GRANDPA voter and the sudo key.
#![cfg_attr(not(feature = "std"), no_std)]
// The runtime macros expand to items without docs.
#![allow(missing_docs)]

extern crate alloc;

pub mod genesis;

use alloc::vec::Vec;
use polkadot_sdk::polkadot_sdk_frame as frame;
use polkadot_sdk::{
    pallet_aura, pallet_balances, pallet_grandpa, pallet_sudo, pallet_timestamp,
    pallet_transaction_payment, pallet_transaction_payment_rpc_runtime_api,
    sp_consensus_aura::sr25519::AuthorityId as AuraId, sp_consensus_grandpa,
};

use frame::deps::frame_support::weights::{
    constants::{RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
    IdentityFee, Weight,
};
use frame::deps::sp_runtime::transaction_validity::{TransactionSource, TransactionValidity};
use frame::deps::sp_runtime::{MultiAddress, Perbill};
use frame::runtime::{apis, prelude::*, types_common};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};

pub use pallet_tick_stream;

/// Account id (sr25519/ed25519/ecdsa multi-signer, 32 bytes).
pub type AccountId = types_common::AccountId;
/// Balance of an account.
pub type Balance = u128;
/// Block number.
pub type BlockNumber = types_common::BlockNumber;
/// Transaction nonce.
pub type Nonce = u32;

/// One unit of the chain's token (12 decimals).
pub const UNIT: Balance = 1_000_000_000_000;
/// Existential deposit.
pub const EXISTENTIAL_DEPOSIT: Balance = UNIT / 1_000;
/// Target block time.
pub const MILLISECS_PER_BLOCK: u64 = 6_000;

#[runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("vilokanam"),
    impl_name: alloc::borrow::Cow::Borrowed("vilokanam"),
    authoring_version: 1,
    spec_version: 3,
    impl_version: 1,
    apis: RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// Signed transaction extensions: the system ones plus fee payment.
pub type TxExtension = (
    frame_system::AuthorizeCall<Runtime>,
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
    frame_system::WeightReclaim<Runtime>,
);

/// Block type.
pub type Block = types_common::BlockOf<Runtime, TxExtension>;
/// Header type.
pub type Header = <Block as frame::traits::Block>::Header;
/// Extrinsic type.
pub type UncheckedExtrinsic = <Block as frame::traits::Block>::Extrinsic;
/// Address type.
pub type Address = MultiAddress<AccountId, ()>;

/// Executive: dispatches blocks and extrinsics to the pallets.
pub type RuntimeExecutive = Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
    Migrations,
>;

/// Storage migrations run on the next runtime upgrade (each checks the
/// pallet's storage version, so it runs once).
pub type Migrations = (pallet_tick_stream::migrations::v1::MigrateV0ToV1<Runtime>,);

#[frame_construct_runtime]
mod runtime {
    #[runtime::runtime]
    #[runtime::derive(
        RuntimeCall,
        RuntimeEvent,
        RuntimeError,
        RuntimeOrigin,
        RuntimeFreezeReason,
        RuntimeHoldReason,
        RuntimeSlashReason,
        RuntimeLockId,
        RuntimeTask,
        RuntimeViewFunction
    )]
    pub struct Runtime;

    #[runtime::pallet_index(0)]
    pub type System = frame_system::Pallet<Runtime>;
    #[runtime::pallet_index(1)]
    pub type Timestamp = pallet_timestamp::Pallet<Runtime>;
    #[runtime::pallet_index(2)]
    pub type Aura = pallet_aura::Pallet<Runtime>;
    #[runtime::pallet_index(3)]
    pub type Balances = pallet_balances::Pallet<Runtime>;
    #[runtime::pallet_index(4)]
    pub type TransactionPayment = pallet_transaction_payment::Pallet<Runtime>;
    #[runtime::pallet_index(5)]
    pub type Sudo = pallet_sudo::Pallet<Runtime>;
    #[runtime::pallet_index(6)]
    pub type Grandpa = pallet_grandpa::Pallet<Runtime>;
    #[runtime::pallet_index(10)]
    pub type TickStream = pallet_tick_stream::Pallet<Runtime>;
}

frame::deps::sp_runtime::impl_opaque_keys! {
    /// Keys of a block authority: Aura (sr25519) authors, GRANDPA (ed25519)
    /// votes. A full node's `--alice` or `author_rotateKeys` creates them.
    pub struct SessionKeys {
        pub aura: Aura,
        pub grandpa: Grandpa,
    }
}

parameter_types! {
    pub const Version: RuntimeVersion = VERSION;
    pub RuntimeBlockWeights: frame_system::limits::BlockWeights =
        frame_system::limits::BlockWeights::with_sensible_defaults(
            Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
            Perbill::from_percent(75),
        );
    pub RuntimeBlockLength: frame_system::limits::BlockLength =
        frame_system::limits::BlockLength::builder().max_length(5 * 1024 * 1024).build();
    pub FeeMultiplier: Multiplier = Multiplier::from_u32(1);
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = ConstU16<42>;
    /// Database read/write weights (the default config weighs them 0,
    /// which would make every benchmarked read and write free).
    type DbWeight = RocksDbWeight;
}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Aura;
    type MinimumPeriod = ConstU64<{ MILLISECS_PER_BLOCK / 2 }>;
    type WeightInfo = ();
}

impl pallet_aura::Config for Runtime {
    type AuthorityId = AuraId;
    type DisabledValidators = ();
    type MaxAuthorities = ConstU32<32>;
    type AllowMultipleBlocksPerSlot = ConstBool<false>;
    type SlotDuration = pallet_aura::MinimumPeriodTimesTwo<Runtime>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Runtime {
    type Balance = Balance;
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = IdentityFee<Balance>;
    type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
    type WeightInfo = ();
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

/// GRANDPA finality, so that light clients (smoldot) and full nodes see
/// blocks finalized. The authority set comes from genesis; there is no
/// session pallet, so equivocation reports are not supported.
impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<32>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = frame::deps::sp_core::Void;
    type EquivocationReportSystem = ();
}

impl pallet_tick_stream::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MaxPayees = ConstU32<16>;
    type WeightInfo = pallet_tick_stream::weights::SubstrateWeight<Runtime>;
}

/// The pallets `frame-omni-bencher` can benchmark in a wasm built with the
/// `runtime-benchmarks` feature (see docs/CHAIN.md for the command).
#[cfg(feature = "runtime-benchmarks")]
mod benches {
    polkadot_sdk::frame_benchmarking::define_benchmarks!([pallet_tick_stream, TickStream]);
}

impl_runtime_apis! {
    #[cfg(feature = "runtime-benchmarks")]
    impl polkadot_sdk::frame_benchmarking::Benchmark<Block> for Runtime {
        fn benchmark_metadata(extra: bool) -> (
            Vec<polkadot_sdk::frame_benchmarking::BenchmarkList>,
            Vec<frame::deps::frame_support::traits::StorageInfo>,
        ) {
            use polkadot_sdk::frame_benchmarking::BenchmarkList;
            use frame::deps::frame_support::traits::StorageInfoTrait;
            let mut list = Vec::<BenchmarkList>::new();
            list_benchmarks!(list, extra);
            (list, AllPalletsWithSystem::storage_info())
        }

        fn dispatch_benchmark(
            config: polkadot_sdk::frame_benchmarking::BenchmarkConfig,
        ) -> Result<Vec<polkadot_sdk::frame_benchmarking::BenchmarkBatch>, alloc::string::String> {
            use polkadot_sdk::frame_benchmarking::BenchmarkBatch;
            use frame::deps::frame_support::traits::WhitelistedStorageKeys;
            let whitelist = AllPalletsWithSystem::whitelisted_storage_keys();
            let mut batches = Vec::<BenchmarkBatch>::new();
            let params = (&config, &whitelist);
            add_benchmarks!(params, batches);
            Ok(batches)
        }
    }

    impl apis::Core<Block> for Runtime {
        fn version() -> RuntimeVersion {
            VERSION
        }
        fn execute_block(block: <Block as frame::traits::Block>::LazyBlock) {
            RuntimeExecutive::execute_block(block)
        }
        fn initialize_block(header: &Header) -> ExtrinsicInclusionMode {
            RuntimeExecutive::initialize_block(header)
        }
    }

    impl apis::Metadata<Block> for Runtime {
        fn metadata() -> OpaqueMetadata {
            OpaqueMetadata::new(Runtime::metadata().into())
        }
        fn metadata_at_version(version: u32) -> Option<OpaqueMetadata> {
            Runtime::metadata_at_version(version)
        }
        fn metadata_versions() -> Vec<u32> {
            Runtime::metadata_versions()
        }
    }

    impl apis::BlockBuilder<Block> for Runtime {
        fn apply_extrinsic(extrinsic: UncheckedExtrinsic) -> ApplyExtrinsicResult {
            RuntimeExecutive::apply_extrinsic(extrinsic)
        }
        fn finalize_block() -> Header {
            RuntimeExecutive::finalize_block()
        }
        fn inherent_extrinsics(data: InherentData) -> Vec<UncheckedExtrinsic> {
            data.create_extrinsics()
        }
        fn check_inherents(block: <Block as frame::traits::Block>::LazyBlock, data: InherentData) -> CheckInherentsResult {
            data.check_extrinsics(&block)
        }
    }

    impl apis::TaggedTransactionQueue<Block> for Runtime {
        fn validate_transaction(
            source: TransactionSource,
            tx: UncheckedExtrinsic,
            block_hash: <Runtime as frame_system::Config>::Hash,
        ) -> TransactionValidity {
            RuntimeExecutive::validate_transaction(source, tx, block_hash)
        }
    }

    impl apis::OffchainWorkerApi<Block> for Runtime {
        fn offchain_worker(header: &Header) {
            RuntimeExecutive::offchain_worker(header)
        }
    }

    impl apis::AuraApi<Block, AuraId> for Runtime {
        fn slot_duration() -> apis::SlotDuration {
            apis::SlotDuration::from_millis(Aura::slot_duration())
        }
        fn authorities() -> Vec<AuraId> {
            pallet_aura::Authorities::<Runtime>::get().into_inner()
        }
    }

    impl sp_consensus_grandpa::GrandpaApi<Block> for Runtime {
        fn grandpa_authorities() -> sp_consensus_grandpa::AuthorityList {
            Grandpa::grandpa_authorities()
        }
        fn current_set_id() -> sp_consensus_grandpa::SetId {
            Grandpa::current_set_id()
        }
        fn submit_report_equivocation_unsigned_extrinsic(
            _equivocation_proof: sp_consensus_grandpa::EquivocationProof<
                <Block as frame::traits::Block>::Hash,
                BlockNumber,
            >,
            _key_owner_proof: sp_consensus_grandpa::OpaqueKeyOwnershipProof,
        ) -> Option<()> {
            None
        }
        fn generate_key_ownership_proof(
            _set_id: sp_consensus_grandpa::SetId,
            _authority_id: sp_consensus_grandpa::AuthorityId,
        ) -> Option<sp_consensus_grandpa::OpaqueKeyOwnershipProof> {
            None
        }
    }

    impl apis::SessionKeys<Block> for Runtime {
        fn generate_session_keys(owner: Vec<u8>, seed: Option<Vec<u8>>) -> apis::OpaqueGeneratedSessionKeys {
            SessionKeys::generate(&owner, seed).into()
        }
        fn decode_session_keys(encoded: Vec<u8>) -> Option<Vec<(Vec<u8>, apis::KeyTypeId)>> {
            SessionKeys::decode_into_raw_public_keys(&encoded)
        }
    }

    impl apis::AccountNonceApi<Block, AccountId, Nonce> for Runtime {
        fn account_nonce(account: AccountId) -> Nonce {
            System::account_nonce(account)
        }
    }

    impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentApi<Block, Balance> for Runtime {
        fn query_info(uxt: UncheckedExtrinsic, len: u32) -> pallet_transaction_payment_rpc_runtime_api::RuntimeDispatchInfo<Balance> {
            TransactionPayment::query_info(uxt, len)
        }
        fn query_fee_details(uxt: UncheckedExtrinsic, len: u32) -> pallet_transaction_payment::FeeDetails<Balance> {
            TransactionPayment::query_fee_details(uxt, len)
        }
        fn query_weight_to_fee(weight: Weight) -> Balance {
            TransactionPayment::weight_to_fee(weight)
        }
        fn query_length_to_fee(length: u32) -> Balance {
            TransactionPayment::length_to_fee(length)
        }
    }

    impl apis::GenesisBuilder<Block> for Runtime {
        fn build_state(config: Vec<u8>) -> GenesisBuilderResult {
            build_state::<RuntimeGenesisConfig>(config)
        }
        fn get_preset(id: &Option<PresetId>) -> Option<Vec<u8>> {
            get_preset::<RuntimeGenesisConfig>(id, genesis::get_preset)
        }
        fn preset_names() -> Vec<PresetId> {
            genesis::preset_names()
        }
    }
}

#[cfg(test)]
mod tests;
