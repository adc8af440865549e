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

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// Size of one MPEG-TS packet in bytes; the input must be a sequence of these.
pub const TS_PACKET_SIZE: usize = 188;

/// Upper bound on the size of one segment (including the prepended PAT/PMT
/// copies), so a stream without keyframes cannot make us buffer without limit.
pub const MAX_SEGMENT_BYTES: usize = 16 * 1024 * 1024;

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

/// First byte of every TS packet.
const SYNC_BYTE: u8 = 0x47;
/// PID carrying the program association table.
const PAT_PID: u16 = 0x0000;
/// PID of null (stuffing) packets, which are dropped.
const NULL_PID: u16 = 0x1FFF;
/// PTS values are 33 bits wide.
const PTS_MODULUS: u64 = 1 << 33;
/// A PTS difference at least this large (modulo 2^33) means "backwards".
const PTS_HALF_RANGE: u64 = 1 << 32;
/// Largest legal `section_length` of a PAT or PMT section.
const MAX_SECTION_LENGTH: usize = 1021;
/// Largest timestamp step accepted as a frame interval estimate (1 s).
const MAX_FRAME_INTERVAL_TICKS: u64 = PTS_CLOCK_HZ;

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
fn byte_offset(packet_index: u64) -> u64 {
    packet_index.saturating_mul(TS_PACKET_SIZE as u64)
}

/// One keyframe-aligned, independently decodable piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
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

/// Video codecs whose keyframes we can recognise, by PMT `stream_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoCodec {
    /// `stream_type` 0x1B.
    H264,
    /// `stream_type` 0x24.
    H265,
    /// `stream_type` 0x02.
    Mpeg2,
}

impl VideoCodec {
    /// Maps a PMT `stream_type` to a supported video codec.
    fn from_stream_type(stream_type: u8) -> Option<Self> {
        match stream_type {
            0x1B => Some(Self::H264),
            0x24 => Some(Self::H265),
            0x02 => Some(Self::Mpeg2),
            _ => None,
        }
    }
}

/// The video elementary stream selected from the PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VideoStream {
    pid: u16,
    codec: VideoCodec,
}

/// The parts of a TS packet header this module needs.
#[derive(Debug)]
struct Packet<'a> {
    pid: u16,
    /// `payload_unit_start_indicator`: a PES or PSI section starts here.
    pusi: bool,
    /// `transport_error_indicator`: the packet is known to be corrupt.
    tei: bool,
    /// `random_access_indicator` from the adaptation field.
    rai: bool,
    payload: &'a [u8],
}

/// Parses the header and adaptation field of one packet (sync byte already checked).
fn parse_packet(raw: &[u8; TS_PACKET_SIZE], packet_index: u64) -> Result<Packet<'_>, TsError> {
    let [_, b1, b2, b3, ..] = *raw;
    let tei = b1 & 0x80 != 0;
    let pusi = b1 & 0x40 != 0;
    let pid = (u16::from(b1 & 0x1F) << 8) | u16::from(b2);
    if tei {
        // Nothing in a packet flagged as corrupt can be trusted; pass it on untouched.
        return Ok(Packet {
            pid,
            pusi,
            tei,
            rai: false,
            payload: &[],
        });
    }
    let has_adaptation = b3 & 0x20 != 0;
    let has_payload = b3 & 0x10 != 0;
    let mut rai = false;
    let mut payload_start = 4;
    if has_adaptation {
        let [_, _, _, _, af_len, af_flags, ..] = *raw;
        let af_len = usize::from(af_len);
        let max = if has_payload { 182 } else { 183 };
        if af_len > max {
            return Err(TsError::MalformedPacket {
                pid,
                packet_index,
                reason: format!(
                    "adaptation_field_length {af_len} exceeds the {max} bytes available in the packet"
                ),
            });
        }
        rai = af_len > 0 && af_flags & 0x40 != 0;
        payload_start = 5 + af_len;
    }
    let payload = if has_payload {
        raw.get(payload_start..).unwrap_or(&[])
    } else {
        &[]
    };
    Ok(Packet {
        pid,
        pusi,
        tei,
        rai,
        payload,
    })
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, initial value all ones).
/// Over a whole PSI section including its CRC field the result is 0.
fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A PSI section reassembled from one or more packets.
#[derive(Debug)]
struct CompletedSection {
    /// The section bytes, from `table_id` through the CRC.
    section: Vec<u8>,
    /// The raw TS packets the section was carried in (for prepending copies).
    packets: Bytes,
}

/// Reassembles PSI sections (PAT/PMT) of one PID, including sections that
/// span several packets. Only the first section starting in a packet is
/// considered; further sections packed behind it are ignored.
#[derive(Debug, Default)]
struct SectionAssembler {
    /// Section bytes collected so far (at most 3 + [`MAX_SECTION_LENGTH`] are kept).
    buf: Vec<u8>,
    /// Raw packets carrying the section so far.
    packets: Vec<u8>,
    /// Whether a section is being collected.
    active: bool,
}

impl SectionAssembler {
    /// Feeds one packet's payload; returns the most recent section completed by it.
    fn push(
        &mut self,
        raw: &[u8; TS_PACKET_SIZE],
        payload: &[u8],
        pusi: bool,
    ) -> Result<Option<CompletedSection>, String> {
        let mut done = None;
        if pusi {
            let Some((&pointer, rest)) = payload.split_first() else {
                return Err(
                    "payload_unit_start_indicator is set but the packet has no payload for the pointer_field"
                        .to_owned(),
                );
            };
            let pointer = usize::from(pointer);
            let Some((tail, start)) = rest.split_at_checked(pointer) else {
                return Err(format!(
                    "pointer_field {pointer} points past the end of the {}-byte payload",
                    rest.len()
                ));
            };
            if self.active {
                self.packets.extend_from_slice(raw);
                self.append(tail)?;
                done = self.take_if_complete();
            }
            // A section that did not complete before the next one starts is lost.
            self.reset();
            if start.first().is_some_and(|&table_id| table_id != 0xFF) {
                self.active = true;
                self.packets.extend_from_slice(raw);
                self.append(start)?;
                if let Some(section) = self.take_if_complete() {
                    done = Some(section);
                }
            }
        } else if self.active {
            self.packets.extend_from_slice(raw);
            self.append(payload)?;
            done = self.take_if_complete();
        }
        Ok(done)
    }

