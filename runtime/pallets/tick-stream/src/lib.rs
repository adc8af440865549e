//! # tick-stream: per-second payment channels
//!
//! A viewer (payer) opens a unidirectional channel to a creator or relay
//! (payee) with a deposit that stays in the payer's account under a
//! *hold*, not in a pallet account. While watching, the payer's node signs
//! off-chain vouchers with an ed25519 key (`voucher_key`, the node's key):
//! each voucher states the *cumulative* amount owed so far. The payee
//! submits only the latest voucher with [`Pallet::claim`]; the pallet pays
//! out the difference to what was already claimed, straight from the hold.
//!
//! A voucher signs `VOUCHER_TAG ++ genesis_hash ++ channel_id (u64 LE) ++
//! cumulative_amount (SCALE)`, so it is bound to one chain, one channel and
//! one amount. The claim names the chain it was signed for, so a voucher
//! for another chain is refused as [`Error::WrongChain`] rather than as a
//! bad signature; older and replayed vouchers, over-deposit amounts and
//! foreign keys each have their own error too.
//!
//! Ticks (seconds paid for, `cumulative / price_per_second`) are tracked
//! per channel and per payee for engagement statistics.
//!
//! The payee may close a channel at any time; the payer only after
//! `expires_at`. Closing releases the unclaimed rest of the deposit to the
//! payer, exactly.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
pub mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

