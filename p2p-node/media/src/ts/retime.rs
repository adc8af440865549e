//! Continuous timestamps for a looped source.
//!
//! A file played in a loop restarts its timestamps (and continuity
//! counters) at every pass. Players cope with that differently: hls.js
//! follows `EXT-X-DISCONTINUITY`, libavformat-based players (mpv, ffplay)
//! reset playback at every jump. A looping broadcast should instead look
//! like one continuous stream, as ffmpeg's `-stream_loop` makes it:
//! [`Retimer`] shifts every PCR, OPCR, PTS and DTS of a pass by the length
//! of the passes before it (modulo 2^33, as the 33-bit clock wraps) and
//! renumbers continuity counters per PID so they run on across passes.

use super::*;

/// Rewrites the timestamps and continuity counters of TS packets in place.
#[derive(Debug)]
pub struct Retimer {
    offset: u64,
    /// Next continuity counter per PID (`None`: keep the packet's own
    /// until the PID first has a payload packet).
    cc: Vec<Option<u8>>,
}

impl Default for Retimer {
    fn default() -> Self {
        Retimer {
            offset: 0,
            cc: vec![None; 8192],
        }
    }
}

impl Retimer {
    /// A retimer that changes nothing until given an offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `ticks` (90 kHz) to the offset of what follows: call it with
    /// the duration of a pass when the next one starts.
    pub fn advance(&mut self, ticks: u64) {
        self.offset = (self.offset + ticks) % PTS_MODULUS;
    }

    /// The current offset (90 kHz ticks).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Rewrites `data` (whole 188-byte packets) in place. Packets that do
    /// not parse are left as they are (the validator refuses them later).
    pub fn rewrite(&mut self, data: &mut [u8]) {
        for packet in data.chunks_exact_mut(TS_PACKET_SIZE) {
            self.rewrite_packet(packet);
        }
    }

    fn rewrite_packet(&mut self, p: &mut [u8]) {
        let Some(l) = Layout::of(p) else {
            return;
        };
        if l.has_payload {
            let slot = &mut self.cc[usize::from(l.pid)];
            let cc = slot.unwrap_or(p[3] & 0x0F);
            p[3] = (p[3] & 0xF0) | cc;
            *slot = Some((cc + 1) & 0x0F);
        }
        if self.offset == 0 {
            return;
        }
        for at in l.pcr.into_iter().flatten() {
            shift_pcr(&mut p[at..at + 6], self.offset);
        }
        for at in [l.pts, l.dts].into_iter().flatten() {
            let field = &mut p[at..at + 5];
            if let Some(ts) = read_timestamp(field) {
                write_timestamp(field, (ts + self.offset) % PTS_MODULUS);
            }
        }
    }
}

/// Where the fields a retimer touches sit in one TS packet.
struct Layout {
    pid: u16,
    has_payload: bool,
    /// PCR, then OPCR (6 bytes each).
    pcr: [Option<usize>; 2],
    /// PES PTS and DTS (5 bytes each).
    pts: Option<usize>,
    dts: Option<usize>,
    /// Where the packet's payload starts: the elementary stream data
    /// after a PES header in a packet that starts a PES.
    data: Option<usize>,
}