    /// Appends bytes to the section, validating `section_length` once known.
    fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        let room = (3 + MAX_SECTION_LENGTH).saturating_sub(self.buf.len());
        self.buf
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(&[]));
        if let Some(len) = self.section_length() {
            if len > MAX_SECTION_LENGTH {
                self.reset();
                return Err(format!(
                    "section_length {len} exceeds the maximum of {MAX_SECTION_LENGTH}"
                ));
            }
        }
        Ok(())
    }

    /// The `section_length` field, once the first three bytes are present.
    fn section_length(&self) -> Option<usize> {
        let [_, hi, lo] = *self.buf.first_chunk::<3>()?;
        Some((usize::from(hi & 0x0F) << 8) | usize::from(lo))
    }

    /// Returns the section if all of its bytes have arrived.
    fn take_if_complete(&mut self) -> Option<CompletedSection> {
        let total = 3 + self.section_length()?;
        let section = self.buf.get(..total)?.to_vec();
        let packets = Bytes::from(std::mem::take(&mut self.packets));
        self.reset();
        Some(CompletedSection { section, packets })
    }

    /// Forgets any partially collected section.
    fn reset(&mut self) {
        self.buf.clear();
        self.packets.clear();
        self.active = false;
    }
}

/// Checks the generic long-form section header and CRC of a PAT or PMT.
/// Returns `Ok(false)` if the section is not yet applicable (`current_next_indicator` 0).
fn check_long_section(section: &[u8], what: &str) -> Result<bool, String> {
    // table_id, flags+length (2), id (2), version/current_next, section_number,
    // last_section_number, ..., CRC (4).
    if section.len() < 12 {
        return Err(format!(
            "{what} section of {} bytes is shorter than the 12-byte minimum",
            section.len()
        ));
    }
    let [_, flags, _, _, _, version_byte, ..] = *section else {
        return Err(format!("{what} section too short"));
    };
    if flags & 0x80 == 0 {
        return Err(format!("{what} section has section_syntax_indicator 0"));
    }
    let crc = crc32_mpeg2(section);
    if crc != 0 {
        return Err(format!(
            "{what} section CRC32 mismatch (residue {crc:#010x}, expected 0)"
        ));
    }
    Ok(version_byte & 0x01 != 0)
}

/// Parses a PAT section; returns the PMT PID of the first program, or `None`
/// if the section is not yet applicable.
fn parse_pat(section: &[u8]) -> Result<Option<u16>, String> {
    if let Some(&table_id) = section.first() {
        if table_id != 0x00 {
            return Err(format!(
                "table_id {table_id:#04x} on PID 0 is not a PAT (expected 0x00)"
            ));
        }
    }
    if !check_long_section(section, "PAT")? {
        return Ok(None);
    }
    let entries = section
        .get(8..section.len().saturating_sub(4))
        .unwrap_or(&[]);
    for entry in entries.chunks_exact(4) {
        let [pn_hi, pn_lo, pid_hi, pid_lo] = *entry else {
            continue;
        };
        let program_number = u16::from_be_bytes([pn_hi, pn_lo]);
        if program_number == 0 {
            // Network information table, not a program.
            continue;
        }
        let pid = (u16::from(pid_hi & 0x1F) << 8) | u16::from(pid_lo);
        if pid == PAT_PID || pid == NULL_PID {
            return Err(format!(
                "PAT maps program {program_number} to reserved PID {pid:#06x}"
            ));
        }
        return Ok(Some(pid));
    }
    Err("PAT lists no program".to_owned())
}

/// What a PMT section said about video.
#[derive(Debug, PartialEq, Eq)]
enum PmtOutcome {
    /// Not a current PMT section (other table or `current_next_indicator` 0).
    Ignored,
    /// The first supported video stream.
    Video(VideoStream),
    /// A valid PMT without any supported video stream.
    NoVideo,
}

/// Parses a PMT section and picks its first supported video stream.
fn parse_pmt(section: &[u8], pmt_pid: u16) -> Result<PmtOutcome, String> {
    if section.first() != Some(&0x02) {
        // The PMT PID may also carry private tables; they do not concern us.
        return Ok(PmtOutcome::Ignored);
    }
    if !check_long_section(section, "PMT")? {
        return Ok(PmtOutcome::Ignored);
    }
    let end = section.len().saturating_sub(4);
    let Some(&[pil_hi, pil_lo]) = section.get(10..12).and_then(|s| s.first_chunk::<2>()) else {
        return Err("PMT section too short for program_info_length".to_owned());
    };
    let program_info_length = (usize::from(pil_hi & 0x0F) << 8) | usize::from(pil_lo);
    let mut pos = 12 + program_info_length;
    if pos > end {
        return Err(format!(
            "PMT program_info_length {program_info_length} runs past the end of the section"
        ));
    }
    while pos < end {
        let Some(&[stream_type, pid_hi, pid_lo, len_hi, len_lo]) =
            section.get(pos..end).and_then(|s| s.first_chunk::<5>())
        else {
            return Err(format!(
                "PMT elementary stream entry at section byte {pos} is truncated"
            ));
        };
        let pid = (u16::from(pid_hi & 0x1F) << 8) | u16::from(pid_lo);
        let es_info_length = (usize::from(len_hi & 0x0F) << 8) | usize::from(len_lo);
        if let Some(codec) = VideoCodec::from_stream_type(stream_type) {
            if pid == PAT_PID || pid == NULL_PID || pid == pmt_pid {
                return Err(format!(
                    "PMT puts the video stream on reserved or conflicting PID {pid:#06x}"
                ));
            }
            return Ok(PmtOutcome::Video(VideoStream { pid, codec }));
        }
        pos += 5 + es_info_length;
        if pos > end {
            return Err(format!(
                "PMT ES_info_length {es_info_length} of the stream on PID {pid:#06x} runs past the end of the section"
            ));
        }
    }
    Ok(PmtOutcome::NoVideo)
}

/// Tracks PAT and PMT: which PID carries the video and the latest raw copies
/// of both tables (to prepend to segments).
#[derive(Debug, Default)]
struct ProgramTables {
    pat: SectionAssembler,
    pmt: SectionAssembler,
    pmt_pid: Option<u16>,
    video: Option<VideoStream>,
    pat_packets: Option<Bytes>,
    pmt_packets: Option<Bytes>,
}

impl ProgramTables {
    /// Feeds a packet; returns `true` if the selected video stream changed or
    /// was dropped (a previously selected video PID is no longer valid).
    fn on_packet(
        &mut self,
        raw: &[u8; TS_PACKET_SIZE],
        pkt: &Packet<'_>,
        packet_index: u64,
    ) -> Result<bool, TsError> {
        let malformed = |reason: String| TsError::MalformedSection {
            pid: pkt.pid,
            packet_index,
            reason,
        };
        if pkt.pid == PAT_PID {
            let Some(done) = self
                .pat
                .push(raw, pkt.payload, pkt.pusi)
                .map_err(malformed)?
            else {
                return Ok(false);
            };
            let Some(pmt_pid) = parse_pat(&done.section).map_err(malformed)? else {
                return Ok(false);
            };
            self.pat_packets = Some(done.packets);
            if self.pmt_pid != Some(pmt_pid) {
                self.pmt_pid = Some(pmt_pid);
                self.pmt = SectionAssembler::default();
                self.pmt_packets = None;
                return Ok(self.video.take().is_some());
            }
        } else if Some(pkt.pid) == self.pmt_pid {
            let Some(done) = self
                .pmt
                .push(raw, pkt.payload, pkt.pusi)
                .map_err(malformed)?
            else {
                return Ok(false);
            };
            match parse_pmt(&done.section, pkt.pid).map_err(malformed)? {
                PmtOutcome::Ignored => {}
                PmtOutcome::NoVideo => {
                    return Err(TsError::NoVideoStream {
                        pmt_pid: pkt.pid,
                        packet_index,
                    })
                }
                PmtOutcome::Video(video) => {
                    self.pmt_packets = Some(done.packets);
                    let changed = self.video.is_some_and(|old| old != video);
                    self.video = Some(video);
                    return Ok(changed);
                }
            }
        }
        Ok(false)
    }

