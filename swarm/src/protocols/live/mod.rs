//! Live streaming: signed chunk headers on gossipsub, payloads pulled by
//! CID over `/vilokanam/chunk/5`, stream announcements on a global topic.
//!
//! - [`wire`]: versioned, size-limited encoding of every message;
//! - [`codec`]: the request-response codec of chunk exchange;
//! - [`core`]: the IO-less relay state machine (verdicts, fetches, windows,
//!   joined streams and every bound on them);
//! - [`announce`]: the IO-less announcement policy (rates, replays, caps);
//! - [`actor`]: the glue that runs both cores on the swarm.

pub mod actor;
pub mod announce;
pub mod codec;
pub mod core;
pub mod wire;