impl Layout {
    /// `None` for what is not a 188-byte packet, the null PID, or a packet
    /// flagged with a transport error.
    fn of(p: &[u8]) -> Option<Layout> {
        if p.first() != Some(&SYNC_BYTE) || p.len() != TS_PACKET_SIZE {
            return None;
        }
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        if pid == NULL_PID || p[1] & 0x80 != 0 {
            return None;
        }
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 0x3;
        let mut l = Layout {
            pid,
            has_payload: afc & 0x1 != 0,
            pcr: [None; 2],
            pts: None,
            dts: None,
            data: None,
        };
        let mut payload_start = 4;
        if afc & 0x2 != 0 {
            let af_len = usize::from(p[4]);
            if af_len > 183 {
                return Some(l);
            }
            if af_len > 0 {
                let flags = p[5];
                let mut at = 6;
                for (i, present) in [flags & 0x10 != 0, flags & 0x08 != 0]
                    .into_iter()
                    .enumerate()
                {
                    if present && at + 6 <= 5 + af_len {
                        l.pcr[i] = Some(at);
                        at += 6;
                    }
                }
            }
            payload_start = 5 + af_len;
        }
        if !l.has_payload || payload_start >= p.len() {
            return Some(l);
        }
        if !pusi {
            l.data = Some(payload_start);
            return Some(l);
        }
        let pes = &p[payload_start.min(p.len())..];
        if pes.len() < 14 || pes[..3] != [0, 0, 1] {
            // A PSI section (pointer field first), or too short to hold a
            // PES header with a timestamp.
            return Some(l);
        }
        if matches!(
            pes[3],
            0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
        ) || pes[6] & 0xC0 != 0x80
        {
            return Some(l);
        }
        let flags = pes[7] >> 6;
        if flags & 0b10 != 0 {
            l.pts = Some(payload_start + 9);
        }
        if flags == 0b11 && pes.len() >= 19 {
            l.dts = Some(payload_start + 14);
        }
        let data = payload_start + 9 + usize::from(pes[8]);
        l.data = (data <= p.len()).then_some(data);
        Some(l)
    }
}

/// Adds `offset` to a PCR field: 33-bit base, 6 reserved bits, 9-bit
/// extension (left alone).
fn shift_pcr(f: &mut [u8], offset: u64) {
    let base = (u64::from(f[0]) << 25)
        | (u64::from(f[1]) << 17)
        | (u64::from(f[2]) << 9)
        | (u64::from(f[3]) << 1)
        | (u64::from(f[4]) >> 7);
    let base = (base + offset) % PTS_MODULUS;
    f[0] = (base >> 25) as u8;
    f[1] = (base >> 17) as u8;
    f[2] = (base >> 9) as u8;
    f[3] = (base >> 1) as u8;
    f[4] = (f[4] & 0x7F) | (((base & 1) as u8) << 7);
}

/// The timed extent of one elementary stream, relative to its first PTS
/// (signed, so frames presented before the first one count).
#[derive(Debug)]
struct Track {
    pid: u16,
    first: u64,
    prev: i64,
    lo: i64,
    /// The latest end seen: a PES's PTS plus its duration.
    end: i64,
    /// The smallest forward step between consecutive PTS in file order:
    /// one frame or one PES (B-frame reordering makes other steps larger
    /// or negative); the duration of a PES that is not ADTS audio.
    step: Option<i64>,
    /// The PES being read: its PTS (relative) and its data so far, up to
    /// [`MAX_PES_SCAN_BYTES`] (`None` once longer: not measured).
    open: Option<(i64, Option<Vec<u8>>)>,
}

impl Track {
    fn new(pid: u16, first: u64) -> Self {
        Track {
            pid,
            first,
            prev: 0,
            lo: 0,
            end: 0,
            step: None,
            open: None,
        }
    }

    fn relative(&self, pts: u64) -> i64 {
        let d = pts_diff(pts, self.first);
        if d >= PTS_HALF_RANGE {
            d as i64 - PTS_MODULUS as i64
        } else {
            d as i64
        }
    }

    /// A PES with `pts` starts, its data beginning with `data`.
    fn start(&mut self, pts: u64, data: &[u8]) {
        self.close();
        let rel = self.relative(pts);
        let step = rel - self.prev;
        if step > 0 {
            self.step = Some(self.step.map_or(step, |s| s.min(step)));
        }
        self.prev = rel;
        self.lo = self.lo.min(rel);
        self.open = Some((rel, Some(data.to_vec())));
    }

    /// More data of the open PES.
    fn more(&mut self, data: &[u8]) {
        if let Some((_, Some(buf))) = &mut self.open {
            if buf.len() + data.len() > MAX_PES_SCAN_BYTES {
                self.open = self.open.take().map(|(pts, _)| (pts, None));
            } else {
                buf.extend_from_slice(data);
            }
        }
    }

    /// The open PES ends: its end is its PTS plus its duration — exact
    /// for ADTS audio (frames counted), one step otherwise.
    fn close(&mut self) {
        let Some((pts, data)) = self.open.take() else {
            return;
        };
        let step = self.step.unwrap_or(DEFAULT_FRAME_INTERVAL_TICKS as i64);
        let duration = data
            .as_deref()
            .and_then(adts_ticks)
            .map_or(step, |t| t as i64);
        self.end = self.end.max(pts + duration);
    }

