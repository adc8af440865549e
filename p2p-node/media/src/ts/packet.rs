//! TS packet headers and adaptation fields (ISO/IEC 13818-1 §2.4.3).

use super::*;

/// First byte of every TS packet.
pub(crate) const SYNC_BYTE: u8 = 0x47;

/// PID carrying the program association table.
pub(crate) const PAT_PID: u16 = 0x0000;

/// PID of null (stuffing) packets, which are dropped.
pub(crate) const NULL_PID: u16 = 0x1FFF;

/// The parts of a TS packet header this module needs.
#[derive(Debug)]
pub(crate) struct Packet<'a> {
    pub(crate) pid: u16,
    /// `payload_unit_start_indicator`: a PES or PSI section starts here.
    pub(crate) pusi: bool,
    /// `transport_error_indicator`: the packet is known to be corrupt.
    pub(crate) tei: bool,
    /// `random_access_indicator` from the adaptation field.
    pub(crate) rai: bool,
    pub(crate) payload: &'a [u8],
}

/// Parses the header and adaptation field of one packet (sync byte already checked).
pub(crate) fn parse_packet(
    raw: &[u8; TS_PACKET_SIZE],
    packet_index: u64,
) -> Result<Packet<'_>, TsError> {
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
