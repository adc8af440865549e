//! The incremental, keyframe-aligned segmenter of live ingest.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::*;

/// A video PES whose keyframe status or header is not yet known.
#[derive(Debug)]
pub(crate) struct PesTracker {
    pid: u16,
    /// Index of the packet that started the PES.
    packet_index: u64,
    /// Where that packet sits in [`Segmenter::buf`].
    start_in_buf: usize,
    /// PAT/PMT copies current when the PES started.
    tables: Option<(Bytes, Bytes)>,
    collector: PesCollector,
}

/// The part of the open segment currently being collected (LL-HLS).
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenPart {
    /// Where the part's bytes start in [`Segmenter::buf`] (a part after
    /// the first starts with the PAT/PMT copies inserted at its cut).
    start: usize,
    /// PTS distance from the segment's start to the part's first frame.
    offset: u64,
    /// Whether the part starts with a keyframe.
    independent: bool,
    /// The parts of the open segment cut so far.
    done: Vec<PartMeta>,
}

/// The segment currently being collected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenSegment {
    start_pts: u64,
    /// Largest forward PTS distance from `start_pts` seen on video in this segment.
    max_offset: u64,
}

/// Cuts a live MPEG-TS byte stream into keyframe-aligned [`Segment`]s.
///
/// Feed bytes with [`push`](Self::push) in any chunking; finished segments are
/// returned as soon as the keyframe that ends them has been recognised. Call
/// [`finish`](Self::finish) at end of input for the last segment.
///
/// Bytes before the first video keyframe are dropped. Each segment starts with
/// copies of the most recent PAT and PMT packets, followed by the input packets
/// from the keyframe's first packet up to (excluding) the next cut, unmodified
/// and in input order; null packets (PID 0x1FFF) are dropped.
///
/// Errors are sticky: once [`push`](Self::push) or [`finish`](Self::finish)
/// has failed, every later call returns the same error. If a single `push`
/// completes segments before hitting an error, those segments are returned
/// and the error is reported by the next call.
pub struct Segmenter {
    target_ticks: u64,
    /// Part target (LL-HLS) in ticks; `None`: whole segments only.
    part_ticks: Option<u64>,
    part: OpenPart,
    /// Bytes of an incomplete packet (its first byte is a checked sync byte).
    partial: Vec<u8>,
    /// Total input bytes accepted, for error offsets.
    bytes_in: u64,
    /// Index of the next complete packet.
    packet_index: u64,
    failed: Option<TsError>,
    tables: ProgramTables,
    /// Packets of the open segment, or before the first keyframe the packets
    /// from the start of a candidate PES on.
    buf: BytesMut,
    open: Option<OpenSegment>,
    pes: Option<PesTracker>,
    /// Bytes consumed while no segment was open.
    searched: u64,
    /// Last video DTS (or PTS), for frame interval estimation.
    last_ts: Option<u64>,
    frame_interval: u64,
}

impl fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segmenter")
            .field("target_ticks", &self.target_ticks)
            .field("bytes_in", &self.bytes_in)
            .field("packet_index", &self.packet_index)
            .field("failed", &self.failed)
            .field("video", &self.tables.video)
            .field("buffered_bytes", &self.buf.len())
            .field("open", &self.open)
            .field("frame_interval", &self.frame_interval)
            .finish_non_exhaustive()
    }
}

impl Segmenter {
    /// Creates a segmenter for one stream.
    ///
    /// `target` is the minimum segment duration: a cut happens at the first
    /// video keyframe whose PTS is at or after the segment's start PTS plus
    /// `target`.
    pub fn new(target: Duration) -> Self {
        Self::with_ticks(duration_to_ticks(target))
    }

    /// The target segment duration.
    pub fn target(&self) -> Duration {
        ticks_to_duration(self.target_ticks)
    }

