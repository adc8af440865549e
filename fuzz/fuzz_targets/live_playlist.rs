//! The live playlist under any order of network-driven events (chunks
//! and parts ready, given up, ends, restarts): must never panic, its media
//! sequence never goes backwards, every playlist keeps the LL-HLS rules
//! (`hls::rules::check`) and the held parts stay bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vilokanam_media::hls::{rules, PartEntry, Playlist, SegmentMeta};

fuzz_target!(|data: &[u8]| {
    let mut p = Playlist::new(usize::from(data.first().copied().unwrap_or(6) % 16));
    let mut last_media_sequence = 0u64;
    for op in data.chunks(3).skip(1) {
        let seq = u64::from(op.get(1).copied().unwrap_or(0))
            + u64::from(op.get(2).copied().unwrap_or(0)) * 256;
        match op[0] % 6 {
            0 => p.on_segment(
                seq,
                SegmentMeta {
                    duration: Duration::from_millis(u64::from(op[0]) * 20 + 1),
                    discontinuity: op[0] & 0x80 != 0,
                    pdt_ms: Some(seq * 1000),
                    parts: u16::from(op[0] >> 6),
                },
            ),
            1 => p.on_missing(seq),
            2 => p.on_end(if op[0] & 0x40 != 0 { Some(seq) } else { None }),
            3 => p.on_restart(),
            4 => {
                // Part `index` of segment `seq >> 2`.
                let index = (seq & 3) as u16;
                p.on_part(
                    seq >> 2,
                    index,
                    PartEntry {
                        duration: Duration::from_millis(u64::from(op[0]) + 1),
                        independent: index == 0,
                    },
                    Some((seq >> 2) * 1000),
                    false,
                )
            }
            _ => {}
        }
        let text = p.render("");
        // Every rule holds whatever the events, except that the parts of a
        // segment add up to it: the fuzzer's durations do not.
        if let Err(e) = rules::check(&text) {
            assert!(e.contains("add up to"), "{e}: {text}");
        }
        let ms: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(ms >= last_media_sequence, "media sequence went backwards");
        last_media_sequence = ms;
        assert!(text.len() < 64 * 1024, "the playlist stays small");
    }
});
