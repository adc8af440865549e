//! `vilokanam`: a peer-to-peer live-streaming node.
//!
//! One long-running `vilokanam daemon` per participant; every other
//! subcommand is a client of the daemon's local HTTP API (like Kubo).
//! This crate is the composition root:
//!
//! - [`node`]: the service layer that owns all node state (catalog,
//!   publisher, announcer, playback) behind a [`node::NodeHandle`];
//! - [`http`]: the local HTTP API, HLS playback and `/metrics`, calling the
//!   handle;
//! - [`cli`]: the command line, calling the API through
//!   [`vilokanam_api::ApiClient`] (or the chain);
//! - [`daemon`]: wires keys, store, node and HTTP, and shuts them down;
//! - [`config`]: TOML configuration merged with flags, validated;
//! - [`kubo`]: a typed client of an IPFS daemon's RPC API (pinning VODs).
//!
//! Media parsing lives in `vilokanam-media` (IO-less), the wire protocols
//! in `vilokanam-swarm`, persistence in `vilokanam-storage`.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod http;
pub mod kubo;
pub mod node;
