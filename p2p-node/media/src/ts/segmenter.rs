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

    /// Creates a fresh segmenter with the target given in 90 kHz ticks.
    fn with_ticks(target_ticks: u64) -> Self {
        Self {
            target_ticks,
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
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.finish_inner() {
            Ok(segment) => {
                *self = Self::with_ticks(self.target_ticks);
                Ok(segment)
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
    fn finish_inner(&mut self) -> Result<Option<Segment>, TsError> {
        if !self.partial.is_empty() {
            return Err(TsError::Truncated {
                trailing_bytes: self.partial.len(),
            });
        }
        if self.bytes_in == 0 {
            return Ok(None);
        }
        // The last PES ends here; it may still start the first segment, but
        // it never causes a cut (its frame may be incomplete).
        let mut out = Vec::new();
        self.resolve_pes(&mut out, true, false)?;
        let Some(open) = self.open else {
            return Err(self.tables.search_error(self.searched));
        };
        let data = std::mem::take(&mut self.buf).freeze();
        Ok(Some(Segment {
            data,
            duration: ticks_to_duration(open.max_offset.saturating_add(self.frame_interval)),
            start_pts: open.start_pts,
        }))
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
    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<Segment>) -> Result<(), TsError> {
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
        out: &mut Vec<Segment>,
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
        out: &mut Vec<Segment>,
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
    fn on_pes(
        &mut self,
        tracker: &PesTracker,
        info: PesInfo,
        out: &mut Vec<Segment>,
        allow_cut: bool,
    ) {
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
                let data = self.split_at(tracker.start_in_buf, pat, pmt);
                out.push(Segment {
                    data,
                    duration: ticks_to_duration(ticks),
                    start_pts: open.start_pts,
                });
                self.open = Some(OpenSegment {
                    start_pts: pts,
                    max_offset: 0,
                });
                return;
            }
        }
        if !backwards {
            self.open = Some(OpenSegment {
                max_offset: open.max_offset.max(offset),
                ..open
            });
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
