//! The paywall: epoch keys of paid streams, bought with vouchers over
//! `/vilokanam/keys/2` (docs/PAYMENTS.md).
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
//! - [`session`]: the long-lived framed stream per viewer and key server
//!   (bounded, idle sessions closed), and the [`session::KeyService`] the
//!   node plugs in;
//! - [`listener`]: a key-only listener (a minimal second swarm under the
//!   node's identity) so that key connections are not full mesh peers;
//! - [`core`]: the IO-less key-release policy.

pub mod core;
pub mod listener;
pub mod paywall;
pub mod session;
pub mod wire;

#[cfg(test)]
mod tests;
