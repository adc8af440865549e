//! Video PES headers, 33-bit 90 kHz timestamps, and the collector that
//! decides whether a PES starts with a keyframe.

use std::time::Duration;

use super::*;

/// PTS values are 33 bits wide.
pub(crate) const PTS_MODULUS: u64 = 1 << 33;

/// A PTS difference at least this large (modulo 2^33) means "backwards".
pub(crate) const PTS_HALF_RANGE: u64 = 1 << 32;

/// Largest timestamp step accepted as a frame interval estimate (1 s).
pub(crate) const MAX_FRAME_INTERVAL_TICKS: u64 = PTS_CLOCK_HZ;

/// The parsed optional PES header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PesHeader {
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
    /// Offset of the elementary stream data within the PES.
    pub(crate) es_start: usize,
}

/// Reads a 33-bit PTS/DTS from its 5-byte encoding.
pub(crate) fn read_timestamp(bytes: &[u8]) -> Option<u64> {
    let &[b0, b1, b2, b3, b4] = bytes.first_chunk::<5>()?;
    Some(
        (u64::from(b0 >> 1) & 0x07) << 30
            | u64::from(b1) << 22
            | u64::from(b2 >> 1) << 15
            | u64::from(b3) << 7
            | u64::from(b4 >> 1),
    )
}

/// Rewrites a 5-byte PTS/DTS field in place, keeping its prefix bits.
pub(crate) fn write_timestamp(field: &mut [u8], ts: u64) {
    field[0] = (field[0] & 0xF0) | (((ts >> 29) & 0x0E) as u8) | 1;
    field[1] = (ts >> 22) as u8;
    field[2] = (((ts >> 14) & 0xFE) as u8) | 1;
    field[3] = (ts >> 7) as u8;
    field[4] = (((ts << 1) & 0xFE) as u8) | 1;
}

/// Parses a PES header from the collected start of a PES; `Ok(None)` means
/// more bytes are needed.
pub(crate) fn parse_pes_header(data: &[u8]) -> Result<Option<PesHeader>, String> {
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

/// What was learned about one video PES.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PesInfo {
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
    pub(crate) keyframe: bool,
}

/// Collects the start of one video PES (up to [`MAX_PES_SCAN_BYTES`]) until
/// its header is parsed and it is known whether it starts with a keyframe.
#[derive(Debug)]
pub(crate) struct PesCollector {
    pub(crate) codec: VideoCodec,
    /// `random_access_indicator` on the packet that started the PES.
    pub(crate) rai: bool,
    pub(crate) data: Vec<u8>,
    pub(crate) header: Option<PesHeader>,
    pub(crate) scan_pos: usize,
    pub(crate) keyframe: Option<bool>,
}

impl PesCollector {
    /// Starts collecting a PES whose first packet had the given `random_access_indicator`.
    pub(crate) fn new(codec: VideoCodec, rai: bool) -> Self {
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
    pub(crate) fn push(&mut self, payload: &[u8]) {
        let room = MAX_PES_SCAN_BYTES.saturating_sub(self.data.len());
        self.data
            .extend_from_slice(payload.get(..room.min(payload.len())).unwrap_or(&[]));
    }

    /// Tries to decide; `end` means no more bytes of this PES will come.
    /// Returns `Ok(None)` while undecided.
    pub(crate) fn resolve(&mut self, end: bool) -> Result<Option<PesInfo>, String> {
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
pub(crate) fn pts_diff(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b) & (PTS_MODULUS - 1)
}

/// Converts 90 kHz ticks to a [`Duration`].
pub(crate) fn ticks_to_duration(ticks: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(PTS_CLOCK_HZ);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Converts a [`Duration`] to 90 kHz ticks (rounding down, saturating).
pub(crate) fn duration_to_ticks(duration: Duration) -> u64 {
    let ticks = duration.as_nanos().saturating_mul(u128::from(PTS_CLOCK_HZ)) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}
