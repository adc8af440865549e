//! Storage migrations of the tick-stream pallet.

/// Storage version 0 → 1: single-payee channels become one-payee channels
/// of the multi-payee layout.
///
/// Each old channel keeps its id, payer, voucher key, deposit, claimed
/// amount and expiry; its payee becomes its one named payee with what it
/// claimed so far, `max_payees = 1`, no collateral. The channel is marked
/// `legacy`, so the vouchers its payer's node already signed (tag
/// `tick-stream/v1`, no payee in the message) still claim. The old
/// per-payee tick counters (`PayeeTicks`) are removed: with several payees
/// at different prices a channel has no single price to count seconds by,
/// so seconds are counted off chain (docs/CHAIN.md).
pub mod v1 {
    use crate::pallet::{BalanceOf, Channel, Channels, Config, Pallet, PayeeState, Payees};
    use codec::{Decode, Encode};
    use polkadot_sdk::frame_support::{
        migrations::VersionedMigration, storage_alias, traits::UncheckedOnRuntimeUpgrade,
        weights::Weight, Blake2_128Concat,
    };
    use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};

    /// A channel as storage version 0 stored it.
    #[derive(Encode, Decode, Clone, PartialEq, Eq, Debug)]
    pub struct OldChannel<AccountId, Balance, BlockNumber> {
        /// Who pays.
        pub payer: AccountId,
        /// Who is paid.
        pub payee: AccountId,
        /// Voucher key.
        pub voucher_key: [u8; 32],
        /// Price of one second.
        pub price_per_second: Balance,
        /// Deposit held.
        pub deposit: Balance,
        /// Paid out so far.
        pub claimed: Balance,
        /// Expiry block.
        pub expires_at: BlockNumber,
        /// Seconds paid.
        pub ticks: u64,
    }

    /// An old channel with this runtime's types.
    pub type OldChannelOf<T> =
        OldChannel<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    /// Version 0's `PayeeTicks` map, to remove it.
    #[storage_alias]
    pub type PayeeTicks<T: Config> =
        StorageMap<Pallet<T>, Blake2_128Concat, <T as frame_system::Config>::AccountId, u64>;

    /// The migration without its version check; use [`MigrateV0ToV1`].
    pub struct InnerMigrateV0ToV1<T>(core::marker::PhantomData<T>);

    impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV0ToV1<T> {
        fn on_runtime_upgrade() -> Weight {
            let mut reads = 0u64;
            let mut writes = 0u64;
            Channels::<T>::translate::<OldChannelOf<T>, _>(|id, old| {
                reads += 1;
                writes += 2;
                Payees::<T>::insert(
                    id,
                    &old.payee,
                    PayeeState {
                        claimed: old.claimed,
                        named: true,
                    },
                );
                Some(Channel {
                    payer: old.payer,
                    voucher_key: old.voucher_key,
                    deposit: old.deposit,
                    collateral: 0u32.into(),
                    max_payees: 1,
                    named_payees: 1,
                    bound_payees: 1,
                    payee_cap: old.deposit,
                    paid: old.claimed,
                    expires_at: old.expires_at,
                    legacy: true,
                })
            });
            let removed = PayeeTicks::<T>::clear(u32::MAX, None);
            reads += u64::from(removed.loops);
            writes += u64::from(removed.unique);
            <T as frame_system::Config>::DbWeight::get().reads_writes(reads, writes)
        }
    }

    /// Storage version 0 → 1, run once (the version check is built in).
    pub type MigrateV0ToV1<T> = VersionedMigration<
        0,
        1,
        InnerMigrateV0ToV1<T>,
        Pallet<T>,
        <T as frame_system::Config>::DbWeight,
    >;

    use polkadot_sdk::frame_support::traits::Get;
}
