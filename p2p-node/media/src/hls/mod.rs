//! HLS playlists rendered from chunk metadata, with no IO.
//!
//! - [`live`]: the sliding-window live playlist of one stream.

pub mod live;

pub use live::{Playlist, DEFAULT_WINDOW, MAX_HELD};
