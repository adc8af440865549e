//! Playback: the live HLS playlist of each stream this node watches or
//! publishes, and the seam that later features hang on.
//!
//! A playlist exists only for local streams (watched through `POST
//! /watch`, or published here), so reading a playlist never makes the node
//! follow anything. Every segment served to a local player is reported as
//! a [`PlaybackEvent`] on a broadcast channel: that is where paying per
//! second of playback plugs in.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::broadcast;
use vilokanam_media::hls::Playlist;
use vilokanam_swarm::StreamId;

/// What a local player did, for features that act on playback.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaybackEvent {
    /// The user started watching a stream.
    Watching {
        /// The stream.
        stream: StreamId,
    },
    /// The user stopped watching it.
    Stopped {
        /// The stream.
        stream: StreamId,
    },
    /// A segment of a watched stream was served to a player.
    SegmentServed {
        /// The stream.
        stream: StreamId,
        /// Its sequence number.
        seq: u64,
        /// Its media duration.
        duration: Duration,
        /// Its size.
        bytes: usize,
    },
}

/// Why a stream has a playlist here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// The user watches it.
    Watch,
    /// This node publishes it.
    Publish,
}

struct View {
    playlist: Playlist,
    watching: bool,
    publishing: bool,
}

/// The playlists of local streams.
pub struct Playback {
    views: HashMap<StreamId, View>,
    playlist_len: usize,
    events: broadcast::Sender<PlaybackEvent>,
}

impl Playback {
    /// No playlists yet; playlists list `playlist_len` segments.
    pub fn new(playlist_len: usize, events: broadcast::Sender<PlaybackEvent>) -> Self {
        Playback {
            views: HashMap::new(),
            playlist_len,
            events,
        }
    }

    /// Local streams with a playlist.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Gives `id` a playlist (if it has none) for `why`.
    pub fn open(&mut self, id: &StreamId, why: Local) {
        let len = self.playlist_len;
        let v = self.views.entry(id.clone()).or_insert_with(|| View {
            playlist: Playlist::new(len),
            watching: false,
            publishing: false,
        });
        match why {
            Local::Watch => {
                if !v.watching {
                    let _ = self
                        .events
                        .send(PlaybackEvent::Watching { stream: id.clone() });
                }
                v.watching = true;
            }
            Local::Publish => {
                v.publishing = true;
                // A (re)started stream of ours is live again.
                v.playlist.on_restart();
            }
        }
    }

    /// Drops `why`; the playlist goes with the last reason.
    pub fn close(&mut self, id: &StreamId, why: Local) {
        let Some(v) = self.views.get_mut(id) else {
            return;
        };
        match why {
            Local::Watch => {
                if v.watching {
                    let _ = self
                        .events
                        .send(PlaybackEvent::Stopped { stream: id.clone() });
                }
                v.watching = false;
            }
            Local::Publish => v.publishing = false,
        }
        if !v.watching && !v.publishing {
            self.views.remove(id);
        }
    }

    /// Whether `id` is watched here.
    pub fn watching(&self, id: &StreamId) -> bool {
        self.views.get(id).is_some_and(|v| v.watching)
    }

    /// Whether `id` is published here.
    pub fn publishing(&self, id: &StreamId) -> bool {
        self.views.get(id).is_some_and(|v| v.publishing)
    }

    /// A verified chunk arrived.
    pub fn on_ready(&mut self, id: &StreamId, seq: u64, duration: Duration, discontinuity: bool) {
        if let Some(v) = self.views.get_mut(id) {
            v.playlist.on_ready(seq, duration, discontinuity);
        }
    }

    /// A chunk was given up on.
    pub fn on_missing(&mut self, id: &StreamId, seq: u64) {
        if let Some(v) = self.views.get_mut(id) {
            v.playlist.on_missing(seq);
        }
    }

    /// The creator ended the stream after `last_seq`.
    pub fn on_end(&mut self, id: &StreamId, last_seq: Option<u64>) {
        if let Some(v) = self.views.get_mut(id) {
            v.playlist.on_end(last_seq);
        }
    }

    /// The creator started the stream again.
    pub fn on_restart(&mut self, id: &StreamId) {
        if let Some(v) = self.views.get_mut(id) {
            v.playlist.on_restart();
        }
    }

    /// The playlist of `id`, with segment URIs under `prefix`; `None` if
    /// `id` is not local.
    pub fn render(&self, id: &StreamId, prefix: &str) -> Option<String> {
        let v = self.views.get(id)?;
        Some(v.playlist.render(|seq| format!("{prefix}{seq}.ts")))
    }

    /// Reports a segment served to a local player.
    pub fn served(&self, id: &StreamId, seq: u64, duration: Duration, bytes: usize) {
        if self.watching(id) {
            let _ = self.events.send(PlaybackEvent::SegmentServed {
                stream: id.clone(),
                seq,
                duration,
                bytes,
            });
        }
    }
}
