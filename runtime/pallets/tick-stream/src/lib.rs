//! # tick-stream: one deposit, many payees, paid by off-chain vouchers
//!
//! A viewer (payer) opens a *channel*: one deposit, held in the payer's
//! own account (a *hold*, not a transfer), that can pay up to
//! `max_payees` payees — the creator whose stream it watches and, later,
//! the relays that forward it. While watching, the payer's node signs
//! off-chain vouchers with an ed25519 key (`voucher_key`, the node's
//! voucher key). A voucher names its payee and states the *cumulative*
//! amount owed to that payee on that channel. Each payee claims on its own
//! with [`Pallet::claim`], submitting only its latest voucher; the pallet
//! pays the difference to what that payee already claimed.
//!
//! A voucher signs `VOUCHER_TAG ++ genesis_hash ++ channel_id (u64 LE) ++
//! payee (32 bytes) ++ cumulative_amount (u128 LE)`, so it is bound to one
//! chain, one channel, one payee and one amount. Each failure has its own
//! error: another chain ([`Error::WrongChain`]), a bad or foreign signature
//! (also a voucher naming another payee), a replayed or older voucher, an
//! amount over the payee's limit, a payee beyond `max_payees`.
//!
//! ## Why over-issuing never pays (docs/CHAIN.md argues it in full)
//!
//! Payees cannot see each other's vouchers, so a payer could sign more in
//! total than its deposit. The pallet bounds what the payer can be made
//! to owe and makes it put that bound at stake:
//! - payees *named* at open may each be owed up to the deposit `D`; any
//!   other payee binds to one of the remaining `max_payees - named` slots
//!   with its first claim and may be owed at most `payee_cap` `F ≤ D`;
//! - so everything the payer can ever owe is at most
//!   `W = named·D + (max_payees - named)·F`, and the payer must hold
//!   collateral `C ≥ W - D` beside the deposit;
//! - claims are paid from the deposit first, then from the collateral
//!   (the channel is then *overdrawn*: proof the payer signed more than
//!   `D`). Every voucher a payee holds within its limit is paid in full;
//! - when an overdrawn channel closes, the unused collateral is burned, so
//!   an over-issuing payer loses `D + C ≥ W`, at least everything it
//!   could have received service for. An honest payer never overdraws
//!   and gets the unused deposit and all of its collateral back.
//!
//! The payer may close after `expires_at` (payees claim before it); the
//! only payee of a single-payee channel may close it at any time. Closing
//! releases the rest exactly.
//!
//! Storage version 1 replaced the single-payee channels of version 0; the
//! [`migrations::v1`] migration moves them over, and their old (v1-tagged,
//! payee-less) vouchers keep working.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
pub mod benchmarking;
pub mod migrations;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

/// Domain tag that starts every signed voucher message.
pub const VOUCHER_TAG: [u8; 16] = *b"tick-stream/v2\0\0";

