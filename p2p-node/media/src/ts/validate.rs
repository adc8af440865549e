//! Validation of a finished segment received from elsewhere.

use super::*;

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
pub(crate) fn finish_collector(
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

/// Checks a part (LL-HLS partial segment) posted for publication: an
/// independent part must be a valid segment ([`validate_segment`]: tables,
/// then a keyframe); a dependent part continues the frames of the part
/// before it, so only its packets are checked (length, sync bytes, packet
/// headers and adaptation fields). The segment the parts make is checked
/// whole when it is published.
pub fn validate_part(data: &[u8], independent: bool) -> Result<(), TsError> {
    if independent {
        return validate_segment(data).map(|_| ());
    }
    if data.len() > MAX_SEGMENT_BYTES {
        return Err(TsError::InputTooLarge {
            len: data.len(),
            limit: MAX_SEGMENT_BYTES,
        });
    }
    if data.is_empty() || !data.len().is_multiple_of(TS_PACKET_SIZE) {
        return Err(TsError::LengthNotPacketMultiple { len: data.len() });
    }
    for (i, packet) in data.chunks_exact(TS_PACKET_SIZE).enumerate() {
        let index = i as u64;
        if packet[0] != SYNC_BYTE {
            return Err(TsError::NotMpegTs {
                offset: byte_offset(index),
            });
        }
        let raw: &[u8; TS_PACKET_SIZE] = packet
            .try_into()
            .map_err(|_| TsError::LengthNotPacketMultiple { len: data.len() })?;
        parse_packet(raw, index)?;
    }
    Ok(())
}
