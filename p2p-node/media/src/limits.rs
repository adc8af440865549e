//! Size limits of media segments, defined once.
//!
//! A segment is what a creator signs and what peers pull by CID, so the
//! segmenter must never produce one that the HTTP API refuses or that the
//! wire format rejects. All three use [`MAX_SEGMENT_BYTES`].

/// Largest segment (chunk payload) in bytes, including the PAT/PMT copies
/// the segmenter prepends. 8 MiB holds a 1 s segment at 64 Mbit/s, or a 4 s
/// segment at 16 Mbit/s; an encoder that sends more between keyframes gets
/// a precise error ([`crate::ts::TsError::SegmentTooLarge`]).
pub const MAX_SEGMENT_BYTES: usize = 8 * 1024 * 1024;

/// Longest segment duration a creator may claim (a keyframe interval longer
/// than this is refused by peers).
pub const MAX_SEGMENT_DURATION: std::time::Duration = std::time::Duration::from_secs(30);

/// Most parts (LL-HLS partial segments) per segment: 30 s at the shortest
/// useful part (about 250 ms) would need 120, and the list of parts in a
/// signed segment header must stay small.
pub const MAX_PARTS: usize = 128;

/// Shortest part target a creator may ask for (a part holds at least a
/// few frames).
pub const MIN_PART_TARGET: std::time::Duration = std::time::Duration::from_millis(100);
