//! Live HLS playlist window: an IO-less state machine.
//!
//! Chunks become available out of order (fetched from different peers) or
//! not at all (given up on). A live playlist must only ever grow at its end,
//! so a chunk is appended only when every earlier one has arrived or been
//! given up; a given-up chunk becomes an `EXT-X-DISCONTINUITY` before the
//! next one. HLS media sequence numbers must rise by exactly one per
//! segment, so they count listed segments, while segment URIs carry the
//! chunk's own sequence number.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;
use std::time::Duration;

/// Segments listed in the playlist by default (≈ 6 s at 1 s chunks).
pub const DEFAULT_WINDOW: usize = 6;
/// Out-of-order chunks held back at most; beyond this the oldest gap is
/// skipped so that a hole can never stall playback forever.
pub const MAX_HELD: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    seq: u64,
    duration: Duration,
    discontinuity: bool,
}

/// The playlist window of one stream.
#[derive(Clone, Debug)]
pub struct Playlist {
    window: usize,
    entries: VecDeque<Entry>,
    /// Next chunk sequence to append.
    next: Option<u64>,
    held: BTreeMap<u64, (Duration, bool)>,
    skipped: BTreeSet<u64>,
    /// HLS media sequence of the first listed entry.
    media_sequence: u64,
    /// Discontinuities that have slid out of the window.
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    target: u64,
    end: Option<u64>,
}

impl Playlist {
    /// An empty playlist listing at most `window` segments.
    pub fn new(window: usize) -> Self {
        Playlist {
            window: window.max(3),
            entries: VecDeque::new(),
            next: None,
            held: BTreeMap::new(),
            skipped: BTreeSet::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            target: 1,
            end: None,
        }
    }

    /// Chunk sequences currently listed.
    #[cfg(test)]
    pub fn listed(&self) -> Vec<u64> {
        self.entries.iter().map(|e| e.seq).collect()
    }

    /// A verified chunk is available. `discontinuity`: the creator marked a
    /// timestamp restart at it.
    pub fn on_ready(&mut self, seq: u64, duration: Duration, discontinuity: bool) {
        let next = *self.next.get_or_insert(seq);
        if seq < next || self.end.is_some_and(|e| seq > e) {
            return;
        }
        self.held.insert(seq, (duration, discontinuity));
        self.drain();
    }

    /// A chunk was given up on; it is skipped with a discontinuity.
    pub fn on_missing(&mut self, seq: u64) {
        if self.next.is_some_and(|n| seq >= n) {
            self.skipped.insert(seq);
            self.drain();
        }
    }

    /// The stream ended after `last_seq`.
    pub fn on_end(&mut self, last_seq: Option<u64>) {
        self.end = Some(last_seq.unwrap_or(0));
        if last_seq.is_none() {
            self.next = Some(self.next.unwrap_or(0));
        }
        self.drain();
    }

    /// The creator started the stream again after ending it: the playlist
    /// is live again and the next chunk follows a discontinuity.
    pub fn on_restart(&mut self) {
        if self.end.take().is_some() {
            self.pending_discontinuity = !self.entries.is_empty();
        }
    }

    /// Whether the playlist is complete (`EXT-X-ENDLIST`).
    pub fn ended(&self) -> bool {
        match (self.end, self.next) {
            (Some(end), Some(next)) => next > end || self.entries.is_empty() && next >= end,
            _ => false,
        }
    }

    fn drain(&mut self) {
        let Some(mut next) = self.next else { return };
        loop {
            if let Some((duration, disc)) = self.held.remove(&next) {
                self.push(next, duration, disc);
            } else if self.skipped.remove(&next) {
                self.pending_discontinuity = !self.entries.is_empty();
            } else if self.held.len() > MAX_HELD {
                // A hole nobody reported: give up on it to keep playing.
                self.pending_discontinuity = !self.entries.is_empty();
            } else {
                break;
            }
            next += 1;
            self.next = Some(next);
        }
        self.skipped = self.skipped.split_off(&next);
    }

