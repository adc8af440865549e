//! Tests of the TS demuxer, segmenter and validator.

use super::*;

/// 6 s of 320x180 H.264 (keyframe every 30 frames at 30 fps) + AAC, muxed by ffmpeg.
const SAMPLE: &[u8] = crate::fixtures::SAMPLE_TS;
/// 1 s of AAC only, muxed by ffmpeg.
const AUDIO_ONLY: &[u8] = crate::fixtures::AUDIO_ONLY_TS;

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
        0, 0, 0, 1, 9, 0xF0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 6, 5, 0, 0, 1, 0x65, 0x88,
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

/// Feeds `data` in pieces of `chunk` bytes to a segmenter cutting parts.
fn cut_all(data: &[u8], target: Duration, part: Duration, chunk: usize) -> Vec<Cut> {
    let mut segmenter = Segmenter::with_parts(target, part);
    let mut cuts = Vec::new();
    for piece in data.chunks(chunk) {
        cuts.extend(segmenter.push_cuts(piece).expect("push"));
    }
    cuts.extend(segmenter.finish_cuts().expect("finish"));
    cuts
}

/// Groups cuts into (parts, segment), checking that parts come first.
fn grouped(cuts: Vec<Cut>) -> Vec<(Vec<Part>, Segment)> {
    let mut out = vec![];
    let mut parts = vec![];
    for c in cuts {
        match c {
            Cut::Part(p) => parts.push(p),
            Cut::Segment(s) => out.push((std::mem::take(&mut parts), s)),
        }
    }
    assert!(parts.is_empty(), "parts after the last segment: {parts:?}");
    out
}

#[test]
fn parts_concatenate_to_their_segment_and_stay_within_the_target() {
    let part = Duration::from_millis(300);
    let groups = grouped(cut_all(SAMPLE, Duration::from_secs(1), part, 1316));
    assert_eq!(groups.len(), 6);
    for (i, (parts, seg)) in groups.iter().enumerate() {
        // 30 frames at 30 fps: 9 + 9 + 9 + 3 frames.
        assert_eq!(parts.len(), 4, "segment {i}: {parts:?}");
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, seg.data.to_vec(), "segment {i} is its parts");
        assert_eq!(seg.parts.len(), parts.len());
        let mut total = Duration::ZERO;
        for (k, p) in parts.iter().enumerate() {
            assert_eq!(p.index as usize, k);
            assert!(p.duration <= part, "part {k} of {i}: {:?}", p.duration);
            assert_eq!(seg.parts[k].size as usize, p.data.len());
            assert_eq!(seg.parts[k].duration, p.duration);
            assert_eq!(seg.parts[k].independent, p.independent);
            // Only the first part starts at a keyframe (1 s GOPs).
            assert_eq!(p.independent, k == 0, "part {k} of {i}");
            // Every part starts with the tables and is valid MPEG-TS.
            let first: Vec<&[u8]> = packets(&p.data).take(2).collect();
            assert_eq!(pid_of(first[0]), 0, "part {k} of {i} starts with the PAT");
            total += p.duration;
        }
        for p in &parts[..parts.len() - 1] {
            assert_eq!(p.duration, Duration::from_millis(300), "full parts");
        }
        let diff = total.abs_diff(seg.duration);
        assert!(
            diff < Duration::from_micros(100),
            "{total:?} vs {:?}",
            seg.duration
        );
        validate_segment(&seg.data).expect("segment with inner tables is valid");
        validate_segment(&parts[0].data).expect("first part is a valid segment");
    }
}

#[test]
fn parts_do_not_change_where_segments_are_cut() {
    let plain = segment_all(SAMPLE, Duration::from_secs(1), 4096);
    let with_parts = grouped(cut_all(
        SAMPLE,
        Duration::from_secs(1),
        Duration::from_millis(250),
        4096,
    ));
    assert_eq!(plain.len(), with_parts.len());
    for (a, (_, b)) in plain.iter().zip(&with_parts) {
        assert_eq!(a.start_pts, b.start_pts);
        assert_eq!(a.duration, b.duration);
        assert!(a.parts.is_empty());
    }
}

#[test]
fn parts_do_not_depend_on_input_chunking() {
    let a = cut_all(
        SAMPLE,
        Duration::from_secs(1),
        Duration::from_millis(200),
        1,
    );
    let b = cut_all(
        SAMPLE,
        Duration::from_secs(1),
        Duration::from_millis(200),
        65536,
    );
    assert_eq!(a, b);
}

#[test]
fn a_keyframe_inside_a_segment_starts_an_independent_part() {
    // 2 s segments over 1 s GOPs: the keyframe in the middle of each
    // segment starts a part, which is marked independent.
    let groups = grouped(cut_all(
        SAMPLE,
        Duration::from_secs(2),
        Duration::from_millis(500),
        4096,
    ));
    assert_eq!(groups.len(), 3);
    for (parts, _) in &groups {
        let independent: Vec<bool> = parts.iter().map(|p| p.independent).collect();
        // 60 frames, 15 per part: 4 parts; the third starts at 1 s.
        assert_eq!(independent, vec![true, false, true, false], "{parts:?}");
    }
}

#[test]
fn part_count_is_bounded() {
    // A part target shorter than a frame would cut at every frame: the
    // segmenter stops at MAX_PARTS and the last part takes the rest.
    let groups = grouped(cut_all(
        SAMPLE,
        Duration::from_secs(30),
        Duration::from_millis(1),
        4096,
    ));
    let (parts, seg) = &groups[0];
    assert!(parts.len() <= MAX_PARTS);
    assert_eq!(
        parts.iter().map(|p| p.data.len()).sum::<usize>(),
        seg.data.len()
    );
}

#[test]
fn parts_validate_and_garbage_parts_do_not() {
    let groups = grouped(cut_all(
        SAMPLE,
        Duration::from_secs(1),
        Duration::from_millis(300),
        4096,
    ));
    for (parts, _) in &groups {
        for p in parts {
            validate_part(&p.data, p.independent).expect("a part the segmenter cut");
        }
        // A dependent part is not a segment: it does not start at a keyframe.
        assert!(validate_part(&parts[1].data, true).is_err());
    }
    assert!(matches!(
        validate_part(&[0x47; 100], false),
        Err(TsError::LengthNotPacketMultiple { .. })
    ));
    assert!(matches!(
        validate_part(&[], false),
        Err(TsError::LengthNotPacketMultiple { .. })
    ));
    let mut bad = groups[0].0[1].data.to_vec();
    bad[188 * 2] = 0x00;
    assert!(matches!(
        validate_part(&bad, false),
        Err(TsError::NotMpegTs { offset: 376 })
    ));
}