    /// From its first frame to the end of its last.
    fn span(&self) -> u64 {
        (self.end - self.lo).max(0) as u64
    }
}

/// The duration (90 kHz ticks) of a run of whole ADTS (AAC) frames, or
/// `None` if `data` is not exactly that.
fn adts_ticks(data: &[u8]) -> Option<u64> {
    const RATES: [u64; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let (mut at, mut samples, mut rate) = (0usize, 0u64, None);
    while at < data.len() {
        let h = data.get(at..at + 7)?;
        if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
            return None;
        }
        let r = *RATES.get(usize::from((h[2] >> 2) & 0x0F))?;
        if rate.replace(r).is_some_and(|old| old != r) {
            return None;
        }
        let len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if len < 7 {
            return None;
        }
        samples += 1024 * (u64::from(h[6] & 0x03) + 1);
        at += len;
    }
    (at == data.len() && samples > 0).then(|| samples * PTS_CLOCK_HZ / rate.unwrap_or(1))
}

/// Measures how far a loop must shift the next pass of a stream fed in
/// pieces: the longest of its elementary streams, each from its first
/// frame to the end of its last, so every stream's timestamps run on
/// (audio usually outlasts video by a frame or two; the shorter stream
/// gets that as a gap, as with ffmpeg's `-stream_loop`). Checks, as the
/// publisher will, that the stream segments at all (video, keyframes).
/// Streaming, so a long file is never held in memory to measure it.
/// Pieces are whole packets counted from the start of the stream, as
/// [`Retimer::rewrite`] takes them; a trailing partial packet is carried.
#[derive(Debug)]
pub struct SpanMeter {
    segmenter: Segmenter,
    segments: usize,
    tracks: Vec<Track>,
    carry: Vec<u8>,
}

/// At most this many PIDs with timestamps are tracked (a program has a
/// handful; the rest of a hostile file is ignored).
const MAX_TIMED_PIDS: usize = 64;

