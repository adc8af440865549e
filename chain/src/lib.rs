//! Vouchers, payment channels and the settlement client.
//!
//! Not built yet (issue #3): this crate will hold the off-chain per-second
//! vouchers signed with the node's ed25519 key, payment-channel accounting,
//! and a typed subxt client for the `tick-stream` pallet.