    /// Creates a segmenter that also cuts each segment into parts of at
    /// most `part_target` (LL-HLS partial segments), emitted as
    /// [`Cut::Part`] by [`push_cuts`](Self::push_cuts) as soon as each is
    /// complete.
    ///
    /// A part ends at the last frame boundary that keeps it within
    /// `part_target` (given the frame interval measured so far), so every
    /// part but a segment's last is as long as fits; the last takes what
    /// is left before the next keyframe cut. Parts after the first start
    /// with copies of the PAT and PMT, and a segment's bytes are exactly
    /// its parts' bytes in order, so a peer holding every part holds the
    /// segment. A part that starts with a keyframe is independent; the
    /// first part of every segment is. At most [`MAX_PARTS`] parts per
    /// segment: the last one then takes the rest.
    pub fn with_parts(target: Duration, part_target: Duration) -> Self {
        let mut s = Self::with_ticks(duration_to_ticks(target));
        s.part_ticks = Some(duration_to_ticks(part_target).max(1));
        s
    }

    /// A fresh segmenter with the same targets (for a new stream).
    pub fn fresh(&self) -> Self {
        let mut s = Self::with_ticks(self.target_ticks);
        s.part_ticks = self.part_ticks;
        s
    }

    /// Creates a fresh segmenter with the target given in 90 kHz ticks.
    fn with_ticks(target_ticks: u64) -> Self {
        Self {
            target_ticks,
            part_ticks: None,
            part: OpenPart::default(),
            partial: Vec::with_capacity(TS_PACKET_SIZE),
            bytes_in: 0,
            packet_index: 0,
            failed: None,
            tables: ProgramTables::default(),
            buf: BytesMut::new(),
            open: None,
            pes: None,
            searched: 0,
            last_ts: None,
            frame_interval: DEFAULT_FRAME_INTERVAL_TICKS,
        }
    }

