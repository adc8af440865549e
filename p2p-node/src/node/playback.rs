//! Playback: the live HLS playlist of each stream this node watches or
//! publishes, and the seam that later features hang on.
//!
//! A playlist exists only for local streams (watched through `POST
//! /watch`, or published here), so reading a playlist never makes the node
//! follow anything. Every segment served to a local player is reported as
//! a [`PlaybackEvent`] on a broadcast channel: that is where paying per
//! second of playback plugs in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};
use vilokanam_media::hls::{PartEntry, Playlist, Reload, SegmentMeta};
use vilokanam_swarm::{PartHeader, StreamId};

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
    /// Woken on every playlist change (blocking playlist reloads and
    /// part requests wait on it).
    changed: Arc<Notify>,
}

impl Playback {
    /// No playlists yet; playlists list `playlist_len` segments.
    pub fn new(playlist_len: usize, events: broadcast::Sender<PlaybackEvent>) -> Self {
        Playback {
            views: HashMap::new(),
            playlist_len,
            events,
            changed: Arc::new(Notify::new()),
        }
    }

    /// What waits for playlist changes: take `notified()` (and `enable`
    /// it) before looking, then wait on it.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    fn view(&mut self, id: &StreamId) -> Option<&mut View> {
        let v = self.views.get_mut(id)?;
        self.changed.notify_waiters();
        Some(v)
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
    pub fn on_segment(&mut self, id: &StreamId, seq: u64, meta: SegmentMeta) {
        if let Some(v) = self.view(id) {
            v.playlist.on_segment(seq, meta);
        }
    }

    /// A verified part (LL-HLS) arrived.
    pub fn on_part(&mut self, h: &PartHeader) {
        if let Some(v) = self.view(&h.stream) {
            let entry = PartEntry {
                duration: h.duration(),
                independent: h.independent,
            };
            v.playlist.on_part_with_target(
                h.seq,
                h.index,
                entry,
                h.target(),
                Some(h.program_date_ms()),
                h.discontinuity,
            );
        }
    }

    /// A chunk was given up on.
    pub fn on_missing(&mut self, id: &StreamId, seq: u64) {
        if let Some(v) = self.view(id) {
            v.playlist.on_missing(seq);
        }
    }

    /// The creator ended the stream after `last_seq`.
    pub fn on_end(&mut self, id: &StreamId, last_seq: Option<u64>) {
        if let Some(v) = self.view(id) {
            v.playlist.on_end(last_seq);
        }
    }

    /// The creator started the stream again.
    pub fn on_restart(&mut self, id: &StreamId) {
        if let Some(v) = self.view(id) {
            v.playlist.on_restart();
        }
    }

    /// The playlist of `id`, with segment and part URIs under `prefix`;
    /// `None` if `id` is not local.
    pub fn render(&self, id: &StreamId, prefix: &str) -> Option<String> {
        Some(self.views.get(id)?.playlist.render(prefix))
    }

    /// What a blocking reload of `id`'s playlist should do, and how long
    /// it may wait (three target durations, RFC 8216bis §6.2.5.2).
    pub fn wait_for(
        &self,
        id: &StreamId,
        msn: u64,
        part: Option<u64>,
    ) -> Option<(Reload, Duration)> {
        let p = &self.views.get(id)?.playlist;
        Some((p.wait_for(msn, part), 3 * p.target_duration()))
    }

    /// Whether part `index` of segment `seq` of `id` may still be listed
    /// (a request for it may wait), and how long to wait at most.
    pub fn part_expected(&self, id: &StreamId, seq: u64, index: u16) -> Option<Duration> {
        let p = &self.views.get(id)?.playlist;
        let target = p.part_target()?;
        p.may_list_part(seq, index)
            .then(|| (3 * target).max(Duration::from_secs(1)))
    }

    /// How far behind the creator `id` is here: `now_ms` minus the
    /// creator's clock at the first frame of the newest part (or segment)
    /// listed; and the part target, if parts are listed.
    pub fn latency(&self, id: &StreamId, now_ms: u64) -> (Option<u64>, Option<Duration>) {
        match self.views.get(id) {
            Some(v) => (
                v.playlist.newest_pdt_ms().map(|t| now_ms.saturating_sub(t)),
                v.playlist.part_target(),
            ),
            None => (None, None),
        }
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
