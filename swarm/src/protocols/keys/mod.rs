//! The paywall: epoch keys of paid streams, bought with vouchers over
//! `/vilokanam/keys/1` (docs/PAYMENTS.md).
//!
//! A paid stream's payloads are encrypted per *epoch* (a few seconds of
//! media) with ChaCha20-Poly1305; the chunk's CID addresses the
//! ciphertext, so relays verify and forward what they cannot watch. A
//! viewer's node asks the creator's node for each epoch's key, sending its
//! latest voucher; the key comes back sealed to the viewer's voucher key,
//! and only if the vouchers pay for every epoch the viewer already has
//! (one epoch of credit).
//!
//! - [`paywall`]: the cryptography (epoch keys, payloads, sealed keys);
//! - [`wire`]: the request and response, size-capped, with a distinct
//!   refusal for each reason;
//! - [`codec`]: the request-response codec;
//! - [`core`]: the IO-less key-release policy;
//! - [`actor`]: the glue on the swarm (requests out, requests in to the
//!   node, answers back by id).

pub mod actor;
pub mod codec;
pub mod core;
pub mod paywall;
pub mod wire;

#[cfg(test)]
mod tests;
