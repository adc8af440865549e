//! FRAME runtime and the `tick-stream` pallet.
//!
//! Not built yet (issue #3): per-second payment channels (open, top-up,
//! claim with ed25519 vouchers, close) in a Substrate runtime built to wasm.