    /// Copies of the latest PAT and PMT packets, if both are known.
    fn copies(&self) -> Option<(Bytes, Bytes)> {
        Some((self.pat_packets.clone()?, self.pmt_packets.clone()?))
    }

    /// The error explaining why no segment could be started after `searched_bytes`.
    fn search_error(&self, searched_bytes: u64) -> TsError {
        if self.pat_packets.is_none() {
            TsError::NoProgramTables {
                missing: "PAT",
                searched_bytes,
            }
        } else if let Some(video) = self.video {
            TsError::NoKeyframe {
                video_pid: video.pid,
                searched_bytes,
            }
        } else {
            TsError::NoProgramTables {
                missing: "PMT",
                searched_bytes,
            }
        }
    }
}

/// The parsed optional PES header.
#[derive(Debug, Clone, Copy)]
struct PesHeader {
    pts: Option<u64>,
    dts: Option<u64>,
    /// Offset of the elementary stream data within the PES.
    es_start: usize,
}

/// Reads a 33-bit PTS/DTS from its 5-byte encoding.
fn read_timestamp(bytes: &[u8]) -> Option<u64> {
    let &[b0, b1, b2, b3, b4] = bytes.first_chunk::<5>()?;
    Some(
        (u64::from(b0 >> 1) & 0x07) << 30
            | u64::from(b1) << 22
            | u64::from(b2 >> 1) << 15
            | u64::from(b3) << 7
            | u64::from(b4 >> 1),
    )
}

/// Parses a PES header from the collected start of a PES; `Ok(None)` means
/// more bytes are needed.
fn parse_pes_header(data: &[u8]) -> Result<Option<PesHeader>, String> {
    if data
        .iter()
        .zip([0u8, 0, 1])
        .any(|(&have, want)| have != want)
    {
        return Err(format!(
            "PES does not start with the start code prefix 00 00 01 (starts with {:02x?})",
            data.get(..3).unwrap_or(data)
        ));
    }
    let Some(&stream_id) = data.get(3) else {
        return Ok(None);
    };
    // Stream ids without the optional PES header (padding, private_stream_2, ...).
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    ) {
        return Ok(Some(PesHeader {
            pts: None,
            dts: None,
            es_start: 6,
        }));
    }
    let Some(&[flags1, flags2, header_len]) = data.get(6..9).and_then(|s| s.first_chunk::<3>())
    else {
        return Ok(None);
    };
    if flags1 & 0xC0 != 0x80 {
        return Err(format!(
            "PES optional header does not start with marker bits '10' (byte {flags1:#04x})"
        ));
    }
    let header_len = usize::from(header_len);
    let es_start = 9 + header_len;
    let Some(optional) = data.get(9..es_start) else {
        return Ok(None);
    };
    let (pts, dts) = match flags2 >> 6 {
        0b00 => (None, None),
        0b01 => return Err("PES PTS_DTS_flags '01' is forbidden".to_owned()),
        0b10 => match read_timestamp(optional) {
            Some(pts) => (Some(pts), None),
            None => {
                return Err(format!(
                    "PES_header_data_length {header_len} is too short for the PTS"
                ))
            }
        },
        _ => match (
            read_timestamp(optional),
            optional.get(5..).and_then(read_timestamp),
        ) {
            (Some(pts), Some(dts)) => (Some(pts), Some(dts)),
            _ => {
                return Err(format!(
                    "PES_header_data_length {header_len} is too short for PTS and DTS"
                ))
            }
        },
    };
    Ok(Some(PesHeader { pts, dts, es_start }))
}

/// Scans elementary stream bytes from `*pos` for the first picture and says
/// whether it is a keyframe; `None` means no picture was found yet, in which
/// case `*pos` is where to resume once more bytes have arrived.
fn scan_keyframe(codec: VideoCodec, es: &[u8], pos: &mut usize) -> Option<bool> {
    let mut i = *pos;
    while let Some(&[a, b, c]) = es.get(i..).and_then(|s| s.first_chunk::<3>()) {
        if a != 0 || b != 0 || c != 1 {
            i += 1;
            continue;
        }
        let Some(&header) = es.get(i + 3) else {
            break;
        };
        match codec {
            VideoCodec::H264 => {
                let nal_type = header & 0x1F;
                if header & 0x80 == 0 && (1..=5).contains(&nal_type) {
                    // First VCL NAL unit: an IDR slice or not.
                    *pos = i;
                    return Some(nal_type == 5);
                }
            }
            VideoCodec::H265 => {
                let nal_type = (header >> 1) & 0x3F;
                if header & 0x80 == 0 && nal_type < 32 {
                    *pos = i;
                    return Some((16..=21).contains(&nal_type));
                }
            }
            VideoCodec::Mpeg2 => {
                if header == 0x00 {
                    // picture_start_code: 10 bits temporal_reference, then 3 bits picture_coding_type.
                    let Some(&coding) = es.get(i + 5) else {
                        break;
                    };
                    *pos = i;
                    return Some((coding >> 3) & 0x07 == 1);
                }
            }
        }
        i += 3;
    }
    *pos = i;
    None
}

/// What was learned about one video PES.
#[derive(Debug, Clone, Copy)]
struct PesInfo {
    pts: Option<u64>,
    dts: Option<u64>,
    keyframe: bool,
}

/// Collects the start of one video PES (up to [`MAX_PES_SCAN_BYTES`]) until
/// its header is parsed and it is known whether it starts with a keyframe.
#[derive(Debug)]
struct PesCollector {
    codec: VideoCodec,
    /// `random_access_indicator` on the packet that started the PES.
    rai: bool,
    data: Vec<u8>,
    header: Option<PesHeader>,
    scan_pos: usize,
    keyframe: Option<bool>,
}

impl PesCollector {
    /// Starts collecting a PES whose first packet had the given `random_access_indicator`.
    fn new(codec: VideoCodec, rai: bool) -> Self {
        Self {
            codec,
            rai,
            data: Vec::new(),
            header: None,
            scan_pos: 0,
            keyframe: None,
        }
    }