/// Tag of the payee-less vouchers of single-payee channels migrated from
/// storage version 0 (see [`migrations::v1`]).
pub const LEGACY_VOUCHER_TAG: [u8; 16] = *b"tick-stream/v1\0\0";

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::*;
    use alloc::vec::Vec;
    use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
    use polkadot_sdk::frame_support::{
        pallet_prelude::*,
        traits::{
            fungible::{Inspect, InspectHold, Mutate, MutateHold},
            tokens::{Fortitude, Precision, Restriction},
        },
    };
    use polkadot_sdk::frame_system::{self, pallet_prelude::*};
    use polkadot_sdk::sp_core::ed25519;
    use polkadot_sdk::sp_runtime::traits::{CheckedAdd, CheckedMul, CheckedSub, Saturating, Zero};
    use scale_info::TypeInfo;

    /// Balance type of the configured currency.
    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

    /// Channel identifier.
    pub type ChannelId = u64;

    /// The current storage version.
    pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

    /// A channel: one payer's deposit and collateral, paying up to
    /// `max_payees` payees.
    #[derive(
        Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
    )]
    pub struct Channel<AccountId, Balance, BlockNumber> {
        /// Who pays (holds the deposit and the collateral).
        pub payer: AccountId,
        /// ed25519 key that signs vouchers off chain (the payer's node key).
        pub voucher_key: [u8; 32],
        /// Deposit on hold: what vouchers are paid from.
        pub deposit: Balance,
        /// Collateral on hold: pays claims beyond the deposit, burned when
        /// the channel closes overdrawn.
        pub collateral: Balance,
        /// Most payees this channel pays (named ones included).
        pub max_payees: u32,
        /// Payees named at open (each may be owed up to the deposit).
        pub named_payees: u32,
        /// Payees bound so far (named, plus late ones that claimed).
        pub bound_payees: u32,
        /// Most a late (not named) payee may be owed.
        pub payee_cap: Balance,
        /// Total paid out so far, to all payees.
        pub paid: Balance,
        /// After this block the payer may close.
        pub expires_at: BlockNumber,
        /// Migrated from storage version 0: its vouchers carry the legacy
        /// tag and no payee.
        pub legacy: bool,
    }

    /// A channel as stored.
    pub type ChannelOf<T> =
        Channel<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    /// One payee's state on one channel.
    #[derive(
        Clone,
        Copy,
        Encode,
        Decode,
        DecodeWithMemTracking,
        PartialEq,
        Eq,
        Debug,
        TypeInfo,
        MaxEncodedLen,
        Default,
    )]
    pub struct PayeeState<Balance> {
        /// Cumulative amount claimed (the best voucher's amount).
        pub claimed: Balance,
        /// Named at open: limited by the deposit, not by `payee_cap`.
        pub named: bool,
    }

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    /// Reasons this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A channel deposit (pays vouchers).
        #[codec(index = 0)]
        ChannelDeposit,
        /// A channel's collateral (pays claims beyond the deposit; burned
        /// if the channel closes overdrawn).
        #[codec(index = 1)]
        ChannelCollateral,
    }

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The currency whose funds are held and paid.
        type Currency: Mutate<Self::AccountId>
            + MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
            + InspectHold<Self::AccountId>;
        /// The runtime's aggregated hold reason.
        type RuntimeHoldReason: From<HoldReason>;
        /// Most payees one channel may pay (bounds `open`'s payee list and
        /// the work of `close`).
        #[pallet::constant]
        type MaxPayees: Get<u32>;
        /// Weights of the calls.
        type WeightInfo: WeightInfo;
    }

    /// Open channels.
    #[pallet::storage]
    pub type Channels<T: Config> = StorageMap<_, Blake2_128Concat, ChannelId, ChannelOf<T>>;

    /// Payees bound to each channel, with what each has claimed.
    #[pallet::storage]
    pub type Payees<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        ChannelId,
        Blake2_128Concat,
        T::AccountId,
        PayeeState<BalanceOf<T>>,
    >;

    /// Next channel id.
    #[pallet::storage]
    pub type NextChannelId<T> = StorageValue<_, ChannelId, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A channel was opened.
        ChannelOpened {
            /// Channel.
            channel: ChannelId,
            /// Payer.
            payer: T::AccountId,
            /// Payees named at open.
            payees: Vec<T::AccountId>,
            /// Most payees.
            max_payees: u32,
            /// Most a late payee may be owed.
            payee_cap: BalanceOf<T>,
            /// Deposit held.
            deposit: BalanceOf<T>,
            /// Collateral held.
            collateral: BalanceOf<T>,
            /// Expiry block.
            expires_at: BlockNumberFor<T>,
        },
        /// More deposit and/or collateral was held.
        ToppedUp {
            /// Channel.
            channel: ChannelId,
            /// New total deposit.
            deposit: BalanceOf<T>,
            /// New total collateral.
            collateral: BalanceOf<T>,
        },
        /// The expiry moved later.
        Extended {
            /// Channel.
            channel: ChannelId,
            /// New expiry block.
            expires_at: BlockNumberFor<T>,
        },
        /// A payee claimed a voucher.
        Claimed {
            /// Channel.
            channel: ChannelId,
            /// Payee paid.
            payee: T::AccountId,
            /// Paid out now.
            amount: BalanceOf<T>,
            /// Cumulative amount of the voucher.
            cumulative: BalanceOf<T>,
        },
        /// A claim was paid (partly) from the collateral: the payer signed
        /// more in total than its deposit. Its unused collateral will be
        /// burned when the channel closes.
        Overdrawn {
            /// Channel.
            channel: ChannelId,
            /// Paid from the collateral by this claim.
            from_collateral: BalanceOf<T>,
        },
        /// The channel was closed.
        ChannelClosed {
            /// Channel.
            channel: ChannelId,
            /// Returned to the payer (unused deposit, plus the collateral
            /// unless overdrawn).
            refunded: BalanceOf<T>,
            /// Total paid to all payees.
            paid: BalanceOf<T>,
            /// Collateral burned because the channel was overdrawn.
            slashed: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// No channel with that id.
        ChannelNotFound,
        /// Only the payer may do this.
        NotPayer,
        /// Only a payee of this channel may do this.
        NotPayee,
        /// The payer named itself as a payee, or claims from its own channel.
        SelfPayee,
        /// A payee is named twice.
        DuplicatePayee,
        /// `max_payees` is zero or above the runtime's `MaxPayees`.
        MaxPayeesOutOfRange,
        /// More payees named than `max_payees`, or every payee slot is
        /// already bound to another payee.
        TooManyPayees,
        /// The collateral is below what the payer could be made to owe
        /// beyond the deposit (`named·D + late·cap - D`).
        CollateralTooLow,
        /// The amount is zero.
        ZeroAmount,
        /// The expiry is not in the future.
        ExpiryInPast,
        /// A new expiry must be later than the current one.
        ExpiryNotLater,
        /// The payer cannot put this much on hold.
        InsufficientFunds,
        /// An amount overflowed.
        Overflow,
        /// The voucher was signed for another chain.
        WrongChain,
        /// The voucher's signature does not verify against the channel's
        /// key for this channel, payee and amount.
        BadSignature,
        /// This exact voucher was already claimed.
        VoucherReplayed,
        /// A later voucher was already claimed.
        VoucherOutdated,
        /// A named payee's voucher asks for more than the deposit.
        ExceedsDeposit,
        /// A late payee's voucher asks for more than the channel's
        /// `payee_cap`.
        ExceedsPayeeCap,
        /// The payer may close only after expiry.
        ChannelNotExpired,
        /// Only the payer may close a channel with several payees (a payee
        /// closing would cut the others off).
        PayeeCannotClose,
        /// The channel is overdrawn: it takes no more deposit.
        Overdrawn,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Opens a channel holding `deposit` and `collateral` from the
        /// caller. `payees` are bound now (each may be owed up to the
        /// deposit); up to `max_payees - payees.len()` more bind with their
        /// first claim, each limited to `payee_cap`. The collateral must
        /// cover what the payer could be made to owe beyond the deposit.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::open())]
        #[allow(clippy::too_many_arguments)]
        pub fn open(
            origin: OriginFor<T>,
            voucher_key: [u8; 32],
            payees: BoundedVec<T::AccountId, T::MaxPayees>,
            max_payees: u32,
            payee_cap: BalanceOf<T>,
            deposit: BalanceOf<T>,
            collateral: BalanceOf<T>,
            expires_at: BlockNumberFor<T>,
        ) -> DispatchResultWithPostInfo {
            let payer = ensure_signed(origin)?;
            ensure!(
                (1..=T::MaxPayees::get()).contains(&max_payees),
                Error::<T>::MaxPayeesOutOfRange
            );
            let named = payees.len() as u32;
            ensure!(named <= max_payees, Error::<T>::TooManyPayees);
            ensure!(!payees.contains(&payer), Error::<T>::SelfPayee);
            for (i, p) in payees.iter().enumerate() {
                ensure!(!payees[..i].contains(p), Error::<T>::DuplicatePayee);
            }
            ensure!(!deposit.is_zero(), Error::<T>::ZeroAmount);
            ensure!(
                expires_at > frame_system::Pallet::<T>::block_number(),
                Error::<T>::ExpiryInPast
            );
            let needed = required_collateral::<T>(deposit, named, max_payees, payee_cap)?;
            ensure!(collateral >= needed, Error::<T>::CollateralTooLow);
            T::Currency::hold(&HoldReason::ChannelDeposit.into(), &payer, deposit)
                .map_err(|_| Error::<T>::InsufficientFunds)?;
            if !collateral.is_zero() {
                T::Currency::hold(&HoldReason::ChannelCollateral.into(), &payer, collateral)
                    .map_err(|_| Error::<T>::InsufficientFunds)?;
            }
            let channel = NextChannelId::<T>::get();
            NextChannelId::<T>::put(channel.checked_add(1).ok_or(Error::<T>::Overflow)?);
            for p in payees.iter() {
                Payees::<T>::insert(
                    channel,
                    p,
                    PayeeState {
                        claimed: Zero::zero(),
                        named: true,
                    },
                );
            }
            Channels::<T>::insert(
                channel,
                Channel {
                    payer: payer.clone(),
                    voucher_key,
                    deposit,
                    collateral,
                    max_payees,
                    named_payees: named,
                    bound_payees: named,
                    payee_cap,
                    paid: Zero::zero(),
                    expires_at,
                    legacy: false,
                },
            );
            Self::deposit_event(Event::ChannelOpened {
                channel,
                payer,
                payees: payees.into_inner(),
                max_payees,
                payee_cap,
                deposit,
                collateral,
                expires_at,
            });
            Ok(Some(open_weight::<T>(named)).into())
        }

        /// Holds `deposit` more deposit and `collateral` more collateral for
        /// the channel; the collateral must still cover the larger deposit.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::top_up())]
        pub fn top_up(
            origin: OriginFor<T>,
            channel: ChannelId,
            deposit: BalanceOf<T>,
            collateral: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(
                !(deposit.is_zero() && collateral.is_zero()),
                Error::<T>::ZeroAmount
            );
            Channels::<T>::try_mutate(channel, |c| {
                let c = c.as_mut().ok_or(Error::<T>::ChannelNotFound)?;
                ensure!(c.payer == who, Error::<T>::NotPayer);
                ensure!(c.paid <= c.deposit, Error::<T>::Overdrawn);
                let new_deposit = c
                    .deposit
                    .checked_add(&deposit)
                    .ok_or(Error::<T>::Overflow)?;
                let new_collateral = c
                    .collateral
                    .checked_add(&collateral)
                    .ok_or(Error::<T>::Overflow)?;
                let needed = required_collateral::<T>(
                    new_deposit,
                    c.named_payees,
                    c.max_payees,
                    c.payee_cap,
                )?;
                ensure!(new_collateral >= needed, Error::<T>::CollateralTooLow);
                if !deposit.is_zero() {
                    T::Currency::hold(&HoldReason::ChannelDeposit.into(), &who, deposit)
                        .map_err(|_| Error::<T>::InsufficientFunds)?;
                }
                if !collateral.is_zero() {
                    T::Currency::hold(&HoldReason::ChannelCollateral.into(), &who, collateral)
                        .map_err(|_| Error::<T>::InsufficientFunds)?;
                }
                c.deposit = new_deposit;
                c.collateral = new_collateral;
                Self::deposit_event(Event::ToppedUp {
                    channel,
                    deposit: new_deposit,
                    collateral: new_collateral,
                });
                Ok(())
            })
        }

        /// Moves the expiry later.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::extend())]
        pub fn extend(
            origin: OriginFor<T>,
            channel: ChannelId,
            expires_at: BlockNumberFor<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Channels::<T>::try_mutate(channel, |c| {
                let c = c.as_mut().ok_or(Error::<T>::ChannelNotFound)?;
                ensure!(c.payer == who, Error::<T>::NotPayer);
                ensure!(expires_at > c.expires_at, Error::<T>::ExpiryNotLater);
                c.expires_at = expires_at;
                Self::deposit_event(Event::Extended {
                    channel,
                    expires_at,
                });
                Ok(())
            })
        }

        /// The caller, as payee, claims its voucher for `cumulative_amount`
        /// signed for the chain with genesis hash `chain`. A payee not yet
        /// bound takes a free payee slot.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::claim())]
        pub fn claim(
            origin: OriginFor<T>,
            channel: ChannelId,
            cumulative_amount: BalanceOf<T>,
            chain: T::Hash,
            signature: [u8; 64],
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Channels::<T>::try_mutate(channel, |c| {
                let c = c.as_mut().ok_or(Error::<T>::ChannelNotFound)?;
                ensure!(who != c.payer, Error::<T>::SelfPayee);
                ensure!(chain == Self::genesis_hash(), Error::<T>::WrongChain);
                let msg = if c.legacy {
                    legacy_voucher_message::<T>(&chain, channel, &cumulative_amount)
                } else {
                    voucher_message::<T>(&chain, channel, &who, &cumulative_amount)
                };
                let ok = polkadot_sdk::sp_io::crypto::ed25519_verify(
                    &ed25519::Signature::from_raw(signature),
                    &msg,
                    &ed25519::Public::from_raw(c.voucher_key),
                );
                ensure!(ok, Error::<T>::BadSignature);
                let bound = Payees::<T>::get(channel, &who);
                let state = match bound {
                    Some(s) => s,
                    None => {
                        ensure!(c.bound_payees < c.max_payees, Error::<T>::TooManyPayees);
                        PayeeState::default()
                    }
                };
                ensure!(
                    cumulative_amount != state.claimed,
                    Error::<T>::VoucherReplayed
                );
                ensure!(
                    cumulative_amount > state.claimed,
                    Error::<T>::VoucherOutdated
                );
                if state.named {
                    ensure!(cumulative_amount <= c.deposit, Error::<T>::ExceedsDeposit);
                } else {
                    ensure!(
                        cumulative_amount <= c.payee_cap.min(c.deposit),
                        Error::<T>::ExceedsPayeeCap
                    );
                }
                let amount = cumulative_amount
                    .checked_sub(&state.claimed)
                    .ok_or(Error::<T>::Overflow)?;
                let from_deposit = amount.min(c.deposit.saturating_sub(c.paid));
                let from_collateral = amount.saturating_sub(from_deposit);
                for (reason, part) in [
                    (HoldReason::ChannelDeposit, from_deposit),
                    (HoldReason::ChannelCollateral, from_collateral),
                ] {
                    if !part.is_zero() {
                        T::Currency::transfer_on_hold(
                            &reason.into(),
                            &c.payer,
                            &who,
                            part,
                            Precision::Exact,
                            Restriction::Free,
                            Fortitude::Polite,
                        )?;
                    }
                }
                c.paid = c.paid.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
                if bound.is_none() {
                    c.bound_payees = c.bound_payees.saturating_add(1);
                }
                Payees::<T>::insert(
                    channel,
                    &who,
                    PayeeState {
                        claimed: cumulative_amount,
                        named: state.named,
                    },
                );
                Self::deposit_event(Event::Claimed {
                    channel,
                    payee: who.clone(),
                    amount,
                    cumulative: cumulative_amount,
                });
                if !from_collateral.is_zero() {
                    Self::deposit_event(Event::Overdrawn {
                        channel,
                        from_collateral,
                    });
                }
                Ok(())
            })
        }

        /// Closes the channel: the payer after expiry, or the only payee of
        /// a single-payee channel at any time. The unused deposit is
        /// released to the payer, and the collateral too unless the channel
        /// is overdrawn, in which case what is left of it is burned.
        /// Charged for every payee slot, refunded down to the payees the
        /// channel bound ([`close_weight`]).
        #[pallet::call_index(4)]
        #[pallet::weight(T::WeightInfo::close())]
        pub fn close(origin: OriginFor<T>, channel: ChannelId) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let c = Channels::<T>::get(channel).ok_or(Error::<T>::ChannelNotFound)?;
            if who == c.payer {
                ensure!(
                    frame_system::Pallet::<T>::block_number() >= c.expires_at,
                    Error::<T>::ChannelNotExpired
                );
            } else {
                ensure!(
                    Payees::<T>::contains_key(channel, &who),
                    Error::<T>::NotPayee
                );
                ensure!(c.max_payees == 1, Error::<T>::PayeeCannotClose);
            }
            let used_deposit = c.paid.min(c.deposit);
            let rest = c
                .deposit
                .checked_sub(&used_deposit)
                .ok_or(Error::<T>::Overflow)?;
            let used_collateral = c.paid.saturating_sub(c.deposit);
            let collateral_left = c
                .collateral
                .checked_sub(&used_collateral)
                .ok_or(Error::<T>::Overflow)?;
            T::Currency::release(
                &HoldReason::ChannelDeposit.into(),
                &c.payer,
                rest,
                Precision::Exact,
            )?;
            let overdrawn = !used_collateral.is_zero();
            let (refunded, slashed) = if overdrawn {
                T::Currency::burn_held(
                    &HoldReason::ChannelCollateral.into(),
                    &c.payer,
                    collateral_left,
                    Precision::Exact,
                    Fortitude::Force,
                )?;
                (rest, collateral_left)
            } else {
                T::Currency::release(
                    &HoldReason::ChannelCollateral.into(),
                    &c.payer,
                    collateral_left,
                    Precision::Exact,
                )?;
                (rest.saturating_add(collateral_left), Zero::zero())
            };
            let _ = Payees::<T>::clear_prefix(channel, c.max_payees, None);
            Channels::<T>::remove(channel);
            Self::deposit_event(Event::ChannelClosed {
                channel,
                refunded,
                paid: c.paid,
                slashed,
            });
            Ok(Some(close_weight::<T>(c.bound_payees)).into())
        }
    }

    impl<T: Config> Pallet<T> {
        /// This chain's genesis hash (what vouchers are bound to).
        pub fn genesis_hash() -> T::Hash {
            frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero())
        }
    }

    /// The weight `open` really used with `named` payees bound: the
    /// benchmark's (run with every payee slot named) less the writes of the
    /// payee records it did not create. The caller is charged the
    /// benchmark's weight and refunded the difference, so a single-payee
    /// channel does not pay for fifteen records it never wrote.
    pub fn open_weight<T: Config>(named: u32) -> Weight {
        let unused = u64::from(T::MaxPayees::get().saturating_sub(named));
        T::WeightInfo::open().saturating_sub(T::DbWeight::get().writes(unused))
    }

    /// The weight `close` really used for a channel with `bound` payees:
    /// the benchmark's (every payee slot bound) less one read and one
    /// write per payee record that did not exist to be removed.
    pub fn close_weight<T: Config>(bound: u32) -> Weight {
        let unused = u64::from(T::MaxPayees::get().saturating_sub(bound));
        T::WeightInfo::close().saturating_sub(T::DbWeight::get().reads_writes(unused, unused))
    }

    /// The collateral a channel needs: everything its payees could be owed
    /// (`named·D + late·min(F, D)`) minus the deposit `D`.
    pub fn required_collateral<T: Config>(
        deposit: BalanceOf<T>,
        named: u32,
        max_payees: u32,
        payee_cap: BalanceOf<T>,
    ) -> Result<BalanceOf<T>, Error<T>> {
        let late = max_payees.saturating_sub(named);
        let named_part = deposit
            .checked_mul(&BalanceOf::<T>::from(named))
            .ok_or(Error::<T>::Overflow)?;
        let late_part = payee_cap
            .min(deposit)
            .checked_mul(&BalanceOf::<T>::from(late))
            .ok_or(Error::<T>::Overflow)?;
        let worst = named_part
            .checked_add(&late_part)
            .ok_or(Error::<T>::Overflow)?;
        Ok(worst.saturating_sub(deposit))
    }

    /// The exact bytes a voucher signature covers: tag, genesis hash,
    /// channel (u64 LE), payee (SCALE: 32 bytes for the runtime's
    /// `AccountId32`), cumulative amount (SCALE: u128 LE).
    pub fn voucher_message<T: Config>(
        chain: &T::Hash,
        channel: ChannelId,
        payee: &T::AccountId,
        cumulative: &BalanceOf<T>,
    ) -> Vec<u8> {
        let mut msg = VOUCHER_TAG.to_vec();
        msg.extend_from_slice(chain.as_ref());
        msg.extend_from_slice(&channel.to_le_bytes());
        payee.encode_to(&mut msg);
        cumulative.encode_to(&mut msg);
        msg
    }

    /// The bytes a voucher of a channel migrated from storage version 0
    /// covers (no payee: such a channel has exactly one).
    pub fn legacy_voucher_message<T: Config>(
        chain: &T::Hash,
        channel: ChannelId,
        cumulative: &BalanceOf<T>,
    ) -> Vec<u8> {
        let mut msg = LEGACY_VOUCHER_TAG.to_vec();
        msg.extend_from_slice(chain.as_ref());
        msg.extend_from_slice(&channel.to_le_bytes());
        cumulative.encode_to(&mut msg);
        msg
    }
}
