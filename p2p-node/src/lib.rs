//! `vilokanam`: a peer-to-peer live-streaming node.
//!
//! One long-running `vilokanam daemon` per participant; every other
//! subcommand is a client of the daemon's local HTTP API (like Kubo).
//!
//! - [`ingest`]: MPEG-TS parsing, keyframe segmenting, the `publish` client;
//! - [`daemon`]: wiring of identity, storage, swarm, announcer and API;
//! - [`api`]: the local HTTP API, HLS playback and `/metrics`;
//! - [`hls`]: the IO-less live playlist window;
//! - [`config`]: TOML configuration merged with flags;
//! - [`client`]: the HTTP client the CLI subcommands use.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod chain_cmd;
pub mod client;
pub mod config;
pub mod daemon;
pub mod hls;
pub mod ingest;