    /// Adds the payload of the next packet of this PES (beyond the cap it is ignored).
    fn push(&mut self, payload: &[u8]) {
        let room = MAX_PES_SCAN_BYTES.saturating_sub(self.data.len());
        self.data
            .extend_from_slice(payload.get(..room.min(payload.len())).unwrap_or(&[]));
    }

    /// Tries to decide; `end` means no more bytes of this PES will come.
    /// Returns `Ok(None)` while undecided.
    fn resolve(&mut self, end: bool) -> Result<Option<PesInfo>, String> {
        let end = end || self.data.len() >= MAX_PES_SCAN_BYTES;
        let header = match self.header {
            Some(header) => header,
            None => match parse_pes_header(&self.data)? {
                Some(header) => {
                    self.header = Some(header);
                    header
                }
                None if end => {
                    return Err(format!(
                        "PES ended after {} bytes, before its header was complete",
                        self.data.len()
                    ))
                }
                None => return Ok(None),
            },
        };
        if self.keyframe.is_none() {
            if self.rai {
                self.keyframe = Some(true);
            } else {
                let es = self.data.get(header.es_start..).unwrap_or(&[]);
                self.keyframe = scan_keyframe(self.codec, es, &mut self.scan_pos);
                if self.keyframe.is_none() && end {
                    self.keyframe = Some(false);
                }
            }
        }
        Ok(self.keyframe.map(|keyframe| PesInfo {
            pts: header.pts,
            dts: header.dts,
            keyframe,
        }))
    }
}

/// `a - b` modulo 2^33: the forward distance from PTS `b` to PTS `a`.
fn pts_diff(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b) & (PTS_MODULUS - 1)
}

