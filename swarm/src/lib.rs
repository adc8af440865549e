//! libp2p behaviours and wire protocols of a Vilokanam node.
//!
//! A live stream is a sequence of *chunks*: keyframe-aligned media
//! segments whose header (stream, sequence, duration, payload CID, size)
//! the creator signs with ed25519. Headers are gossiped on one gossipsub
//! topic per stream; payloads are pulled by CID over the `/vilokanam/chunk/1`
//! request-response protocol from the peer that forwarded the header.
//! Gossipsub runs in validation mode: a node forwards a header only after
//! it checked the signature, the size limit, the sequence window *and*
//! fetched a payload that matches the CID, so forged or corrupt chunks
//! never travel further than one hop and their senders lose score.
//!
//! - [`wire`]: versioned, size-limited binary encoding of every message.
//! - [`proto`]: the IO-less relay state machine (verdicts, fetches, windows).
//! - [`behaviour`]: the composed libp2p behaviour (gossipsub 1.2, Kademlia
//!   `/vilokanam/kad/1.0.0`, identify, ping, request-response, mDNS).
//! - [`network`]: the single task that owns the `Swarm`, a cloneable
//!   [`network::Client`] and the [`network::Event`] stream.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod behaviour;
pub mod codec;
pub mod metrics;
pub mod network;
pub mod proto;
pub mod wire;

pub use libp2p;
pub use network::{
    build_swarm, new, Client, Command, Config, Event, EventLoop, PeerInfo, SwarmError,
};
pub use proto::{Chunk, RelayConfig};
pub use wire::{Announcement, ChunkCid, ChunkHeader, SignedAnnouncement, SignedHeader, StreamId};
