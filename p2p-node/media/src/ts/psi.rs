//! Program-specific information: PAT and PMT sections, reassembled
//! across packets and CRC-checked, and the video stream they select.

use bytes::Bytes;

use super::*;

/// Largest legal `section_length` of a PAT or PMT section.
pub(crate) const MAX_SECTION_LENGTH: usize = 1021;

/// Video codecs whose keyframes we can recognise, by PMT `stream_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    /// `stream_type` 0x1B.
    H264,
    /// `stream_type` 0x24.
    H265,
    /// `stream_type` 0x02.
    Mpeg2,
}

impl VideoCodec {
    /// Maps a PMT `stream_type` to a supported video codec.
    pub(crate) fn from_stream_type(stream_type: u8) -> Option<Self> {
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
pub(crate) struct VideoStream {
    pub(crate) pid: u16,
    pub(crate) codec: VideoCodec,
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, initial value all ones).
/// Over a whole PSI section including its CRC field the result is 0.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
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
pub(crate) struct CompletedSection {
    /// The section bytes, from `table_id` through the CRC.
    pub(crate) section: Vec<u8>,
    /// The raw TS packets the section was carried in (for prepending copies).
    pub(crate) packets: Bytes,
}

/// Reassembles PSI sections (PAT/PMT) of one PID, including sections that
/// span several packets. Only the first section starting in a packet is
/// considered; further sections packed behind it are ignored.
#[derive(Debug, Default)]
pub(crate) struct SectionAssembler {
    /// Section bytes collected so far (at most 3 + [`MAX_SECTION_LENGTH`] are kept).
    pub(crate) buf: Vec<u8>,
    /// Raw packets carrying the section so far.
    pub(crate) packets: Vec<u8>,
    /// Whether a section is being collected.
    pub(crate) active: bool,
}

impl SectionAssembler {
    /// Feeds one packet's payload; returns the most recent section completed by it.
    pub(crate) fn push(
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
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
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
    pub(crate) fn section_length(&self) -> Option<usize> {
        let [_, hi, lo] = *self.buf.first_chunk::<3>()?;
        Some((usize::from(hi & 0x0F) << 8) | usize::from(lo))
    }

    /// Returns the section if all of its bytes have arrived.
    pub(crate) fn take_if_complete(&mut self) -> Option<CompletedSection> {
        let total = 3 + self.section_length()?;
        let section = self.buf.get(..total)?.to_vec();
        let packets = Bytes::from(std::mem::take(&mut self.packets));
        self.reset();
        Some(CompletedSection { section, packets })
    }

    /// Forgets any partially collected section.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.packets.clear();
        self.active = false;
    }
}

/// Checks the generic long-form section header and CRC of a PAT or PMT.
/// Returns `Ok(false)` if the section is not yet applicable (`current_next_indicator` 0).
pub(crate) fn check_long_section(section: &[u8], what: &str) -> Result<bool, String> {
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
pub(crate) fn parse_pat(section: &[u8]) -> Result<Option<u16>, String> {
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
pub(crate) enum PmtOutcome {
    /// Not a current PMT section (other table or `current_next_indicator` 0).
    Ignored,
    /// The first supported video stream.
    Video(VideoStream),
    /// A valid PMT without any supported video stream.
    NoVideo,
}

/// Parses a PMT section and picks its first supported video stream.
pub(crate) fn parse_pmt(section: &[u8], pmt_pid: u16) -> Result<PmtOutcome, String> {
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
pub(crate) struct ProgramTables {
    pub(crate) pat: SectionAssembler,
    pub(crate) pmt: SectionAssembler,
    pub(crate) pmt_pid: Option<u16>,
    pub(crate) video: Option<VideoStream>,
    pub(crate) pat_packets: Option<Bytes>,
    pub(crate) pmt_packets: Option<Bytes>,
}

impl ProgramTables {
    /// Feeds a packet; returns `true` if the selected video stream changed or
    /// was dropped (a previously selected video PID is no longer valid).
    pub(crate) fn on_packet(
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
    pub(crate) fn copies(&self) -> Option<(Bytes, Bytes)> {
        Some((self.pat_packets.clone()?, self.pmt_packets.clone()?))
    }

    /// The error explaining why no segment could be started after `searched_bytes`.
    pub(crate) fn search_error(&self, searched_bytes: u64) -> TsError {
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
