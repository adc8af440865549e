//! The Vilokanam daemon's HTTP API, as a contract shared by its server and
//! every client.
//!
//! - [`types`]: the JSON request and response bodies of every endpoint;
//! - [`events`]: the machine-readable JSON lines the daemon and `vilokanam
//!   publish` print on stdout (how scripts and the testnet find a node);
//! - [`client`]: [`ApiClient`], the one typed client of the API, used by
//!   the CLI, the testnet, benchmarks and tests (and later the web UI).
//!
//! The API listens on loopback only. Every error is a JSON
//! [`types::ErrorBody`] with a status code and a message that says what was
//! wrong and with which input.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod client;
pub mod events;
pub mod types;

pub use client::{ApiClient, ApiError};
pub use events::OutputEvent;
pub use reqwest;
pub use types::*;