    fn push(&mut self, seq: u64, duration: Duration, creator_discontinuity: bool) {
        let discontinuity =
            (self.pending_discontinuity || creator_discontinuity) && !self.entries.is_empty();
        self.pending_discontinuity = false;
        self.target = self.target.max(duration.as_secs_f64().ceil() as u64);
        self.entries.push_back(Entry {
            seq,
            duration,
            discontinuity,
        });
        while self.entries.len() > self.window {
            if let Some(old) = self.entries.pop_front() {
                self.media_sequence += 1;
                // RFC 8216 §4.3.3.3: count the discontinuity tags removed
                // from the playlist.
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
    }

    /// Renders the playlist; `uri` maps a chunk sequence to its segment URI.
    pub fn render(&self, uri: impl Fn(u64) -> String) -> String {
        let mut s = String::with_capacity(256 + 64 * self.entries.len());
        let _ = writeln!(s, "#EXTM3U");
        let _ = writeln!(s, "#EXT-X-VERSION:3");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target);
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        let _ = writeln!(
            s,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence
        );
        for e in &self.entries {
            if e.discontinuity {
                let _ = writeln!(s, "#EXT-X-DISCONTINUITY");
            }
            let _ = writeln!(s, "#EXTINF:{:.3},", e.duration.as_secs_f64());
            let _ = writeln!(s, "{}", uri(e.seq));
        }
        if self.ended() {
            let _ = writeln!(s, "#EXT-X-ENDLIST");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn render(p: &Playlist) -> String {
        p.render(|s| format!("{s}.ts"))
    }

    #[test]
    fn in_order_chunks_slide_through_the_window() {
        let mut p = Playlist::new(3);
        for seq in 10..15 {
            p.on_ready(seq, S, false);
        }
        assert_eq!(p.listed(), vec![12, 13, 14]);
        let r = render(&p);
        assert!(r.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{r}");
        assert!(r.contains("#EXT-X-TARGETDURATION:1\n"));
        assert!(!r.contains("ENDLIST"));
    }

    #[test]
    fn out_of_order_chunk_is_held_until_the_gap_fills() {
        let mut p = Playlist::new(6);
        p.on_ready(0, S, false);
        p.on_ready(2, S, false);
        assert_eq!(p.listed(), vec![0], "1 is missing, 2 must wait");
        p.on_ready(1, S, false);
        assert_eq!(p.listed(), vec![0, 1, 2]);
        assert!(!render(&p).contains("DISCONTINUITY\n"));
    }

    #[test]
    fn missing_chunk_becomes_a_discontinuity() {
        let mut p = Playlist::new(3);
        p.on_ready(0, S, false);
        p.on_ready(2, S, false);
        p.on_missing(1);
        assert_eq!(p.listed(), vec![0, 2]);
        let r = render(&p);
        assert!(
            r.contains("#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n2.ts"),
            "{r}"
        );
        // Slide the discontinuity out: the discontinuity sequence counts it.
        for seq in 3..6 {
            p.on_ready(seq, S, false);
        }
        let r = render(&p);
        assert!(r.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{r}");
        assert!(r.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{r}");
    }

    #[test]
    fn discontinuity_sequence_counts_only_removed_tags() {
        let mut p = Playlist::new(3);
        p.on_ready(0, S, false);
        p.on_ready(1, S, false);
        p.on_ready(2, S, true);
        p.on_ready(3, S, false);
        // Window [1, 2*, 3]: the tag before 2 is still listed.
        let r = render(&p);
        assert!(r.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"), "{r}");
        p.on_ready(4, S, false);
        // Window [2*, 3, 4]: still listed (as the first entry).
        assert!(render(&p).contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
        p.on_ready(5, S, false);
        // Window [3, 4, 5]: removed now.
        assert!(render(&p).contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    }

    #[test]
    fn restart_after_end_resumes_with_a_discontinuity() {
        let mut p = Playlist::new(6);
        p.on_ready(0, S, false);
        p.on_end(Some(0));
        assert!(p.ended());
        p.on_restart();
        assert!(!p.ended());
        p.on_ready(1, S, false);
        let r = render(&p);
        assert!(
            r.contains("#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n1.ts"),
            "{r}"
        );
        assert!(!r.contains("ENDLIST"));
    }

    #[test]
    fn creator_marked_discontinuity_is_rendered() {
        let mut p = Playlist::new(6);
        p.on_ready(0, S, false);
        p.on_ready(1, S, true);
        assert!(render(&p).contains("#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n1.ts"));
    }

    #[test]
    fn stale_chunks_are_ignored_and_target_rounds_up() {
        let mut p = Playlist::new(6);
        p.on_ready(5, Duration::from_millis(1500), false);
        p.on_ready(4, S, false);
        assert_eq!(p.listed(), vec![5]);
        assert!(render(&p).contains("#EXT-X-TARGETDURATION:2\n"));
    }

    #[test]
    fn endlist_after_last_chunk() {
        let mut p = Playlist::new(6);
        p.on_ready(0, S, false);
        p.on_end(Some(1));
        assert!(!p.ended(), "chunk 1 not here yet");
        p.on_ready(1, S, false);
        assert!(p.ended());
        assert!(render(&p).ends_with("#EXT-X-ENDLIST\n"));
        p.on_ready(2, S, false);
        assert_eq!(p.listed(), vec![0, 1], "nothing after the end");
    }

    #[test]
    fn unreported_hole_does_not_stall_forever() {
        let mut p = Playlist::new(6);
        p.on_ready(0, S, false);
        for seq in 2..(3 + MAX_HELD as u64) {
            p.on_ready(seq, S, false);
        }
        let last = 2 + MAX_HELD as u64;
        assert_eq!(
            p.listed().last(),
            Some(&last),
            "hole at 1 skipped after MAX_HELD"
        );
        let mut q = Playlist::new(64);
        q.on_ready(0, S, false);
        for seq in 2..=last {
            q.on_ready(seq, S, false);
        }
        assert!(q
            .render(|s| format!("{s}.ts"))
            .contains("#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n2.ts"));
    }
}