/// Domain tag that starts every signed voucher message.
pub const VOUCHER_TAG: [u8; 16] = *b"tick-stream/v1\0\0";

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
    use polkadot_sdk::sp_runtime::traits::{CheckedAdd, CheckedSub, Zero};
    use scale_info::TypeInfo;

    /// Balance type of the configured currency.
    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

    /// Channel identifier.
    pub type ChannelId = u64;

    /// A payment channel.
    #[derive(
        Clone, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
    )]
    pub struct Channel<AccountId, Balance, BlockNumber> {
        /// Who pays (holds the deposit).
        pub payer: AccountId,
        /// Who is paid.
        pub payee: AccountId,
        /// ed25519 key that signs vouchers off chain (the payer's node key).
        pub voucher_key: [u8; 32],
        /// Price of one second.
        pub price_per_second: Balance,
        /// Total deposit put on hold so far.
        pub deposit: Balance,
        /// Total paid out to the payee so far.
        pub claimed: Balance,
        /// After this block the payer may close.
        pub expires_at: BlockNumber,
        /// Seconds paid for so far.
        pub ticks: u64,
    }

    /// A channel as stored.
    pub type ChannelOf<T> =
        Channel<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Reasons this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A channel deposit.
        #[codec(index = 0)]
        ChannelDeposit,
    }

    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The currency whose funds are held and paid.
        type Currency: Mutate<Self::AccountId>
            + MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
            + InspectHold<Self::AccountId>;
        /// The runtime's aggregated hold reason.
        type RuntimeHoldReason: From<HoldReason>;
        /// Weights of the calls.
        type WeightInfo: WeightInfo;
    }

    /// Open channels.
    #[pallet::storage]
    pub type Channels<T: Config> = StorageMap<_, Blake2_128Concat, ChannelId, ChannelOf<T>>;

    /// Next channel id.
    #[pallet::storage]
    pub type NextChannelId<T> = StorageValue<_, ChannelId, ValueQuery>;

    /// Seconds paid to each payee over all channels (engagement statistics).
    #[pallet::storage]
    pub type PayeeTicks<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u64, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A channel was opened.
        ChannelOpened {
            /// Channel.
            channel: ChannelId,
            /// Payer.
            payer: T::AccountId,
            /// Payee.
            payee: T::AccountId,
            /// Deposit held.
            deposit: BalanceOf<T>,
            /// Price per second.
            price_per_second: BalanceOf<T>,
            /// Expiry block.
            expires_at: BlockNumberFor<T>,
        },
        /// More deposit was held.
        ToppedUp {
            /// Channel.
            channel: ChannelId,
            /// Added amount.
            amount: BalanceOf<T>,
            /// New total deposit.
            deposit: BalanceOf<T>,
        },
        /// The expiry moved later.
        Extended {
            /// Channel.
            channel: ChannelId,
            /// New expiry block.
            expires_at: BlockNumberFor<T>,
        },
        /// A voucher was claimed.
        Claimed {
            /// Channel.
            channel: ChannelId,
            /// Paid out now.
            amount: BalanceOf<T>,
            /// Cumulative amount of the voucher.
            cumulative: BalanceOf<T>,
            /// Seconds paid for so far on this channel.
            ticks: u64,
        },
        /// The channel was closed and the rest refunded.
        ChannelClosed {
            /// Channel.
            channel: ChannelId,
            /// Returned to the payer.
            refunded: BalanceOf<T>,
            /// Total paid to the payee.
            claimed: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// No channel with that id.
        ChannelNotFound,
        /// Only the payer may do this.
        NotPayer,
        /// Only the payee may do this.
        NotPayee,
        /// Payer and payee are the same account.
        SelfChannel,
        /// The price per second is zero.
        ZeroPrice,
        /// The deposit does not cover even one second.
        DepositBelowPrice,
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
        /// The voucher's signature does not verify against the channel's key.
        BadSignature,
        /// This exact voucher was already claimed.
        VoucherReplayed,
        /// A later voucher was already claimed.
        VoucherOutdated,
        /// The voucher asks for more than the deposit.
        ExceedsDeposit,
        /// The payer may close only after expiry.
        ChannelNotExpired,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Opens a channel to `payee`, holding `deposit` from the caller.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::open_channel())]
        pub fn open_channel(
            origin: OriginFor<T>,
            payee: T::AccountId,
            voucher_key: [u8; 32],
            price_per_second: BalanceOf<T>,
            deposit: BalanceOf<T>,
            expires_at: BlockNumberFor<T>,
        ) -> DispatchResult {
            let payer = ensure_signed(origin)?;
            ensure!(payer != payee, Error::<T>::SelfChannel);
            ensure!(!price_per_second.is_zero(), Error::<T>::ZeroPrice);
            ensure!(deposit >= price_per_second, Error::<T>::DepositBelowPrice);
            ensure!(
                expires_at > frame_system::Pallet::<T>::block_number(),
                Error::<T>::ExpiryInPast
            );
            T::Currency::hold(&HoldReason::ChannelDeposit.into(), &payer, deposit)
                .map_err(|_| Error::<T>::InsufficientFunds)?;
            let channel = NextChannelId::<T>::get();
            NextChannelId::<T>::put(channel.checked_add(1).ok_or(Error::<T>::Overflow)?);
            Channels::<T>::insert(
                channel,
                Channel {
                    payer: payer.clone(),
                    payee: payee.clone(),
                    voucher_key,
                    price_per_second,
                    deposit,
                    claimed: Zero::zero(),
                    expires_at,
                    ticks: 0,
                },
            );
            Self::deposit_event(Event::ChannelOpened {
                channel,
                payer,
                payee,
                deposit,
                price_per_second,
                expires_at,
            });
            Ok(())
        }

        /// Holds `amount` more for the channel.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::top_up())]
        pub fn top_up(
            origin: OriginFor<T>,
            channel: ChannelId,
            amount: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
            Channels::<T>::try_mutate(channel, |c| {
                let c = c.as_mut().ok_or(Error::<T>::ChannelNotFound)?;
                ensure!(c.payer == who, Error::<T>::NotPayer);
                let deposit = c.deposit.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
                T::Currency::hold(&HoldReason::ChannelDeposit.into(), &who, amount)
                    .map_err(|_| Error::<T>::InsufficientFunds)?;
                c.deposit = deposit;
                Self::deposit_event(Event::ToppedUp {
                    channel,
                    amount,
                    deposit,
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

        /// The payee claims the voucher for `cumulative_amount`, signed for
        /// the chain with genesis hash `chain`.
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
                ensure!(c.payee == who, Error::<T>::NotPayee);
                ensure!(chain == Self::genesis_hash(), Error::<T>::WrongChain);
                let msg = voucher_message::<T>(&chain, channel, &cumulative_amount);
                let ok = polkadot_sdk::sp_io::crypto::ed25519_verify(
                    &ed25519::Signature::from_raw(signature),
                    &msg,
                    &ed25519::Public::from_raw(c.voucher_key),
                );
                ensure!(ok, Error::<T>::BadSignature);
                ensure!(cumulative_amount != c.claimed, Error::<T>::VoucherReplayed);
                ensure!(cumulative_amount > c.claimed, Error::<T>::VoucherOutdated);
                ensure!(cumulative_amount <= c.deposit, Error::<T>::ExceedsDeposit);
                let amount = cumulative_amount
                    .checked_sub(&c.claimed)
                    .ok_or(Error::<T>::Overflow)?;
                T::Currency::transfer_on_hold(
                    &HoldReason::ChannelDeposit.into(),
                    &c.payer,
                    &c.payee,
                    amount,
                    Precision::Exact,
                    Restriction::Free,
                    Fortitude::Polite,
                )?;
                let ticks = Self::ticks_for(cumulative_amount, c.price_per_second)?;
                let new_ticks = ticks.saturating_sub(c.ticks);
                PayeeTicks::<T>::mutate(&c.payee, |t| *t = t.saturating_add(new_ticks));
                c.claimed = cumulative_amount;
                c.ticks = ticks;
                Self::deposit_event(Event::Claimed {
                    channel,
                    amount,
                    cumulative: cumulative_amount,
                    ticks,
                });
                Ok(())
            })
        }

        /// Closes the channel: the payee any time, the payer after expiry.
        /// The unclaimed rest of the deposit is released to the payer.
        #[pallet::call_index(4)]
        #[pallet::weight(T::WeightInfo::close())]
        pub fn close(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let c = Channels::<T>::get(channel).ok_or(Error::<T>::ChannelNotFound)?;
            if who == c.payer {
                ensure!(
                    frame_system::Pallet::<T>::block_number() >= c.expires_at,
                    Error::<T>::ChannelNotExpired
                );
            } else {
                ensure!(who == c.payee, Error::<T>::NotPayee);
            }
            let refunded = c
                .deposit
                .checked_sub(&c.claimed)
                .ok_or(Error::<T>::Overflow)?;
            T::Currency::release(
                &HoldReason::ChannelDeposit.into(),
                &c.payer,
                refunded,
                Precision::Exact,
            )?;
            Channels::<T>::remove(channel);
            Self::deposit_event(Event::ChannelClosed {
                channel,
                refunded,
                claimed: c.claimed,
            });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// This chain's genesis hash (what vouchers are bound to).
        pub fn genesis_hash() -> T::Hash {
            frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero())
        }

        fn ticks_for(cumulative: BalanceOf<T>, price: BalanceOf<T>) -> Result<u64, Error<T>> {
            let whole: u128 = cumulative.try_into().map_err(|_| Error::<T>::Overflow)?;
            let price: u128 = price.try_into().map_err(|_| Error::<T>::Overflow)?;
            let t = whole.checked_div(price).ok_or(Error::<T>::Overflow)?;
            u64::try_from(t).map_err(|_| Error::<T>::Overflow)
        }
    }

    /// The exact bytes a voucher signature covers.
    pub fn voucher_message<T: Config>(
        chain: &T::Hash,
        channel: ChannelId,
        cumulative: &BalanceOf<T>,
    ) -> Vec<u8> {
        let mut msg = VOUCHER_TAG.to_vec();
        msg.extend_from_slice(chain.as_ref());
        msg.extend_from_slice(&channel.to_le_bytes());
        cumulative.encode_to(&mut msg);
        msg
    }
}
