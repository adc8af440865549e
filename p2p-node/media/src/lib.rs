//! The media layer of a Vilokanam node, with no IO: no tokio, sockets,
//! files or clocks. Everything here takes bytes (and, where time matters,
//! durations) and returns values, so it is unit-testable, fuzzable and
//! shared by the node, the fuzz targets and the tests.
//!
//! - [`ts`]: the MPEG-TS demuxer split by concern (packets, PSI, PES, NAL
//!   keyframe recognition), the keyframe-aligned [`ts::Segmenter`] of live
//!   ingest, and [`ts::validate_segment`], which checks a finished segment
//!   before a node signs or serves it;
//! - [`hls`]: HLS playlists (the live sliding window today);
//! - [`limits`]: the one place where segment size limits are defined; the
//!   wire format, the HTTP API and the segmenter all use these constants;
//! - [`fixtures`]: small MPEG-TS clips made with ffmpeg, for tests and for
//!   machines without ffmpeg.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(unsafe_code)]

pub mod fixtures;
pub mod hls;
pub mod limits;
pub mod ts;
