//! libp2p behaviours and wire protocols of a Vilokanam node.
//!
//! A live stream is a sequence of *chunks*: keyframe-aligned media
//! segments whose header (stream, sequence, duration, payload CID, size)
//! the creator signs with ed25519. Headers are gossiped on one gossipsub
//! topic per stream; payloads are pulled by CID over the `/vilokanam/chunk/5`
//! request-response protocol from the peer that forwarded the header.
//! Gossipsub runs in validation mode: a node forwards a header only after
//! it checked the signature, the size limit, the sequence window *and*
//! fetched a payload that matches the CID, so forged or corrupt chunks
//! never travel further than one hop and their senders lose score.
//!
//! The crate is laid out as rust-libp2p lays out its own:
//!
//! - [`protocols`]: one folder per wire protocol (`live`: chunks and
//!   announcements; `keys`: the paywall's key sessions) with its wire
//!   format, codec, IO-less cores and actor;
//! - [`behaviour`]: the composed libp2p behaviour (gossipsub 1.2 with a
//!   bounded subscription filter, Kademlia `/vilokanam/kad/1.0.0`,
//!   identify, ping, request-response, libp2p-stream for key sessions,
//!   mDNS, connection limits);
//! - [`build`]: transports and swarm construction;
//! - [`scoring`]: gossipsub score parameters and application scores;
//! - [`network`]: the single task that owns the `Swarm`, the cloneable
//!   [`Client`] and the [`Event`] stream;
//! - [`metrics`]: Prometheus counters of every event-loop branch;
//! - `sim` (feature `test-utils`): a deterministic simulator that drives
//!   many relay cores over a modelled network in virtual time.
//!
//! Rules: only [`network`] touches a `Swarm` (key sessions are streams
//! handed out of it, served by their own tasks); the cores take `now` and
//! inputs and return outputs (no tokio, no sockets); every map the network
//! can grow is bounded by a documented configuration value.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod behaviour;
pub mod build;
pub mod metrics;
pub mod network;
pub mod protocols;
pub mod scoring;
#[cfg(any(test, feature = "test-utils"))]
pub mod sim;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use build::build_swarm;
pub use libp2p;
pub use network::{
    new, ChunkMeta, Client, Command, Config, Event, EventLoop, PeerInfo, RejectReason, SwarmError,
    SwarmStats,
};
pub use protocols::bandwidth::{BandwidthPayment, BandwidthTerms, LedgerConfig};
pub use protocols::live::actor::LedgerSnapshot;
pub use protocols::live::announce::AnnounceConfig;
pub use protocols::live::core::{Chunk, JoinError, JoinReason, Part, PeerPrice, RelayConfig};
pub use protocols::live::wire::{
    self as wire, Announcement, ChunkCid, ChunkHeader, Offer, PartHeader, PartInfo,
    SignedAnnouncement, SignedHeader, SignedPartHeader, StreamId,
};
