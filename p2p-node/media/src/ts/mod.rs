//! MPEG-TS parsing and keyframe-aligned segmentation for live ingest.
//!
//! A creator's encoder (OBS, ffmpeg, ...) sends a continuous MPEG transport
//! stream. To distribute it over the swarm we cut it into chunks that can each
//! be decoded on their own, which means every chunk must start at a video
//! keyframe and must carry the program tables (PAT and PMT) a decoder needs to
//! find the streams. [`Segmenter`] does that cutting incrementally on bytes as
//! they arrive, and [`validate_segment`] checks a finished chunk received from
//! somebody else before we accept and re-serve it.
//!
//! The input is untrusted, so the parser is strict and bounded:
//!
//! * the input must consist of back-to-back 188-byte packets starting with the
//!   sync byte `0x47`; anything else is rejected with [`TsError::NotMpegTs`]
//!   instead of attempting to resynchronise on garbage;
//! * every index into the input is checked, nothing panics on any input;
//! * buffered data is capped: an unfinished segment may not exceed
//!   [`MAX_SEGMENT_BYTES`], the search for the first keyframe may not consume
//!   more than [`MAX_KEYFRAME_SEARCH_BYTES`], and at most
//!   [`MAX_PES_SCAN_BYTES`] of each video PES are inspected for a keyframe.
//!
//! Keyframes are recognised by the adaptation field's `random_access_indicator`
//! on the packet starting a video PES or, when a muxer does not set it, by
//! scanning the start of the PES payload for an H.264 IDR / H.265 IRAP NAL unit
//! (or an MPEG-2 I picture). Timestamps are 33-bit, 90 kHz PTS values; all
//! differences are computed modulo 2^33 so the wrap-around every ~26.5 hours
//! does not disturb segment durations.

use std::time::Duration;

use bytes::Bytes;

mod nal;
mod packet;
mod pes;
mod psi;
mod retime;
mod segmenter;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use nal::*;
pub(crate) use packet::*;
pub(crate) use pes::*;
pub(crate) use psi::*;
pub use retime::{span_ticks, Retimer, SpanMeter};
pub use segmenter::Segmenter;
pub use validate::{validate_part, validate_segment};

/// Size of one MPEG-TS packet in bytes; the input must be a sequence of these.
pub const TS_PACKET_SIZE: usize = 188;

pub use crate::limits::MAX_SEGMENT_BYTES;

/// How many input bytes [`Segmenter`] inspects while looking for the program
/// tables and the first video keyframe before giving up with
/// [`TsError::NoProgramTables`] or [`TsError::NoKeyframe`].
pub const MAX_KEYFRAME_SEARCH_BYTES: usize = MAX_SEGMENT_BYTES;

/// How many bytes at the start of each video PES are collected to find its PES
/// header and decide whether it is a keyframe. x264 puts a large SEI before
/// the first IDR, so this spans many TS packets; beyond it the PES is treated
/// as not a keyframe.
pub const MAX_PES_SCAN_BYTES: usize = 64 * 1024;

/// Frequency of the MPEG-TS presentation time stamp clock (PTS ticks per second).
pub const PTS_CLOCK_HZ: u64 = 90_000;

/// Frame interval (in 90 kHz ticks) assumed for the final segment's duration
/// until consecutive video timestamps have shown the real one: 1/30 s.
pub const DEFAULT_FRAME_INTERVAL_TICKS: u64 = PTS_CLOCK_HZ / 30;

