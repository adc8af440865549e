//! Paid bandwidth: a node that serves chunk payloads may charge for the
//! bytes, per MiB, and every node that pulls pays the peer it pulled from,
//! after the payload verified against its CID.
//!
//! The market rides on the chunk protocol (`/vilokanam/chunk/5`): a node
//! asks each peer for its [`BandwidthTerms`] once per connection (fee,
//! payee account, chain, credit); payloads are pulled as before; after a
//! payload verified, the puller signs a voucher for the bytes (cumulative,
//! naming the server's account as payee on the puller's own channel) and
//! sends it as a `Pay` request. A server extends each peer a bounded
//! credit ([`BandwidthTerms::credit_bytes`]) and answers `PaymentRequired`
//! once a peer's unpaid bytes would exceed it; a voucher that raises what
//! the peer paid lets it be served again at once.
//!
//! - [`core`]: the IO-less accounting of both ends: the server's
//!   [`CreditLedger`] (what each peer was served, paid, owes; whom to
//!   refuse) and the puller's [`Purchases`] (what it verified from each
//!   peer and owes it).
//!
//! Checking a voucher needs the chain (the channel's voucher key, deposit
//! and payee slots), so the node does it: the swarm reports each payment
//! and the node credits the peer with what the voucher raised.

pub mod core;

pub use self::core::*;

#[cfg(test)]
mod tests;
