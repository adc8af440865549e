//! Vilokanam's wire protocols, one folder each: wire format, codec,
//! IO-less cores (policy), and the actor that runs them on the swarm.
//!
//! - [`live`]: live streams (announce, then pull);
//! - [`keys`]: the paywall of paid streams (epoch keys for vouchers);
//! - [`bandwidth`]: fees for serving payloads, paid per verified byte;
//! - [`chat`]: live chat with moderation every node enforces;
//! - [`bitswap`]: IPFS block exchange (VOD blocks, with Kubo and Helia);
//! - [`social`]: profiles and follows as signed DHT records.

pub mod bandwidth;
pub mod bitswap;
mod bucket;
pub mod chat;
pub mod keys;
pub mod live;
pub mod social;
