//! Live HLS playlist window: an IO-less state machine, with Low-Latency
//! HLS (RFC 8216bis) partial segments when the creator cuts parts.
//!
//! Chunks become available out of order (fetched from different peers) or
//! not at all (given up on). A live playlist must only ever grow at its end,
//! so a chunk is appended only when every earlier one has arrived or been
//! given up; a given-up chunk becomes an `EXT-X-DISCONTINUITY` before the
//! next one. HLS media sequence numbers must rise by exactly one per
//! segment, so they count listed segments, while segment URIs carry the
//! chunk's own sequence number.
//!
//! Parts (`EXT-X-PART`) are listed for the segment in progress once its
//! first part is here and for as long as they arrive without a gap, and
//! for the last [`PART_SEGMENTS`] complete segments whose parts all
//! arrived. Every segment carries `EXT-X-PROGRAM-DATE-TIME` (the creator's
//! wall clock when its first frame was cut), so players and tests can
//! measure latency. [`Playlist::wait_for`] answers LL-HLS blocking reloads
//! (`_HLS_msn`, `_HLS_part`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;
use std::time::Duration;

/// Segments listed in the playlist by default (≈ 6 s at 1 s chunks).
pub const DEFAULT_WINDOW: usize = 6;
/// Out-of-order chunks held back at most; beyond this the oldest gap is
/// skipped so that a hole can never stall playback forever.
pub const MAX_HELD: usize = 16;

/// Complete segments whose parts stay listed (RFC 8216bis: parts older
/// than about three target durations may be removed).
pub const PART_SEGMENTS: usize = 3;
/// How far past the last listed part a blocking reload may ask before it
/// is refused (RFC 8216bis: the server's Advance Part Limit, at least 3).
const ADVANCE_PART_LIMIT: u64 = 3;
/// Segments in progress whose parts are held (a late joiner's parts may
/// come before the segment they follow).
const MAX_OPEN: usize = 3;

/// One listed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartEntry {
    /// Its PTS span.
    pub duration: Duration,
    /// Starts with a keyframe.
    pub independent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    seq: u64,
    duration: Duration,
    discontinuity: bool,
    pdt_ms: Option<u64>,
    parts: Vec<PartEntry>,
    /// Never came (only some of its parts did): `EXT-X-GAP`.
    gap: bool,
}

/// The parts of a segment in progress.
#[derive(Clone, Debug, Default)]
struct Open {
    parts: BTreeMap<u16, PartEntry>,
    pdt_ms: Option<u64>,
    discontinuity: bool,
}

impl Open {
    /// The parts from the first without a gap.
    fn contiguous(&self) -> Vec<PartEntry> {
        self.parts
            .iter()
            .enumerate()
            .take_while(|(i, (k, _))| usize::from(**k) == *i)
            .map(|(_, (_, p))| *p)
            .collect()
    }
}

/// A segment that became available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Its media duration.
    pub duration: Duration,
    /// The creator marked a timestamp restart at it.
    pub discontinuity: bool,
    /// The creator's wall clock (unix ms) at its first frame.
    pub pdt_ms: Option<u64>,
    /// How many parts the creator cut it into (0: none).
    pub parts: u16,
}

/// What a blocking playlist reload (`_HLS_msn`, `_HLS_part`) should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The playlist holds what was asked for: answer now.
    Ready,
    /// Not yet: hold the request until the playlist changes.
    Wait,
    /// Asked for more than two segments past the last one: answer 400
    /// at once (RFC 8216bis §6.2.5.2).
    TooFar,
}