/// Converts 90 kHz ticks to a [`Duration`].
fn ticks_to_duration(ticks: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(PTS_CLOCK_HZ);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Converts a [`Duration`] to 90 kHz ticks (rounding down, saturating).
fn duration_to_ticks(duration: Duration) -> u64 {
    let ticks = duration.as_nanos().saturating_mul(u128::from(PTS_CLOCK_HZ)) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// A video PES whose keyframe status or header is not yet known.
#[derive(Debug)]
struct PesTracker {
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
struct OpenSegment {
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

/// Checks a complete segment received from elsewhere (e.g. posted over HTTP)
/// before accepting it, so that only independently decodable chunks are
/// stored and served.
///
/// Requires: a length that is a multiple of 188 and at most
/// [`MAX_SEGMENT_BYTES`]; the sync byte on every packet; a PAT and a PMT with
/// a supported video stream before the first video packet; and that first
/// video packet starting a keyframe PES. Returns what was found.
pub fn validate_segment(data: &[u8]) -> Result<SegmentInfo, TsError> {
    if data.len() > MAX_SEGMENT_BYTES {
        return Err(TsError::InputTooLarge {
            len: data.len(),
            limit: MAX_SEGMENT_BYTES,
        });
    }
    if !data.len().is_multiple_of(TS_PACKET_SIZE) {
        return Err(TsError::LengthNotPacketMultiple { len: data.len() });
    }
    let mut tables = ProgramTables::default();
    let mut pending: Option<(u64, PesCollector)> = None;
    let mut video_seen = false;
    let mut first_decided = false;
    let mut first_pts = None;
    let mut keyframes = 0usize;
    let mut packets = 0usize;

    // Accounts for a decided PES; the first one must be a keyframe.
    let mut record = |info: PesInfo, start_index: u64, pid: u16| -> Result<(), TsError> {
        if !first_decided {
            first_decided = true;
            if !info.keyframe {
                return Err(TsError::FirstVideoNotKeyframe {
                    pid,
                    packet_index: start_index,
                });
            }
            first_pts = info.pts;
        }
        if info.keyframe {
            keyframes += 1;
        }
        Ok(())
    };

    let mut video_pid_seen = None;
    for (index, chunk) in data.chunks_exact(TS_PACKET_SIZE).enumerate() {
        let index = index as u64;
        let Ok(raw) = <&[u8; TS_PACKET_SIZE]>::try_from(chunk) else {
            continue;
        };
        if raw[0] != SYNC_BYTE {
            return Err(TsError::NotMpegTs {
                offset: byte_offset(index),
            });
        }
        packets += 1;
        let pkt = parse_packet(raw, index)?;
        if pkt.tei || pkt.pid == NULL_PID {
            continue;
        }
        if let Some(video) = tables.video.filter(|v| v.pid == pkt.pid) {
            if !video_seen {
                video_seen = true;
                video_pid_seen = Some(video.pid);
                if !pkt.pusi {
                    return Err(TsError::FirstVideoNotKeyframe {
                        pid: video.pid,
                        packet_index: index,
                    });
                }
            }
            if pkt.pusi {
                if let Some((start, mut collector)) = pending.take() {
                    let info = finish_collector(&mut collector, video.pid, start)?;
                    record(info, start, video.pid)?;
                }
                pending = Some((index, PesCollector::new(video.codec, pkt.rai)));
            }
            if let Some((start, collector)) = pending.as_mut() {
                collector.push(pkt.payload);
                let start = *start;
                let decided = collector
                    .resolve(false)
                    .map_err(|reason| TsError::MalformedPes {
                        pid: video.pid,
                        packet_index: start,
                        reason,
                    })?;
                if let Some(info) = decided {
                    pending = None;
                    record(info, start, video.pid)?;
                }
            }
        }
        tables.on_packet(raw, &pkt, index)?;
    }
    if let (Some((start, mut collector)), Some(pid)) = (pending.take(), video_pid_seen) {
        let info = finish_collector(&mut collector, pid, start)?;
        record(info, start, pid)?;
    }
    let searched_bytes = data.len() as u64;
    if tables.pat_packets.is_none() {
        return Err(TsError::NoProgramTables {
            missing: "PAT",
            searched_bytes,
        });
    }
    let Some(video) = tables.video else {
        return Err(TsError::NoProgramTables {
            missing: "PMT",
            searched_bytes,
        });
    };
    if !video_seen {
        return Err(TsError::NoKeyframe {
            video_pid: video.pid,
            searched_bytes,
        });
    }
    Ok(SegmentInfo {
        packets,
        video_pid: video.pid,
        first_pts,
        keyframes,
    })
}

/// Forces a decision on a PES that has ended.
fn finish_collector(
    collector: &mut PesCollector,
    pid: u16,
    packet_index: u64,
) -> Result<PesInfo, TsError> {
    match collector.resolve(true) {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(TsError::MalformedPes {
            pid,
            packet_index,
            reason: "could not decide whether the PES starts with a keyframe".to_owned(),
        }),
        Err(reason) => Err(TsError::MalformedPes {
            pid,
            packet_index,
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 6 s of 320x180 H.264 (keyframe every 30 frames at 30 fps) + AAC, muxed by ffmpeg.
    const SAMPLE: &[u8] = include_bytes!("../../../testnet/fixtures/sample.ts");
    /// 1 s of AAC only, muxed by ffmpeg.
    const AUDIO_ONLY: &[u8] = include_bytes!("../../tests/fixtures/audio-only.ts");

    const SAMPLE_VIDEO_PID: u16 = 0x100;
    const SAMPLE_AUDIO_PID: u16 = 0x101;

    fn pid_of(packet: &[u8]) -> u16 {
        (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2])
    }

    fn pusi_of(packet: &[u8]) -> bool {
        packet[1] & 0x40 != 0
    }

    fn packets(data: &[u8]) -> impl Iterator<Item = &[u8]> {
        data.chunks(TS_PACKET_SIZE)
    }

    /// PMT PID announced by the PAT packet (single-packet PAT with pointer 0, no adaptation field).
    fn pmt_pid_from_pat(packet: &[u8]) -> u16 {
        assert_eq!(pid_of(packet), 0);
        let section = &packet[5..];
        (u16::from(section[10] & 0x1F) << 8) | u16::from(section[11])
    }

    /// Feeds `data` in pieces of `chunk` bytes and finishes.
    fn segment_all(data: &[u8], target: Duration, chunk: usize) -> Vec<Segment> {
        let mut segmenter = Segmenter::new(target);
        let mut segments = Vec::new();
        for piece in data.chunks(chunk) {
            segments.extend(segmenter.push(piece).expect("push"));
        }
        segments.extend(segmenter.finish().expect("finish"));
        segments
    }

    /// Index of the packet starting the first video PES (ffmpeg starts with a keyframe).
    fn first_video_pes_index(data: &[u8]) -> usize {
        packets(data)
            .position(|p| pid_of(p) == SAMPLE_VIDEO_PID && pusi_of(p))
            .expect("video PES in fixture")
    }

    fn secs(duration: Duration) -> f64 {
        duration.as_secs_f64()
    }

    #[test]
    fn fixture_is_well_formed() {
        assert_eq!(SAMPLE.len() % TS_PACKET_SIZE, 0);
        assert!(SAMPLE.len() < 400 * 1024);
        assert!(AUDIO_ONLY.len() < 50 * 1024);
        let info = validate_segment(SAMPLE).expect("whole fixture is a valid segment");
        assert_eq!(info.video_pid, SAMPLE_VIDEO_PID);
        assert_eq!(info.keyframes, 6);
        assert_eq!(info.packets, SAMPLE.len() / TS_PACKET_SIZE);
    }

    #[test]
    fn segments_fixture_into_one_second_chunks() {
        let segments = segment_all(SAMPLE, Duration::from_secs(1), SAMPLE.len());
        assert_eq!(segments.len(), 6, "{segments:#?}");
        let total: f64 = segments.iter().map(|s| secs(s.duration)).sum();
        assert!((total - 6.0).abs() < 0.05, "total duration {total}");
        let first_pts = SAMPLE_FIRST_PTS;
        for (i, segment) in segments.iter().enumerate() {
            assert!(
                (secs(segment.duration) - 1.0).abs() < 0.05,
                "segment {i} lasts {:?}",
                segment.duration
            );
            assert_eq!(segment.start_pts, first_pts + 90_000 * i as u64);
            let pkts: Vec<&[u8]> = packets(&segment.data).collect();
            assert_eq!(pid_of(pkts[0]), 0, "segment {i} starts with PAT");
            let pmt_pid = pmt_pid_from_pat(pkts[0]);
            assert_eq!(pid_of(pkts[1]), pmt_pid, "segment {i}: PMT second");
            assert_eq!(
                pid_of(pkts[2]),
                SAMPLE_VIDEO_PID,
                "segment {i}: video third"
            );
            assert!(pusi_of(pkts[2]));
            let info = validate_segment(&segment.data).expect("valid segment");
            assert_eq!(info.video_pid, SAMPLE_VIDEO_PID);
            assert_eq!(info.first_pts, Some(segment.start_pts));
            assert_eq!(info.keyframes, 1);
            assert_eq!(info.packets * TS_PACKET_SIZE, segment.data.len());
        }
    }

    /// PTS of the fixture's first video frame (ffmpeg's default 1.4 s mux delay).
    const SAMPLE_FIRST_PTS: u64 = 127_920;

    #[test]
    fn two_second_target_gives_three_segments() {
        let segments = segment_all(SAMPLE, Duration::from_secs(2), 1316);
        assert_eq!(segments.len(), 3);
        for segment in &segments {
            assert!((secs(segment.duration) - 2.0).abs() < 0.05);
            assert_eq!(validate_segment(&segment.data).expect("valid").keyframes, 2);
        }
    }

    #[test]
    fn concatenation_reproduces_input_from_first_keyframe() {
        let segments = segment_all(SAMPLE, Duration::from_secs(1), SAMPLE.len());
        let mut joined = Vec::new();
        for segment in &segments {
            // Each segment starts with exactly one prepended PAT and one PMT packet.
            joined.extend_from_slice(&segment.data[2 * TS_PACKET_SIZE..]);
        }
        let first = first_video_pes_index(SAMPLE);
        let expected: Vec<u8> = packets(&SAMPLE[first * TS_PACKET_SIZE..])
            .filter(|p| pid_of(p) != NULL_PID)
            .flatten()
            .copied()
            .collect();
        assert_eq!(joined.len(), expected.len());
        assert!(joined == expected);
    }

    #[test]
    fn chunking_does_not_matter() {
        let target = Duration::from_secs(1);
        let whole = segment_all(SAMPLE, target, SAMPLE.len());
        assert_eq!(segment_all(SAMPLE, target, 1), whole);
        assert_eq!(segment_all(SAMPLE, target, 1316), whole);
        assert_eq!(segment_all(SAMPLE, target, 7), whole);
        assert_eq!(segment_all(SAMPLE, target, 4096), whole);
    }

    #[test]
    fn ffprobe_accepts_each_segment() {
        let ffprobe_available = std::process::Command::new("ffprobe")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ffprobe_available {
            eprintln!("ffprobe not on PATH; skipping the ffprobe check");
            return;
        }
        let segments = segment_all(SAMPLE, Duration::from_secs(1), SAMPLE.len());
        let dir = std::env::temp_dir().join(format!("vilokanam-ts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (i, segment) in segments.iter().enumerate() {
            let path = dir.join(format!("seg{i}.ts"));
            std::fs::write(&path, &segment.data).expect("write segment");
            let output = std::process::Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
                .args(["frame=key_frame,pict_type", "-of", "csv=p=0"])
                .arg(&path)
                .output()
                .expect("run ffprobe");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "ffprobe failed on segment {i}: {stderr}"
            );
            assert!(
                stderr.trim().is_empty(),
                "ffprobe complained on segment {i}: {stderr}"
            );
            let frames: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(frames.len(), 30, "segment {i} frames: {stdout}");
            assert!(
                frames[0].starts_with("1,I"),
                "segment {i} first frame: {}",
                frames[0]
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_is_not_mpeg_ts() {
        let mut random = Vec::new();
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            random.push((state >> 24) as u8);
        }
        if random[0] == SYNC_BYTE {
            random[0] = 0;
        }
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0\x08\x06\0\0\0".to_vec();
        let text = b"GET / HTTP/1.1\r\nHost: example.invalid\r\n\r\n".repeat(20);
        // "GET" starts with 'G' = 0x47, so sync only fails at the second packet.
        for (garbage, offset) in [(random, 0), (png, 0), (text, 188)] {
            for chunk in [1, 1316, garbage.len()] {
                let mut segmenter = Segmenter::new(Duration::from_secs(1));
                let mut produced = 0;
                let mut error = None;
                for piece in garbage.chunks(chunk) {
                    match segmenter.push(piece) {
                        Ok(segments) => produced += segments.len(),
                        Err(err) => {
                            error = Some(err);
                            break;
                        }
                    }
                }
                assert_eq!(produced, 0);
                assert_eq!(error, Some(TsError::NotMpegTs { offset }));
                // Sticky: finish reports the same error.
                assert_eq!(segmenter.finish(), Err(TsError::NotMpegTs { offset }));
            }
        }
    }

    #[test]
    fn lost_sync_is_reported_with_offset() {
        let mut data = SAMPLE.to_vec();
        data[10 * TS_PACKET_SIZE] = 0x00;
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(
            segmenter.push(&data),
            Err(TsError::NotMpegTs {
                offset: 10 * TS_PACKET_SIZE as u64
            })
        );
        // Garbage after some finished segments: they are returned, the error comes next.
        let mut data = SAMPLE.to_vec();
        data.extend_from_slice(b"not a transport stream");
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(
            segmenter
                .push(&data)
                .expect("segments before the error")
                .len(),
            5
        );
        let err = TsError::NotMpegTs {
            offset: SAMPLE.len() as u64,
        };
        assert_eq!(segmenter.push(&[]), Err(err.clone()));
        assert_eq!(segmenter.finish(), Err(err));
        let message = TsError::NotMpegTs { offset: 1880 }.to_string();
        assert!(
            message.contains("0x47") && message.contains("1880"),
            "{message}"
        );
    }

    #[test]
    fn truncated_input_is_reported_by_finish() {
        let cut = SAMPLE.len() - 100;
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        let segments = segmenter.push(&SAMPLE[..cut]).expect("push");
        assert_eq!(segments.len(), 5, "segments before the truncation stand");
        assert_eq!(
            segmenter.finish(),
            Err(TsError::Truncated {
                trailing_bytes: cut % TS_PACKET_SIZE
            })
        );
    }

    #[test]
    fn audio_only_stream_has_no_video() {
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        let err = segmenter.push(AUDIO_ONLY).expect_err("no video");
        assert!(
            matches!(
                err,
                TsError::NoVideoStream {
                    pmt_pid: 0x1000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            validate_segment(AUDIO_ONLY),
            Err(TsError::NoVideoStream { .. })
        ));
    }

    #[test]
    fn empty_input_gives_no_segment() {
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(segmenter.push(&[]), Ok(Vec::new()));
        assert_eq!(segmenter.finish(), Ok(None));
    }

    #[test]
    fn segmenter_is_reusable_after_finish() {
        let target = Duration::from_secs(1);
        let mut segmenter = Segmenter::new(target);
        let mut first = segmenter.push(SAMPLE).expect("push");
        first.extend(segmenter.finish().expect("finish"));
        let mut second = segmenter.push(SAMPLE).expect("push");
        second.extend(segmenter.finish().expect("finish"));
        assert_eq!(first, second);
    }

    /// Packets of the fixture with the given PID.
    fn packets_with_pid(pid: u16) -> Vec<u8> {
        packets(SAMPLE)
            .filter(|p| pid_of(p) == pid)
            .flatten()
            .copied()
            .collect()
    }

    #[test]
    fn sync_bytes_without_tables_hit_the_search_bound() {
        let mut packet = [0xABu8; TS_PACKET_SIZE];
        packet[..4].copy_from_slice(&[SYNC_BYTE, 0x01, 0x00, 0x10]);
        let count = MAX_KEYFRAME_SEARCH_BYTES / TS_PACKET_SIZE + 2;
        let data = packet.repeat(count);
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        let err = segmenter.push(&data).expect_err("bounded search");
        assert!(
            matches!(err, TsError::NoProgramTables { missing: "PAT", .. }),
            "{err}"
        );
        // Few packets, then end of input: same diagnosis from finish().
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(segmenter.push(&data[..10 * TS_PACKET_SIZE]), Ok(Vec::new()));
        assert!(matches!(
            segmenter.finish(),
            Err(TsError::NoProgramTables { missing: "PAT", .. })
        ));
    }

    #[test]
    fn tables_without_keyframe() {
        let mut data = SAMPLE[TS_PACKET_SIZE..3 * TS_PACKET_SIZE].to_vec(); // PAT, PMT
        assert_eq!(pid_of(&data), 0);
        data.extend(packets_with_pid(SAMPLE_AUDIO_PID));
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(segmenter.push(&data), Ok(Vec::new()));
        let err = segmenter.finish().expect_err("no keyframe");
        assert!(
            matches!(
                err,
                TsError::NoKeyframe {
                    video_pid: SAMPLE_VIDEO_PID,
                    ..
                }
            ),
            "{err}"
        );
        // Only the PAT: the PMT is reported missing.
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(segmenter.push(&data[..TS_PACKET_SIZE]), Ok(Vec::new()));
        assert!(matches!(
            segmenter.finish(),
            Err(TsError::NoProgramTables { missing: "PMT", .. })
        ));
    }

    #[test]
    fn oversized_segment_is_an_error() {
        let first = first_video_pes_index(SAMPLE);
        let mut data = SAMPLE[..=first * TS_PACKET_SIZE + TS_PACKET_SIZE - 1].to_vec();
        let audio = packets_with_pid(SAMPLE_AUDIO_PID);
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        assert_eq!(segmenter.push(&data), Ok(Vec::new()));
        data.clear();
        let mut result = Ok(Vec::new());
        for _ in 0..(MAX_SEGMENT_BYTES / audio.len() + 2) {
            result = segmenter.push(&audio);
            if result.is_err() {
                break;
            }
            assert_eq!(result, Ok(Vec::new()));
        }
        let err = result.expect_err("segment too large");
        assert!(
            matches!(
                err,
                TsError::SegmentTooLarge {
                    start_pts: SAMPLE_FIRST_PTS,
                    limit: MAX_SEGMENT_BYTES,
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Clears the random_access_indicator everywhere, forcing the NAL scan.
    fn strip_rai(data: &[u8]) -> (Vec<u8>, usize) {
        let mut out = data.to_vec();
        let mut cleared = 0;
        for packet in out.chunks_mut(TS_PACKET_SIZE) {
            if packet[3] & 0x20 != 0 && packet[4] > 0 && packet[5] & 0x40 != 0 {
                packet[5] &= !0x40;
                cleared += 1;
            }
        }
        (out, cleared)
    }

    #[test]
    fn nal_scan_finds_keyframes_without_rai() {
        let (stripped, cleared) = strip_rai(SAMPLE);
        assert!(cleared >= 6, "ffmpeg sets RAI on keyframes");
        let target = Duration::from_secs(1);
        let with_rai = segment_all(SAMPLE, target, SAMPLE.len());
        for chunk in [1, 1316, stripped.len()] {
            let without = segment_all(&stripped, target, chunk);
            assert_eq!(without.len(), with_rai.len());
            for (a, b) in with_rai.iter().zip(&without) {
                assert_eq!(a.start_pts, b.start_pts);
                assert_eq!(a.duration, b.duration);
                assert_eq!(a.data.len(), b.data.len());
                assert_eq!(validate_segment(&b.data).expect("valid").keyframes, 1);
            }
        }
    }

    /// Rewrites a 5-byte PTS/DTS field in place, keeping its prefix bits.
    fn write_timestamp(field: &mut [u8], ts: u64) {
        field[0] = (field[0] & 0xF0) | (((ts >> 29) & 0x0E) as u8) | 1;
        field[1] = (ts >> 22) as u8;
        field[2] = (((ts >> 14) & 0xFE) as u8) | 1;
        field[3] = (ts >> 7) as u8;
        field[4] = (((ts << 1) & 0xFE) as u8) | 1;
    }

    /// Adds `shift` (mod 2^33) to every PES PTS/DTS.
    fn shift_timestamps(data: &[u8], shift: u64) -> Vec<u8> {
        let mut out = data.to_vec();
        for packet in out.chunks_mut(TS_PACKET_SIZE) {
            let pid = pid_of(packet);
            if !pusi_of(packet) || (pid != SAMPLE_VIDEO_PID && pid != SAMPLE_AUDIO_PID) {
                continue;
            }
            let start = if packet[3] & 0x20 != 0 {
                5 + usize::from(packet[4])
            } else {
                4
            };
            let pes = &mut packet[start..];
            assert_eq!(&pes[..3], &[0, 0, 1]);
            let flags = pes[7] >> 6;
            for (present, at) in [(flags & 0b10 != 0, 9), (flags == 0b11, 14)] {
                if present {
                    let ts = read_timestamp(&pes[at..]).expect("timestamp");
                    write_timestamp(&mut pes[at..at + 5], (ts + shift) % PTS_MODULUS);
                }
            }
        }
        out
    }

    #[test]
    fn pts_wrap_around_keeps_durations() {
        // Wrap 2.5 s into the stream.
        let shift = PTS_MODULUS - SAMPLE_FIRST_PTS - 225_000;
        let shifted = shift_timestamps(SAMPLE, shift);
        let target = Duration::from_secs(1);
        let plain = segment_all(SAMPLE, target, SAMPLE.len());
        let wrapped = segment_all(&shifted, target, 1316);
        assert_eq!(plain.len(), wrapped.len());
        for (a, b) in plain.iter().zip(&wrapped) {
            assert_eq!(a.duration, b.duration);
            assert_eq!(b.start_pts, (a.start_pts + shift) % PTS_MODULUS);
        }
        assert!(wrapped[3].start_pts < wrapped[2].start_pts, "wrap happened");
    }

    #[test]
    fn timestamp_discontinuity_cuts_segment() {
        // The stream restarts with the same timestamps (e.g. encoder restart).
        let first = first_video_pes_index(SAMPLE);
        let mut data = SAMPLE.to_vec();
        data.extend_from_slice(&SAMPLE[first * TS_PACKET_SIZE..]);
        let segments = segment_all(&data, Duration::from_secs(10), 1316);
        assert_eq!(segments.len(), 2);
        for segment in &segments {
            assert_eq!(segment.start_pts, SAMPLE_FIRST_PTS);
            assert!(
                (secs(segment.duration) - 6.0).abs() < 0.05,
                "{:?}",
                segment.duration
            );
        }
    }

    #[test]
    fn validate_rejects_bad_segments() {
        let segments = segment_all(SAMPLE, Duration::from_secs(1), SAMPLE.len());
        let good = &segments[1].data;

        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(
            validate_segment(&long),
            Err(TsError::LengthNotPacketMultiple { len: long.len() })
        );

        let mut unsynced = good.to_vec();
        unsynced[5 * TS_PACKET_SIZE] = 0x48;
        assert_eq!(
            validate_segment(&unsynced),
            Err(TsError::NotMpegTs {
                offset: 5 * TS_PACKET_SIZE as u64
            })
        );

        // PAT + PMT followed by the second video PES of the segment (not a keyframe).
        let pkts: Vec<&[u8]> = packets(good).collect();
        let second_pes = pkts
            .iter()
            .enumerate()
            .skip(3)
            .find(|(_, p)| pid_of(p) == SAMPLE_VIDEO_PID && pusi_of(p))
            .map(|(i, _)| i)
            .expect("second video PES");
        let mut no_key = good[..2 * TS_PACKET_SIZE].to_vec();
        no_key.extend_from_slice(&good[second_pes * TS_PACKET_SIZE..]);
        assert!(matches!(
            validate_segment(&no_key),
            Err(TsError::FirstVideoNotKeyframe {
                pid: SAMPLE_VIDEO_PID,
                packet_index: 2
            })
        ));

        // Mid-PES video right after the tables.
        let mut mid_pes = good[..2 * TS_PACKET_SIZE].to_vec();
        mid_pes.extend_from_slice(&good[3 * TS_PACKET_SIZE..]);
        assert!(matches!(
            validate_segment(&mid_pes),
            Err(TsError::FirstVideoNotKeyframe { .. })
        ));

        // Without its leading tables only video/audio data: no PAT at all.
        let only_media: Vec<u8> = packets(good)
            .filter(|p| pid_of(p) == SAMPLE_VIDEO_PID || pid_of(p) == SAMPLE_AUDIO_PID)
            .flatten()
            .copied()
            .collect();
        assert!(matches!(
            validate_segment(&only_media),
            Err(TsError::NoProgramTables { missing: "PAT", .. })
        ));

        // Corrupted PAT CRC.
        let mut bad_crc = good.to_vec();
        bad_crc[10] ^= 0x01;
        let err = validate_segment(&bad_crc).expect_err("bad CRC");
        assert!(
            matches!(
                err,
                TsError::MalformedSection {
                    pid: 0,
                    packet_index: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("CRC32"), "{err}");

        assert!(matches!(
            validate_segment(&[]),
            Err(TsError::NoProgramTables { missing: "PAT", .. })
        ));
        assert!(matches!(
            validate_segment(&vec![SYNC_BYTE; MAX_SEGMENT_BYTES + TS_PACKET_SIZE]),
            Err(TsError::InputTooLarge { .. })
        ));
    }

    #[test]
    fn malformed_adaptation_field_is_reported() {
        let mut data = SAMPLE.to_vec();
        let index = first_video_pes_index(SAMPLE);
        let packet = &mut data[index * TS_PACKET_SIZE..(index + 1) * TS_PACKET_SIZE];
        packet[3] |= 0x30;
        packet[4] = 183;
        let mut segmenter = Segmenter::new(Duration::from_secs(1));
        let err = segmenter.push(&data).expect_err("bad adaptation field");
        assert!(
            matches!(err, TsError::MalformedPacket { pid: SAMPLE_VIDEO_PID, packet_index, .. } if packet_index == index as u64),
            "{err}"
        );
    }

    #[test]
    fn nal_scanning() {
        let mut pos = 0;
        // H.264: AUD, SPS, PPS, SEI, then IDR.
        let idr = [
            0, 0, 0, 1, 9, 0xF0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 6, 5, 0, 0, 1, 0x65,
            0x88,
        ];
        assert_eq!(scan_keyframe(VideoCodec::H264, &idr, &mut pos), Some(true));
        pos = 0;
        let non_idr = [0, 0, 1, 9, 0x30, 0, 0, 1, 0x41, 0x9A];
        assert_eq!(
            scan_keyframe(VideoCodec::H264, &non_idr, &mut pos),
            Some(false)
        );
        // Incremental: a start code split across two pushes.
        pos = 0;
        let partial = [0, 0, 1, 9, 0x30, 0, 0];
        assert_eq!(scan_keyframe(VideoCodec::H264, &partial, &mut pos), None);
        let complete = [0, 0, 1, 9, 0x30, 0, 0, 1, 0x65];
        assert_eq!(
            scan_keyframe(VideoCodec::H264, &complete, &mut pos),
            Some(true)
        );
        // H.265: VPS (32), SPS (33), PPS (34), then IDR_W_RADL (19) / TRAIL_R (1).
        pos = 0;
        let hevc_idr = [
            0, 0, 1, 0x40, 1, 0, 0, 1, 0x42, 1, 0, 0, 1, 0x44, 1, 0, 0, 1, 0x26, 1,
        ];
        assert_eq!(
            scan_keyframe(VideoCodec::H265, &hevc_idr, &mut pos),
            Some(true)
        );
        pos = 0;
        let hevc_trail = [0, 0, 1, 0x02, 1, 0xAF];
        assert_eq!(
            scan_keyframe(VideoCodec::H265, &hevc_trail, &mut pos),
            Some(false)
        );
        // MPEG-2: sequence header, then an I picture / a P picture.
        pos = 0;
        let mpeg2_i = [0, 0, 1, 0xB3, 0x14, 0, 0, 1, 0x00, 0x00, 0x0F, 0xFF];
        assert_eq!(
            scan_keyframe(VideoCodec::Mpeg2, &mpeg2_i, &mut pos),
            Some(true)
        );
        pos = 0;
        let mpeg2_p = [0, 0, 1, 0x00, 0x00, 0x17, 0xFF];
        assert_eq!(
            scan_keyframe(VideoCodec::Mpeg2, &mpeg2_p, &mut pos),
            Some(false)
        );
    }

    #[test]
    fn pts_arithmetic() {
        assert_eq!(pts_diff(100, 40), 60);
        assert_eq!(pts_diff(10, PTS_MODULUS - 20), 30);
        assert!(pts_diff(40, 100) >= PTS_HALF_RANGE);
        assert_eq!(duration_to_ticks(Duration::from_secs(1)), 90_000);
        assert_eq!(ticks_to_duration(45_000), Duration::from_millis(500));
        assert_eq!(duration_to_ticks(Duration::MAX), u64::MAX);
        assert_eq!(
            read_timestamp(&[0x21, 0x00, 0x07, 0xE7, 0x61]),
            Some(127_920)
        );
        let mut field = [0x31, 0, 0, 0, 0];
        write_timestamp(&mut field, PTS_MODULUS - 1);
        assert_eq!(read_timestamp(&field), Some(PTS_MODULUS - 1));
        assert_eq!(field[0] & 0xF0, 0x30);
    }

    #[test]
    fn crc_matches_ffmpeg_tables() {
        let pat = &SAMPLE[TS_PACKET_SIZE..2 * TS_PACKET_SIZE];
        assert_eq!(pid_of(pat), 0);
        let section_len = usize::from(pat[6] & 0x0F) << 8 | usize::from(pat[7]);
        assert_eq!(crc32_mpeg2(&pat[5..5 + 3 + section_len]), 0);
        assert_eq!(parse_pat(&pat[5..5 + 3 + section_len]), Ok(Some(0x1000)));
    }

    #[test]
    fn sections_spanning_packets_are_reassembled() {
        // A PMT with a long program descriptor loop that needs two packets.
        let mut section = vec![0x02, 0xB0, 0x00, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1, 0x00];
        let descriptors = vec![0x05, 0xFF]
            .into_iter()
            .chain(std::iter::repeat_n(0x41, 255))
            .collect::<Vec<u8>>();
        section.extend_from_slice(&[
            0xF0 | (descriptors.len() >> 8) as u8,
            descriptors.len() as u8,
        ]);
        section.extend_from_slice(&descriptors);
        section.extend_from_slice(&[0x0F, 0xE1, 0x01, 0xF0, 0x00]); // AAC
        section.extend_from_slice(&[0x1B, 0xE1, 0x00, 0xF0, 0x00]); // H.264 on 0x100
        let length = section.len() - 3 + 4;
        section[1] = 0xB0 | (length >> 8) as u8;
        section[2] = length as u8;
        let crc = crc32_mpeg2(&section);
        section.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(crc32_mpeg2(&section), 0);

        let mut payload = vec![0u8]; // pointer_field
        payload.extend_from_slice(&section);
        let mut assembler = SectionAssembler::default();
        let mut done = None;
        for (i, piece) in payload.chunks(184).enumerate() {
            let mut raw = [0xFFu8; TS_PACKET_SIZE];
            raw[..4].copy_from_slice(&[SYNC_BYTE, if i == 0 { 0x50 } else { 0x10 }, 0x00, 0x10]);
            raw[4..4 + piece.len()].copy_from_slice(piece);
            let pkt = parse_packet(&raw, i as u64).expect("packet");
            assert!(done.is_none());
            done = assembler
                .push(&raw, pkt.payload, pkt.pusi)
                .expect("section");
        }
        let done = done.expect("complete section");
        assert_eq!(done.section, section);
        assert_eq!(done.packets.len(), 2 * TS_PACKET_SIZE);
        assert_eq!(
            parse_pmt(&done.section, 0x1000),
            Ok(PmtOutcome::Video(VideoStream {
                pid: 0x100,
                codec: VideoCodec::H264
            }))
        );
    }
}
