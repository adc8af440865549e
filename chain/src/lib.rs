//! Off-chain side of Vilokanam's per-second payments.
//!
//! A viewer's node pays per second watched through a channel of the
//! `tick-stream` pallet (`runtime/pallets/tick-stream`): one deposit that
//! can pay several payees (the creator, later the relays). Every second it
//! signs each payee a [`Voucher`] for the *cumulative* amount owed to it;
//! each payee keeps only its best one and submits it on chain with
//! `claim` when it likes. This crate holds:
//!
//! - [`voucher`]: the signed message, byte-identical to the pallet's
//!   (a shared test vector pins it on both sides), signing, and single and
//!   batch verification;
//! - [`channel`]: IO-less accounting for both ends: [`channel::Payer`]
//!   turns amounts owed into vouchers, never more in total than the
//!   deposit nor to a payee than its limit, and
//!   [`channel::Payee`] checks incoming vouchers with the same rules the
//!   pallet applies, so a payee never accepts a voucher the chain would
//!   refuse.
//!
//! - [`client`]: the typed settlement client (subxt) over a websocket RPC
//!   endpoint or the embedded smoldot light client (`light-client/`);
//! - [`account`]: the node's sr25519 chain account from a secret URI;
//! - [`amount`]: TICK amounts as people write them;
//! - `dev_chain` (feature `dev-chain`): the dev chain launcher, with the
//!   shipped raw chain spec and chopsticks installed on first use;
//! - `test_utils` (feature `test-utils`): the skip-or-require switch of
//!   tests;
//! - [`runtime`]: types generated from the runtime's metadata.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod account;
pub mod amount;
pub mod channel;
pub mod client;
#[cfg(feature = "dev-chain")]
pub mod dev_chain;
pub mod runtime;
#[cfg(feature = "test-utils")]
pub mod test_utils;
pub mod voucher;

pub use amount::{
    format_amount, format_fee, format_rate, parse_amount, parse_fee, parse_rate, AmountError,
    DECIMALS,
};
pub use channel::{Payee, Payer, Terms};
pub use client::{
    AccountBalance, AccountId, Balance, BlockNumber, ChainStatus, ChannelId, ChannelInfo,
    ChannelSnapshot, Claimed, Closed, ConnectOptions, DispatchCost, Endpoint, OpenTerms, PayeeInfo,
    Receipt, Settlement, SettlementError, TickEvent,
};
pub use voucher::{Voucher, VoucherError};