/// The playlist window of one stream.
#[derive(Clone, Debug)]
pub struct Playlist {
    window: usize,
    entries: VecDeque<Entry>,
    /// Next chunk sequence to append.
    next: Option<u64>,
    held: BTreeMap<u64, SegmentMeta>,
    skipped: BTreeSet<u64>,
    /// HLS media sequence of the first listed entry.
    media_sequence: u64,
    /// Discontinuities that have slid out of the window.
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    target: u64,
    end: Option<u64>,
    open: BTreeMap<u64, Open>,
    /// Longest part seen: the part target announced (never shrinks, so
    /// every listed part fits it).
    part_target: Option<Duration>,
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
            open: BTreeMap::new(),
            part_target: None,
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
        self.on_segment(
            seq,
            SegmentMeta {
                duration,
                discontinuity,
                ..SegmentMeta::default()
            },
        )
    }

    /// A verified chunk is available, with its program date and parts.
    pub fn on_segment(&mut self, seq: u64, meta: SegmentMeta) {
        let next = *self.next.get_or_insert(seq);
        if seq < next || self.end.is_some_and(|e| seq > e) {
            return;
        }
        self.held.insert(seq, meta);
        self.drain();
    }

    /// A verified part of segment `seq` is available. `pdt_ms`: the
    /// creator's wall clock at the part's first frame; `discontinuity`:
    /// the creator marked a timestamp restart at the segment.
    pub fn on_part(
        &mut self,
        seq: u64,
        index: u16,
        part: PartEntry,
        pdt_ms: Option<u64>,
        discontinuity: bool,
    ) {
        self.on_part_with_target(seq, index, part, part.duration, pdt_ms, discontinuity)
    }

    /// [`Playlist::on_part`] with the creator's part target (signed in the
    /// part header): the `PART-TARGET` announced is the largest target
    /// (and part) seen, the same from the first part on.
    pub fn on_part_with_target(
        &mut self,
        seq: u64,
        index: u16,
        part: PartEntry,
        target: Duration,
        pdt_ms: Option<u64>,
        discontinuity: bool,
    ) {
        if self.next.is_some_and(|n| seq < n)
            || self.end.is_some_and(|e| seq > e)
            || usize::from(index) >= crate::limits::MAX_PARTS
        {
            return;
        }
        if !self.open.contains_key(&seq) && self.open.len() >= MAX_OPEN {
            match self.next {
                // Listing: never drop the segment in progress (its parts
                // are listed); drop the newest other one, or this part.
                Some(next) => match self.open.last_key_value() {
                    Some((&newest, _)) if newest > seq && newest != next => {
                        self.open.remove(&newest);
                    }
                    _ => return,
                },
                // Nothing listed yet (a late joiner): keep the newest.
                None => match self.open.first_key_value() {
                    Some((&oldest, _)) if oldest < seq => {
                        self.open.remove(&oldest);
                    }
                    _ => return,
                },
            }
        }
        let open = self.open.entry(seq).or_default();
        if index == 0 {
            open.pdt_ms = pdt_ms;
            open.discontinuity = discontinuity;
        }
        open.parts.insert(index, part);
        let longest = self
            .part_target
            .unwrap_or_default()
            .max(part.duration)
            .max(target);
        self.part_target = Some(longest);
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
            if let Some(meta) = self.held.remove(&next) {
                self.push(next, meta);
            } else if self.skipped.remove(&next) {
                self.skip(next);
            } else if self.held.len() > MAX_HELD {
                // A hole nobody reported: give up on it to keep playing.
                self.skip(next);
            } else {
                break;
            }
            next += 1;
            self.next = Some(next);
        }
        self.skipped = self.skipped.split_off(&next);
        self.open = self.open.split_off(&next);
    }

    /// Segment `seq` will never come. If parts of it were listed, its
    /// media sequence number stays its own: it is listed as a gap
    /// (`EXT-X-GAP`, as long as the parts players may have played), so the
    /// next segment never takes a number a player already used for it.
    fn skip(&mut self, seq: u64) {
        let parts = self
            .open
            .get(&seq)
            .map(Open::contiguous)
            .unwrap_or_default();
        if !parts.is_empty() {
            let pdt_ms = self.open.get(&seq).and_then(|o| o.pdt_ms);
            // The mark its parts were listed with stays on it.
            let discontinuity = self.open.get(&seq).is_some_and(|o| o.discontinuity);
            let duration = parts.iter().map(|p| p.duration).sum();
            self.push(
                seq,
                SegmentMeta {
                    duration,
                    discontinuity,
                    pdt_ms,
                    parts: 0,
                },
            );
            if let Some(e) = self.entries.back_mut() {
                e.gap = true;
            }
        }
        self.pending_discontinuity = !self.entries.is_empty();
    }

    fn push(&mut self, seq: u64, meta: SegmentMeta) {
        let discontinuity =
            (self.pending_discontinuity || meta.discontinuity) && !self.entries.is_empty();
        self.pending_discontinuity = false;
        self.target = self.target.max(meta.duration.as_secs_f64().ceil() as u64);
        let open = self.open.remove(&seq).unwrap_or_default();
        let mut parts = open.contiguous();
        if parts.len() != usize::from(meta.parts) {
            // Not every part arrived here: the segment is listed whole.
            parts.clear();
        }
        self.entries.push_back(Entry {
            seq,
            duration: meta.duration,
            discontinuity,
            pdt_ms: open.pdt_ms.or(meta.pdt_ms),
            parts,
            gap: false,
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

    /// Whether parts are listed: the creator cuts them, the stream is
    /// live and a first segment placed the playlist (before it there is
    /// nothing to hint at).
    fn low_latency(&self) -> bool {
        self.part_target.is_some() && self.next.is_some() && !self.ended()
    }

    /// The part target announced (`EXT-X-PART-INF:PART-TARGET`), if
    /// parts are listed.
    pub fn part_target(&self) -> Option<Duration> {
        self.part_target.filter(|_| self.low_latency())
    }

    /// `EXT-X-TARGETDURATION`.
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(self.target)
    }

    /// Whether part `index` of segment `seq` may still be listed: the
    /// stream is live, the part target is known and the segment is not
    /// listed whole yet (nor far ahead).
    pub fn may_list_part(&self, seq: u64, index: u16) -> bool {
        self.low_latency()
            && usize::from(index) < crate::limits::MAX_PARTS
            && self.next.is_some_and(|n| seq >= n && seq <= n + 1)
    }

    /// Media sequence number of the segment in progress (the one after
    /// the last listed).
    fn open_msn(&self) -> u64 {
        self.media_sequence + self.entries.len() as u64
    }

    /// The parts of the segment in progress that are listed.
    fn open_parts(&self) -> (Option<&Open>, Vec<PartEntry>) {
        let open = self.next.and_then(|n| self.open.get(&n));
        let parts = open.map(Open::contiguous).unwrap_or_default();
        (open, parts)
    }

    /// The newest media here: the creator's wall clock (unix ms) at the
    /// first frame of the newest listed part, or else of the newest
    /// listed segment. Compared with the local clock, this is how far
    /// behind the creator this node is.
    pub fn newest_pdt_ms(&self) -> Option<u64> {
        let (open, parts) = self.open_parts();
        let (pdt, parts) = match open {
            Some(open) if !parts.is_empty() => (open.pdt_ms, parts),
            _ => {
                let last = self.entries.back()?;
                (last.pdt_ms, last.parts.clone())
            }
        };
        // The newest part starts after all the others.
        let before: Duration = parts
            .split_last()
            .map(|(_, before)| before.iter().map(|p| p.duration).sum())
            .unwrap_or_default();
        pdt.map(|t| t.saturating_add(before.as_millis() as u64))
    }

    /// What a blocking reload for media sequence `msn` (and part `part`
    /// of it) should do (RFC 8216bis §6.2.5.2).
    pub fn wait_for(&self, msn: u64, part: Option<u64>) -> Reload {
        if self.ended() {
            return Reload::Ready;
        }
        let open = self.open_msn();
        // The last complete segment is `open - 1`; more than two past it
        // is too far.
        if msn > open.saturating_add(1) {
            return Reload::TooFar;
        }
        if msn < open {
            return Reload::Ready;
        }
        match part {
            Some(p) if msn == open && self.low_latency() => {
                let listed = self.open_parts().1.len() as u64;
                if p < listed {
                    Reload::Ready
                } else if p > listed + ADVANCE_PART_LIMIT {
                    Reload::TooFar
                } else {
                    Reload::Wait
                }
            }
            _ => Reload::Wait,
        }
    }

    /// Renders the playlist with segment URIs `{prefix}{seq}.ts` and part
    /// URIs `{prefix}{seq}.{part}.ts`.
    pub fn render(&self, prefix: &str) -> String {
        let mut s = String::with_capacity(512 + 160 * self.entries.len());
        let ll = self.part_target();
        let _ = writeln!(s, "#EXTM3U");
        let _ = writeln!(s, "#EXT-X-VERSION:{}", if ll.is_some() { 9 } else { 3 });
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target);
        if let Some(pt) = ll {
            let pt = pt.as_secs_f64();
            // PART-HOLD-BACK: at least twice the part target; three times
            // as RFC 8216bis recommends.
            let _ = writeln!(
                s,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
                3.0 * pt
            );
            let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={pt:.5}");
        }
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        let _ = writeln!(
            s,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence
        );
        let with_parts = self.entries.len().saturating_sub(PART_SEGMENTS);
        for (i, e) in self.entries.iter().enumerate() {
            if e.discontinuity {
                let _ = writeln!(s, "#EXT-X-DISCONTINUITY");
            }
            if let Some(t) = e.pdt_ms {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(t));
            }
            if ll.is_some() && i >= with_parts {
                write_parts(&mut s, prefix, e.seq, &e.parts);
            }
            if e.gap {
                let _ = writeln!(s, "#EXT-X-GAP");
            }
            let _ = writeln!(s, "#EXTINF:{:.3},", e.duration.as_secs_f64());
            let _ = writeln!(s, "{prefix}{}.ts", e.seq);
        }
        if let (Some(_), Some(next)) = (ll, self.next) {
            let (open, parts) = self.open_parts();
            if let (Some(open), false) = (open, parts.is_empty()) {
                if (open.discontinuity || self.pending_discontinuity) && !self.entries.is_empty() {
                    let _ = writeln!(s, "#EXT-X-DISCONTINUITY");
                }
                if let Some(t) = open.pdt_ms {
                    let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(t));
                }
                write_parts(&mut s, prefix, next, &parts);
            }
            let _ = writeln!(
                s,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{prefix}{next}.{}.ts\"",
                parts.len()
            );
        }
        if self.ended() {
            let _ = writeln!(s, "#EXT-X-ENDLIST");
        }
        s
    }
}

