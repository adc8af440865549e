//! HLS playlists rendered from chunk metadata, with no IO.
//!
//! - [`live`]: the sliding-window live playlist of one stream, with
//!   LL-HLS parts;
//! - [`rules`]: a checker of served playlists against the LL-HLS rules.

pub mod live;
pub mod rules;

pub use live::{
    iso8601, PartEntry, Playlist, Reload, SegmentMeta, DEFAULT_WINDOW, MAX_HELD, PART_SEGMENTS,
};