    /// Feeds the next bytes of the stream, split arbitrarily (single bytes,
    /// 1316-byte UDP datagrams, ...). Returns the segments completed by them.
    ///
    /// Fails with [`TsError::NotMpegTs`] as soon as a packet does not start
    /// with the sync byte, and with other [`TsError`]s for malformed tables or
    /// PES headers, a PMT without video, an oversized segment, or when no
    /// tables / keyframe appear within [`MAX_KEYFRAME_SEARCH_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Segment>, TsError> {
        Ok(segments_of(self.push_cuts(bytes)?))
    }

    /// Like [`push`](Self::push), but also returns the parts completed by
    /// the bytes (with [`with_parts`](Self::with_parts)), in stream order:
    /// each segment's parts come before the segment.
    pub fn push_cuts(&mut self, bytes: &[u8]) -> Result<Vec<Cut>, TsError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut out = Vec::new();
        match self.push_inner(bytes, &mut out) {
            Ok(()) => Ok(out),
            Err(err) => {
                self.fail(err.clone());
                if out.is_empty() {
                    Err(err)
                } else {
                    Ok(out)
                }
            }
        }
    }

    /// Signals end of input and returns the last segment.
    ///
    /// Its duration is the span of its video PTS plus one frame interval
    /// (estimated from consecutive video timestamps, default 1/30 s).
    /// Returns `Ok(None)` if no bytes at all were pushed, [`TsError::Truncated`]
    /// if the input ended mid-packet, and [`TsError::NoProgramTables`] /
    /// [`TsError::NoKeyframe`] if no segment could ever be started. After a
    /// successful call the segmenter is reset and can take a new stream.
    pub fn finish(&mut self) -> Result<Option<Segment>, TsError> {
        Ok(segments_of(self.finish_cuts()?).pop())
    }

    /// Like [`finish`](Self::finish), with the last segment's last part
    /// (and a part cut by the final frame) before it.
    pub fn finish_cuts(&mut self) -> Result<Vec<Cut>, TsError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.finish_inner() {
            Ok(cuts) => {
                *self = self.fresh();
                Ok(cuts)
            }
            Err(err) => {
                self.fail(err.clone());
                Err(err)
            }
        }
    }

    /// Records a sticky error and frees the buffers.
    fn fail(&mut self, err: TsError) {
        self.failed = Some(err);
        self.buf = BytesMut::new();
        self.partial = Vec::new();
        self.pes = None;
    }

    /// [`finish`](Self::finish) without the sticky-error and reset handling.
    fn finish_inner(&mut self) -> Result<Vec<Cut>, TsError> {
        if !self.partial.is_empty() {
            return Err(TsError::Truncated {
                trailing_bytes: self.partial.len(),
            });
        }
        if self.bytes_in == 0 {
            return Ok(vec![]);
        }
        // The last PES ends here; it may still start the first segment, but
        // it never causes a cut (its frame may be incomplete).
        let mut out = Vec::new();
        self.resolve_pes(&mut out, true, false)?;
        let Some(open) = self.open else {
            return Err(self.tables.search_error(self.searched));
        };
        let ticks = open.max_offset.saturating_add(self.frame_interval);
        let end = self.buf.len();
        self.cut_last_part(&mut out, end, ticks);
        let data = std::mem::take(&mut self.buf).freeze();
        out.push(Cut::Segment(Segment {
            data,
            duration: ticks_to_duration(ticks),
            start_pts: open.start_pts,
            parts: std::mem::take(&mut self.part.done),
        }));
        Ok(out)
    }

    /// Checks that `byte`, found at the current input offset, is the sync byte.
    fn check_sync(&self, byte: u8) -> Result<(), TsError> {
        if byte == SYNC_BYTE {
            Ok(())
        } else {
            Err(TsError::NotMpegTs {
                offset: self.bytes_in,
            })
        }
    }

    /// [`push`](Self::push) without the sticky-error handling: completes a
    /// buffered partial packet, processes whole packets, buffers the rest.
    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<Cut>) -> Result<(), TsError> {
        if !self.partial.is_empty() {
            let need = TS_PACKET_SIZE.saturating_sub(self.partial.len());
            let (head, rest) = input.split_at(need.min(input.len()));
            self.partial.extend_from_slice(head);
            self.bytes_in += head.len() as u64;
            input = rest;
            if self.partial.len() < TS_PACKET_SIZE {
                return Ok(());
            }
            let mut partial = std::mem::take(&mut self.partial);
            let result = match <&[u8; TS_PACKET_SIZE]>::try_from(partial.as_slice()) {
                Ok(packet) => self.process_packet(packet, out),
                Err(_) => Ok(()),
            };
            partial.clear();
            self.partial = partial;
            result?;
        }
        while let Some((packet, rest)) = input.split_first_chunk::<TS_PACKET_SIZE>() {
            self.check_sync(packet[0])?;
            self.bytes_in += TS_PACKET_SIZE as u64;
            self.process_packet(packet, out)?;
            input = rest;
        }
        if let Some(&first) = input.first() {
            self.check_sync(first)?;
            self.partial.extend_from_slice(input);
            self.bytes_in += input.len() as u64;
        }
        Ok(())
    }

    /// Whether incoming packets are currently kept.
    fn buffering(&self) -> bool {
        self.open.is_some() || self.pes.is_some()
    }

    /// Handles one complete packet: tables, video PES tracking, buffering and bounds.
    fn process_packet(
        &mut self,
        raw: &[u8; TS_PACKET_SIZE],
        out: &mut Vec<Cut>,
    ) -> Result<(), TsError> {
        let index = self.packet_index;
        self.packet_index += 1;
        let pkt = parse_packet(raw, index)?;
        if pkt.pid == NULL_PID {
            return self.after_packet(index);
        }
        if pkt.tei {
            if self.buffering() {
                self.buf.extend_from_slice(raw);
            }
            return self.after_packet(index);
        }
        let video = self.tables.video;
        let is_video = video.is_some_and(|v| v.pid == pkt.pid);
        if is_video && pkt.pusi {
            // The previous video PES ends here.
            self.resolve_pes(out, true, true)?;
        }
        if self.tables.on_packet(raw, &pkt, index)? {
            self.pes = None;
            if self.open.is_none() {
                self.buf.clear();
            }
        }
        if let (true, true, Some(video)) = (is_video, pkt.pusi, video) {
            if self.open.is_none() {
                self.buf.clear();
            }
            self.pes = Some(PesTracker {
                pid: video.pid,
                packet_index: index,
                start_in_buf: self.buf.len(),
                tables: self.tables.copies(),
                collector: PesCollector::new(video.codec, pkt.rai),
            });
        }
        if self.buffering() {
            self.buf.extend_from_slice(raw);
        }
        if is_video {
            if let Some(tracker) = self.pes.as_mut() {
                tracker.collector.push(pkt.payload);
                self.resolve_pes(out, false, true)?;
            }
        }
        self.after_packet(index)
    }

    /// Enforces the size and search bounds after a packet was handled.
    fn after_packet(&mut self, index: u64) -> Result<(), TsError> {
        if let Some(open) = self.open {
            if self.buf.len() > MAX_SEGMENT_BYTES {
                return Err(TsError::SegmentTooLarge {
                    packet_index: index,
                    start_pts: open.start_pts,
                    limit: MAX_SEGMENT_BYTES,
                });
            }
        } else {
            self.searched += TS_PACKET_SIZE as u64;
            if self.searched > MAX_KEYFRAME_SEARCH_BYTES as u64 {
                return Err(self.tables.search_error(self.searched));
            }
        }
        Ok(())
    }

    /// Tries to decide the pending video PES; `end` forces a decision.
    fn resolve_pes(
        &mut self,
        out: &mut Vec<Cut>,
        end: bool,
        allow_cut: bool,
    ) -> Result<(), TsError> {
        let Some(tracker) = self.pes.as_mut() else {
            return Ok(());
        };
        let info = match tracker.collector.resolve(end) {
            Ok(Some(info)) => info,
            Ok(None) => return Ok(()),
            Err(reason) => {
                return Err(TsError::MalformedPes {
                    pid: tracker.pid,
                    packet_index: tracker.packet_index,
                    reason,
                })
            }
        };
        if let Some(tracker) = self.pes.take() {
            self.on_pes(&tracker, info, out, allow_cut);
        }
        Ok(())
    }

    /// Acts on a decided video PES: timestamp bookkeeping, starting the first
    /// segment, or cutting.
    fn on_pes(&mut self, tracker: &PesTracker, info: PesInfo, out: &mut Vec<Cut>, allow_cut: bool) {
        let frame_interval = self.frame_interval;
        if let Some(ts) = info.dts.or(info.pts) {
            if let Some(prev) = self.last_ts {
                let step = pts_diff(ts, prev);
                if step > 0 && step <= MAX_FRAME_INTERVAL_TICKS {
                    self.frame_interval = step;
                }
            }
            self.last_ts = Some(ts);
        }
        let (Some(pts), Some(open)) = (info.pts, self.open) else {
            if let (Some(pts), true, Some((pat, pmt))) = (info.pts, info.keyframe, &tracker.tables)
            {
                // First keyframe: the segment starts here.
                self.split_at(tracker.start_in_buf, pat, pmt);
                self.open = Some(OpenSegment {
                    start_pts: pts,
                    max_offset: 0,
                });
                self.part = OpenPart {
                    independent: true,
                    ..OpenPart::default()
                };
            } else if self.open.is_none() {
                // Not usable as a first keyframe: drop it and keep searching.
                self.buf.clear();
            }
            return;
        };
        let offset = pts_diff(pts, open.start_pts);
        let backwards = offset >= PTS_HALF_RANGE;
        // A keyframe is normally presented after every frame decoded before
        // it; one that is not marks a timestamp discontinuity (e.g. an encoder
        // restart), where the segment is cut regardless of the target.
        let discontinuity = backwards || offset < open.max_offset;
        if info.keyframe && allow_cut && (discontinuity || offset >= self.target_ticks) {
            if let Some((pat, pmt)) = &tracker.tables {
                // Across a discontinuity the PTS distance means nothing:
                // estimate the duration as for the final segment.
                let ticks = if discontinuity {
                    open.max_offset.saturating_add(frame_interval)
                } else {
                    offset
                };
                self.cut_last_part(out, tracker.start_in_buf, ticks);
                let data = self.split_at(tracker.start_in_buf, pat, pmt);
                out.push(Cut::Segment(Segment {
                    data,
                    duration: ticks_to_duration(ticks),
                    start_pts: open.start_pts,
                    parts: std::mem::take(&mut self.part.done),
                }));
                self.open = Some(OpenSegment {
                    start_pts: pts,
                    max_offset: 0,
                });
                self.part = OpenPart {
                    independent: true,
                    ..OpenPart::default()
                };
                return;
            }
        }
        // A part ends before this frame if the frame would take it past
        // the part target. Only at a frame presented after everything
        // before it (with B-frames: before a reference frame), so that a
        // part's duration is the PTS span it covers.
        if let (Some(part_ticks), Some((pat, pmt)), false) =
            (self.part_ticks, &tracker.tables, backwards)
        {
            let elapsed = offset.saturating_sub(self.part.offset);
            if allow_cut
                && offset > self.part.offset
                && offset >= open.max_offset
                && elapsed.saturating_add(frame_interval) > part_ticks
                && self.part.done.len() + 1 < MAX_PARTS
            {
                self.cut_part(out, tracker.start_in_buf, elapsed);
                // The next part starts with the tables, so a player that
                // loads it alone (or after a gap) can read it.
                let tail = self.buf.split_off(tracker.start_in_buf.min(self.buf.len()));
                self.buf.extend_from_slice(pat);
                self.buf.extend_from_slice(pmt);
                self.buf.extend_from_slice(&tail);
                self.part.offset = offset;
                self.part.independent = info.keyframe;
            }
        }
        if !backwards {
            self.open = Some(OpenSegment {
                max_offset: open.max_offset.max(offset),
                ..open
            });
        }
    }

    /// Emits the open part, ending at `end` in the buffer, lasting `ticks`;
    /// the next part starts at `end`.
    fn cut_part(&mut self, out: &mut Vec<Cut>, end: usize, ticks: u64) {
        let end = end.min(self.buf.len());
        let start = self.part.start.min(end);
        let data = Bytes::copy_from_slice(&self.buf[start..end]);
        let duration = ticks_to_duration(ticks.max(1));
        let index = self.part.done.len() as u16;
        self.part.done.push(PartMeta {
            size: data.len() as u32,
            duration,
            independent: self.part.independent,
        });
        out.push(Cut::Part(Part {
            data,
            index,
            duration,
            independent: self.part.independent,
        }));
        self.part.start = end;
    }

    /// Emits the last part of a segment lasting `segment_ticks` in all
    /// (with parts on).
    fn cut_last_part(&mut self, out: &mut Vec<Cut>, end: usize, segment_ticks: u64) {
        if self.part_ticks.is_some() {
            let ticks = segment_ticks.saturating_sub(self.part.offset);
            self.cut_part(out, end, ticks);
        }
    }

    /// Splits the buffer at `start`: returns the bytes before it and keeps
    /// PAT + PMT copies followed by the bytes from `start` on.
    fn split_at(&mut self, start: usize, pat: &Bytes, pmt: &Bytes) -> Bytes {
        let tail = self.buf.split_off(start.min(self.buf.len()));
        let mut next =
            BytesMut::with_capacity(pat.len() + pmt.len() + tail.len() + MAX_PES_SCAN_BYTES);
        next.extend_from_slice(pat);
        next.extend_from_slice(pmt);
        next.extend_from_slice(&tail);
        std::mem::replace(&mut self.buf, next).freeze()
    }
}

/// The segments among `cuts`, in order.
fn segments_of(cuts: Vec<Cut>) -> Vec<Segment> {
    cuts.into_iter()
        .filter_map(|c| match c {
            Cut::Segment(s) => Some(s),
            Cut::Part(_) => None,
        })
        .collect()
}