/// Everything that can be wrong with an MPEG-TS stream or segment.
///
/// Packet indices count 188-byte packets from the start of the input (or of
/// the segment, for [`validate_segment`]), starting at 0; byte offsets are
/// measured from the same origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// A packet does not start with the sync byte, i.e. the input is not an
    /// MPEG transport stream (or lost synchronisation).
    #[error("not an MPEG-TS stream: expected sync byte 0x47 at byte offset {offset} (start of a 188-byte packet)")]
    NotMpegTs {
        /// Byte offset of the byte that should have been `0x47`.
        offset: u64,
    },
    /// The input ended in the middle of a packet.
    #[error("MPEG-TS input truncated: {trailing_bytes} trailing bytes after the last complete 188-byte packet")]
    Truncated {
        /// Number of bytes of the incomplete last packet.
        trailing_bytes: usize,
    },
    /// A segment's length is not a whole number of TS packets.
    #[error("segment length {len} bytes is not a multiple of the 188-byte TS packet size")]
    LengthNotPacketMultiple {
        /// Length of the rejected segment in bytes.
        len: usize,
    },
    /// A segment handed to [`validate_segment`] is larger than [`MAX_SEGMENT_BYTES`].
    #[error("segment of {len} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        /// Length of the rejected segment in bytes.
        len: usize,
        /// The limit that was exceeded ([`MAX_SEGMENT_BYTES`]).
        limit: usize,
    },
    /// The segment being built grew beyond [`MAX_SEGMENT_BYTES`] without a
    /// keyframe to cut at.
    #[error("segment starting at PTS {start_pts} grew beyond {limit} bytes at packet index {packet_index} (byte offset {}) without a video keyframe to cut at", byte_offset(*.packet_index))]
    SegmentTooLarge {
        /// Index of the packet that made the segment too large.
        packet_index: u64,
        /// PTS (90 kHz) of the keyframe the oversized segment started with.
        start_pts: u64,
        /// The limit that was exceeded ([`MAX_SEGMENT_BYTES`]).
        limit: usize,
    },
    /// No PAT, or no PMT for the program the PAT announces, was found.
    #[error("no {missing} found in the first {searched_bytes} bytes of MPEG-TS input")]
    NoProgramTables {
        /// Which table is missing: `"PAT"` or `"PMT"`.
        missing: &'static str,
        /// How many bytes were searched.
        searched_bytes: u64,
    },
    /// The PMT lists no video elementary stream we can segment.
    #[error("PMT on PID {pmt_pid:#06x} (packet index {packet_index}, byte offset {}) lists no video stream (stream_type 0x1B H.264, 0x24 H.265 or 0x02 MPEG-2 video)", byte_offset(*.packet_index))]
    NoVideoStream {
        /// PID the PMT was carried on.
        pmt_pid: u16,
        /// Index of the packet that completed the PMT section.
        packet_index: u64,
    },
    /// No usable video keyframe (one whose PES header carries a PTS) was found.
    #[error("no video keyframe with a PTS on PID {video_pid:#06x} found in the first {searched_bytes} bytes of MPEG-TS input")]
    NoKeyframe {
        /// The video PID from the PMT.
        video_pid: u16,
        /// How many bytes were searched.
        searched_bytes: u64,
    },
    /// The first video data of a segment is not the start of a keyframe access unit.
    #[error("first video packet on PID {pid:#06x} (packet index {packet_index}, byte offset {}) does not start a keyframe access unit", byte_offset(*.packet_index))]
    FirstVideoNotKeyframe {
        /// The video PID.
        pid: u16,
        /// Index of the first video packet (or of the PES start it belongs to).
        packet_index: u64,
    },
    /// A TS packet header or adaptation field is malformed.
    #[error("malformed TS packet on PID {pid:#06x} at packet index {packet_index} (byte offset {}): {reason}", byte_offset(*.packet_index))]
    MalformedPacket {
        /// PID of the packet.
        pid: u16,
        /// Index of the packet.
        packet_index: u64,
        /// What exactly is wrong.
        reason: String,
    },
    /// A PAT or PMT section is malformed (bad length, pointer, CRC, ...).
    #[error("malformed PSI section on PID {pid:#06x} at packet index {packet_index} (byte offset {}): {reason}", byte_offset(*.packet_index))]
    MalformedSection {
        /// PID the section was carried on.
        pid: u16,
        /// Index of the packet in which the problem was detected.
        packet_index: u64,
        /// What exactly is wrong.
        reason: String,
    },
    /// A video PES header is malformed.
    #[error("malformed video PES on PID {pid:#06x} starting at packet index {packet_index} (byte offset {}): {reason}", byte_offset(*.packet_index))]
    MalformedPes {
        /// The video PID.
        pid: u16,
        /// Index of the packet that started the PES.
        packet_index: u64,
        /// What exactly is wrong.
        reason: String,
    },
}

/// Byte offset of the packet with the given index (used in error messages).
pub(crate) fn byte_offset(packet_index: u64) -> u64 {
    packet_index.saturating_mul(TS_PACKET_SIZE as u64)
}

/// One keyframe-aligned, independently decodable piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The segment's parts (LL-HLS), in order, when the segmenter cuts
    /// parts: `data` is exactly their bytes one after the other. Empty
    /// otherwise.
    pub parts: Vec<PartMeta>,
    /// The segment's TS packets: copies of the latest PAT and PMT, followed by
    /// the input packets from the keyframe on, unmodified and in input order
    /// (null packets dropped).
    pub data: Bytes,
    /// Presentation duration: the PTS distance to the next segment's start, or
    /// for the last segment the span of its video PTS plus one frame interval.
    pub duration: Duration,
    /// PTS (90 kHz, 33 bit) of the keyframe the segment starts with.
    pub start_pts: u64,
}

/// Most parts one segment is cut into (LL-HLS partial segments).
pub use crate::limits::MAX_PARTS;

/// A part of a segment (an LL-HLS partial segment), emitted as soon as it
/// is complete, before the segment it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its TS packets; a part after a segment's first starts with copies
    /// of the PAT and PMT.
    pub data: Bytes,
    /// Its position in the segment, from 0.
    pub index: u16,
    /// The PTS span it covers.
    pub duration: Duration,
    /// It starts with a video keyframe (a player can start here). The
    /// first part of a segment always does.
    pub independent: bool,
}

/// What a segment says about one of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartMeta {
    /// Bytes.
    pub size: u32,
    /// PTS span.
    pub duration: Duration,
    /// Starts with a keyframe.
    pub independent: bool,
}

/// What the segmenter produces, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// A part of the open segment is complete.
    Part(Part),
    /// A segment is complete (its parts, if any, came before).
    Segment(Segment),
}

/// Facts about a segment checked by [`validate_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Number of 188-byte packets in the segment.
    pub packets: usize,
    /// PID of the video stream named by the segment's PMT.
    pub video_pid: u16,
    /// PTS of the first video PES, if its header carries one.
    pub first_pts: Option<u64>,
    /// Number of video PES in the segment that start with a keyframe.
    pub keyframes: usize,
}
