//! Vilokanam's wire protocols, one folder each: wire format, codec,
//! IO-less cores (policy), and the actor that runs them on the swarm.
//!
//! - [`live`]: live streams (announce, then pull).

pub mod live;