impl SpanMeter {
    /// A meter cutting at `target`, the segment duration the stream will
    /// be published with.
    pub fn new(target: Duration) -> Self {
        SpanMeter {
            segmenter: Segmenter::new(target),
            segments: 0,
            tracks: Vec::new(),
            carry: Vec::new(),
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, data: &[u8]) -> Result<(), TsError> {
        self.segments += self.segmenter.push(data)?.len();
        self.carry.extend_from_slice(data);
        let whole = self.carry.len() / TS_PACKET_SIZE * TS_PACKET_SIZE;
        for p in self.carry[..whole].chunks_exact(TS_PACKET_SIZE) {
            let Some(l) = Layout::of(p) else {
                continue;
            };
            let data = l.data.map_or(&[][..], |at| &p[at..]);
            let pts = l.pts.and_then(|at| read_timestamp(&p[at..at + 5]));
            let known = self.tracks.iter().position(|t| t.pid == l.pid);
            match (pts, known) {
                (Some(pts), Some(i)) => self.tracks[i].start(pts, data),
                (Some(pts), None) if self.tracks.len() < MAX_TIMED_PIDS => {
                    let mut t = Track::new(l.pid, pts);
                    t.start(pts, data);
                    self.tracks.push(t);
                }
                (None, Some(i)) if p[1] & 0x40 == 0 => self.tracks[i].more(data),
                // A PES without a PTS ends the one before.
                (None, Some(i)) => self.tracks[i].close(),
                _ => {}
            }
        }
        self.carry.drain(..whole);
        Ok(())
    }

    /// The span in 90 kHz ticks (0 for a stream that yields no segment).
    pub fn finish(mut self) -> Result<u64, TsError> {
        self.segments += usize::from(self.segmenter.finish()?.is_some());
        if self.segments == 0 {
            return Ok(0);
        }
        for t in &mut self.tracks {
            t.close();
        }
        Ok(self.tracks.iter().map(Track::span).max().unwrap_or(0))
    }
}

/// [`SpanMeter`] over a stream in memory.
pub fn span_ticks(data: &[u8], target: Duration) -> Result<u64, TsError> {
    let mut m = SpanMeter::new(target);
    m.push(data)?;
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SAMPLE_TS;

    fn segments(data: &[u8]) -> Vec<Segment> {
        let mut s = Segmenter::new(Duration::from_secs(1));
        let mut out = s.push(data).unwrap();
        out.extend(s.finish().unwrap());
        out
    }

    /// Three passes of the fixture, retimed, segment like one 18 s stream:
    /// each pass's segments one second apart, the next pass starting one
    /// span later, no timestamp going back, every segment still valid.
    #[test]
    fn looped_passes_become_one_continuous_stream() {
        let first = segments(SAMPLE_TS);
        let pass = span_ticks(SAMPLE_TS, Duration::from_secs(1)).unwrap();
        // Six seconds of video at 30 fps (127920..=664920, 3000 ticks a
        // frame); the AAC track runs from 126000 to the end of its last
        // frame at 667440 + 1920, and the span covers it.
        assert_eq!(pass, 669_360 - 126_000);
        let mut r = Retimer::new();
        let mut joined = Vec::new();
        for i in 0..3 {
            let mut bytes = SAMPLE_TS.to_vec();
            r.rewrite(&mut bytes);
            joined.extend(bytes);
            if i < 2 {
                r.advance(pass);
            }
        }
        let segs = segments(&joined);
        assert_eq!(segs.len(), 18);
        for (i, s) in segs.iter().enumerate() {
            let (n, k) = (i as u64 / 6, i as u64 % 6);
            let want = first[0].start_pts + n * pass + k * 90_000;
            assert_eq!(s.start_pts, want, "segment {i}");
            validate_segment(&s.data).unwrap();
        }
    }

    /// The span of a stream is that of its longest elementary stream, and
    /// survives the 33-bit clock wrapping inside the file.
    #[test]
    fn span_is_the_longest_track_across_a_clock_wrap() {
        let plain = span_ticks(SAMPLE_TS, Duration::from_secs(1)).unwrap();
        let mut r = Retimer::new();
        // Shift the fixture so its clock wraps three seconds in.
        let start = segments(SAMPLE_TS)[0].start_pts;
        r.advance(PTS_MODULUS - start - 3 * 90_000);
        let mut wrapped = SAMPLE_TS.to_vec();
        r.rewrite(&mut wrapped);
        assert_eq!(span_ticks(&wrapped, Duration::from_secs(1)).unwrap(), plain);
        // Fed in odd-sized pieces, the meter carries partial packets.
        let mut m = SpanMeter::new(Duration::from_secs(1));
        for piece in SAMPLE_TS.chunks(1000) {
            m.push(piece).unwrap();
        }
        assert_eq!(m.finish().unwrap(), plain);
    }

    #[test]
    fn continuity_counters_run_on_across_passes() {
        let mut r = Retimer::new();
        let mut a = SAMPLE_TS.to_vec();
        r.rewrite(&mut a);
        r.advance(540_000);
        let mut b = SAMPLE_TS.to_vec();
        r.rewrite(&mut b);
        let mut last: Vec<Option<u8>> = vec![None; 8192];
        for p in a.chunks(TS_PACKET_SIZE).chain(b.chunks(TS_PACKET_SIZE)) {
            let pid = usize::from((u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]));
            if pid == usize::from(NULL_PID) || (p[3] >> 4) & 1 == 0 {
                continue;
            }
            let cc = p[3] & 0x0F;
            if let Some(prev) = last[pid] {
                assert_eq!(cc, (prev + 1) & 0x0F, "PID {pid:#x}");
            }
            last[pid] = Some(cc);
        }
    }

    #[test]
    fn garbage_is_left_alone_and_never_panics() {
        let mut r = Retimer::new();
        r.advance(12_345);
        let mut junk = b"not a transport stream at all".repeat(40);
        let before = junk.clone();
        r.rewrite(&mut junk);
        assert_eq!(junk, before);
        let mut odd = vec![SYNC_BYTE; 188 * 3];
        odd[4] = 250; // adaptation length past the packet
        r.rewrite(&mut odd);
    }
}