fn write_parts(s: &mut String, prefix: &str, seq: u64, parts: &[PartEntry]) {
    for (k, p) in parts.iter().enumerate() {
        let _ = write!(
            s,
            "#EXT-X-PART:DURATION={:.5},URI=\"{prefix}{seq}.{k}.ts\"",
            p.duration.as_secs_f64()
        );
        if p.independent {
            let _ = write!(s, ",INDEPENDENT=YES");
        }
        s.push('\n');
    }
}

/// `ms` (unix milliseconds) as an ISO 8601 date-time in UTC with
/// milliseconds, as `EXT-X-PROGRAM-DATE-TIME` wants.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::rules;

    const S: Duration = Duration::from_secs(1);

    fn render(p: &Playlist) -> String {
        p.render("")
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
            .render("")
            .contains("#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n2.ts"));
    }

    const T0: u64 = 1_796_608_221_123;

    fn part(independent: bool, ms: u64) -> PartEntry {
        PartEntry {
            duration: Duration::from_millis(ms),
            independent,
        }
    }

    fn meta(seq: u64, parts: u16) -> SegmentMeta {
        SegmentMeta {
            duration: S,
            discontinuity: false,
            pdt_ms: Some(T0 + seq * 1000),
            parts,
        }
    }

    /// Segment `seq` (1 s, parts 300+300+300+100 ms) with all its parts.
    fn full_segment(p: &mut Playlist, seq: u64) {
        let pdt = T0 + seq * 1000;
        for (k, ms) in [300, 300, 300, 100].into_iter().enumerate() {
            p.on_part(
                seq,
                k as u16,
                part(k == 0, ms),
                Some(pdt + 300 * k as u64),
                false,
            );
        }
        p.on_segment(seq, meta(seq, 4));
    }

    fn roundtrip(text: &str) {
        let parsed = match m3u8_rs::parse_media_playlist_res(text.as_bytes()) {
            Ok(p) => p,
            Err(e) => panic!("m3u8-rs cannot parse {text}: {e:?}"),
        };
        let mut out = Vec::new();
        parsed.write_to(&mut out).expect("write");
        let again = m3u8_rs::parse_media_playlist_res(&out).expect("parse again");
        assert_eq!(parsed, again, "m3u8-rs round trip of {text}");
        assert_eq!(
            parsed.segments.len(),
            rules::check(text).map(|s| s.segments).unwrap_or(usize::MAX),
            "m3u8-rs and the rules agree on the segments of {text}"
        );
    }

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(T0), "2026-12-07T01:50:21.123Z");
        assert_eq!(iso8601(951_782_400_500), "2000-02-29T00:00:00.500Z");
    }

    #[test]
    fn parts_of_the_segment_in_progress_are_listed_with_a_preload_hint() {
        let mut p = Playlist::new(6);
        full_segment(&mut p, 7);
        p.on_part(8, 0, part(true, 300), Some(T0 + 8000), false);
        p.on_part(8, 1, part(false, 300), Some(T0 + 8300), false);
        let r = render(&p);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(sum.part_target, Some(0.3));
        assert!(sum.part_hold_back >= Some(0.6));
        assert_eq!(sum.segments, 1);
        assert_eq!(sum.parts, 4 + 2);
        assert_eq!(sum.preload_hint.as_deref(), Some("8.2.ts"));
        assert!(r.contains("#EXT-X-PART:DURATION=0.30000,URI=\"8.0.ts\",INDEPENDENT=YES\n"));
        assert!(r.contains("#EXT-X-PART:DURATION=0.30000,URI=\"8.1.ts\"\n"));
        assert!(
            r.contains("#EXT-X-PROGRAM-DATE-TIME:2026-12-07T01:50:29.123Z\n#EXT-X-PART"),
            "{r}"
        );
        assert_eq!(p.newest_pdt_ms(), Some(T0 + 8300));
        roundtrip(&r);
    }

    #[test]
    fn out_of_order_parts_wait_for_the_gap_and_a_late_joiner_waits_for_a_first_part() {
        let mut p = Playlist::new(6);
        full_segment(&mut p, 7);
        p.on_part(8, 0, part(true, 300), Some(T0 + 8000), false);
        p.on_part(8, 2, part(false, 300), Some(T0 + 8600), false);
        let r = render(&p);
        assert!(
            r.contains("URI=\"8.0.ts\"")
                && !r.contains("#EXT-X-PART:DURATION=0.30000,URI=\"8.2.ts\""),
            "{r}"
        );
        assert!(r.contains("PRELOAD-HINT:TYPE=PART,URI=\"8.1.ts\""), "{r}");
        p.on_part(8, 1, part(false, 300), Some(T0 + 8300), false);
        assert!(render(&p).contains("PRELOAD-HINT:TYPE=PART,URI=\"8.3.ts\""));
        // A node that joined during segment 8 (no part 0) lists no part
        // of it: a player can only start at an independent part.
        let mut q = Playlist::new(6);
        q.on_segment(7, meta(7, 4));
        q.on_part(8, 2, part(false, 300), Some(T0 + 8600), false);
        q.on_part(8, 3, part(false, 100), Some(T0 + 8900), false);
        // No part is known yet for the first segment: nothing is low latency.
        let r = render(&q);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(sum.parts, 0, "{r}");
        assert_eq!(sum.preload_hint.as_deref(), Some("8.0.ts"));
        full_segment(&mut q, 8);
        full_segment(&mut q, 9);
        let sum = rules::check(&render(&q)).expect("rules");
        assert_eq!(sum.parts, 8, "segments 8 and 9 with their parts");
        assert_eq!(sum.independent_parts, 2);
    }

    #[test]
    fn a_segment_missing_a_part_is_listed_whole() {
        let mut p = Playlist::new(6);
        full_segment(&mut p, 1);
        p.on_part(2, 0, part(true, 300), Some(T0 + 2000), false);
        p.on_part(2, 2, part(false, 300), Some(T0 + 2600), false);
        p.on_segment(2, meta(2, 4));
        let r = render(&p);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(sum.parts, 4, "only segment 1's parts: {r}");
        assert_eq!(sum.segments, 2);
        assert_eq!(sum.program_dates, 2);
    }

    #[test]
    fn parts_are_listed_for_the_last_complete_segments_only() {
        let mut p = Playlist::new(6);
        for seq in 0..6 {
            full_segment(&mut p, seq);
        }
        let r = render(&p);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(sum.segments, 6);
        assert_eq!(sum.parts, 4 * PART_SEGMENTS);
        assert_eq!(sum.program_dates, 6);
        assert!(!r.contains("\"0.0.ts\"") && r.contains("\"5.3.ts\""));
        roundtrip(&r);
        // Parts of segments far ahead never pile up.
        for seq in 100..200 {
            p.on_part(seq, 1, part(false, 300), None, false);
        }
        assert!(p.open.len() <= MAX_OPEN);
    }

    #[test]
    fn blocking_reload_answers() {
        let mut p = Playlist::new(3);
        for seq in 0..5 {
            full_segment(&mut p, seq);
        }
        // Listed: msn 2, 3, 4 (segments 2..=4); in progress: msn 5.
        assert_eq!(p.wait_for(4, None), Reload::Ready);
        assert_eq!(p.wait_for(4, Some(3)), Reload::Ready);
        assert_eq!(p.wait_for(5, None), Reload::Wait);
        assert_eq!(p.wait_for(5, Some(0)), Reload::Wait);
        assert_eq!(p.wait_for(6, Some(0)), Reload::Wait);
        assert_eq!(p.wait_for(7, None), Reload::TooFar);
        p.on_part(5, 0, part(true, 300), Some(T0 + 5000), false);
        assert_eq!(p.wait_for(5, Some(0)), Reload::Ready);
        assert_eq!(p.wait_for(5, Some(1)), Reload::Wait);
        p.on_end(Some(4));
        assert_eq!(
            p.wait_for(5, Some(1)),
            Reload::Ready,
            "nothing more will come"
        );
    }

    #[test]
    fn an_ended_stream_lists_no_parts_and_no_hint() {
        let mut p = Playlist::new(6);
        full_segment(&mut p, 0);
        full_segment(&mut p, 1);
        p.on_end(Some(1));
        let r = render(&p);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert!(
            sum.ended && sum.parts == 0 && sum.preload_hint.is_none(),
            "{r}"
        );
        assert!(r.contains("#EXT-X-VERSION:3"));
        roundtrip(&r);
    }

    #[test]
    fn plain_playlists_have_dates_and_no_parts() {
        let mut p = Playlist::new(6);
        for seq in 0..3 {
            p.on_segment(seq, meta(seq, 0));
        }
        let r = render(&p);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(sum.part_target, None);
        assert_eq!(sum.program_dates, 3);
        assert!(!r.contains("PART") && !r.contains("SERVER-CONTROL"));
        roundtrip(&r);
    }

    #[test]
    fn a_segment_that_never_comes_after_its_parts_keeps_its_number_as_a_gap() {
        let mut p = Playlist::new(6);
        full_segment(&mut p, 0);
        p.on_part(1, 0, part(true, 300), Some(T0 + 1000), false);
        p.on_part(1, 1, part(false, 300), Some(T0 + 1300), false);
        // Listed at media sequence 1 while in progress.
        assert!(render(&p).contains("URI=\"1.1.ts\""));
        p.on_missing(1);
        full_segment(&mut p, 2);
        let r = render(&p);
        let sum = rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(sum.segments, 3, "0, the gap 1 and 2: {r}");
        assert!(
            r.contains("#EXT-X-GAP\n#EXTINF:0.600,\n1.ts\n#EXT-X-DISCONTINUITY\n"),
            "{r}"
        );
        assert!(r.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
        roundtrip(&r);
        // A missing segment none of whose parts were listed is skipped.
        let mut q = Playlist::new(6);
        full_segment(&mut q, 0);
        q.on_missing(1);
        full_segment(&mut q, 2);
        assert!(!render(&q).contains("GAP"));
    }

    #[test]
    fn the_part_target_is_the_creators_from_the_first_part() {
        // A late joiner's first part is a short last part: the target is
        // still the creator's.
        let mut q = Playlist::new(6);
        q.on_segment(0, meta(0, 4));
        let target = Duration::from_millis(300);
        q.on_part_with_target(1, 3, part(false, 100), target, None, false);
        q.on_part_with_target(2, 0, part(true, 300), target, None, false);
        assert_eq!(q.part_target(), Some(target));
        assert!(render(&q).contains("PART-TARGET=0.30000"));
    }

    #[test]
    fn a_reload_for_a_part_far_ahead_is_refused() {
        let mut p = Playlist::new(3);
        full_segment(&mut p, 0);
        p.on_part(1, 0, part(true, 300), Some(T0 + 1000), false);
        assert_eq!(p.wait_for(1, Some(4)), Reload::Wait);
        assert_eq!(p.wait_for(1, Some(5)), Reload::TooFar);
    }

    #[test]
    fn the_segment_in_progress_is_never_dropped_for_later_ones() {
        let mut p = Playlist::new(6);
        full_segment(&mut p, 0);
        // Segment 1 in progress (listed), 2 and 3 complete but held back
        // behind it, then a part of 4: 1's parts stay listed.
        p.on_part(1, 0, part(true, 300), Some(T0 + 1000), true);
        for seq in 2..4 {
            p.on_part(seq, 0, part(true, 300), Some(T0 + seq * 1000), false);
            p.on_segment(seq, meta(seq, 4));
        }
        p.on_part(4, 0, part(true, 300), Some(T0 + 4000), false);
        assert!(render(&p).contains("URI=\"1.0.ts\""), "{}", render(&p));
        // 1 never comes: a gap that keeps its discontinuity mark.
        p.on_missing(1);
        let r = render(&p);
        assert!(
            r.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T01:50:22.123Z\n#EXT-X-GAP\n"),
            "{r}"
        );
        rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
    }

    #[test]
    fn parts_before_any_segment_make_no_low_latency_header_yet() {
        // Found by the live_playlist fuzz target: parts known, no segment
        // placed yet, a PART-INF with no preload hint.
        let mut p = Playlist::new(6);
        p.on_part(3, 1, part(false, 17), None, false);
        let r = render(&p);
        rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert!(!r.contains("PART-INF"), "{r}");
        assert_eq!(p.part_target(), None);
        full_segment(&mut p, 2);
        let r = render(&p);
        assert!(r.contains("PART-INF") && r.contains("PRELOAD-HINT"), "{r}");
        rules::check(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
    }
}
