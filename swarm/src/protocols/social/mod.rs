//! Profiles and follows with no server: signed records on the Kademlia DHT
//! and the social gossip topic, checked by every node before they are
//! stored or forwarded.
//!
//! - [`wire`]: the records (profile, follows, followers) and their keys;
//! - [`core`]: the rules (signature by the key a record is about, newer
//!   version, size limit, expiry, merge of follow operations) and the rates;
//! - [`actor`]: the rules on the swarm (filtered DHT puts, checked lookups,
//!   the topic, a push to new peers).

pub mod actor;
pub mod core;
pub mod wire;

#[cfg(test)]
mod tests;

pub use self::core::{RecordError, SocialConfig};
pub use wire::{
    FollowOp, Profile, RecordKey, RecordKind, SignedFollowOp, SignedProfile, SocialRecord,
    SOCIAL_TOPIC,
};
