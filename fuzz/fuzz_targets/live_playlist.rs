//! The live playlist under any order of network-driven events (chunks
//! ready, given up, ends, restarts): must never panic, and its media
//! sequence never goes backwards.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vilokanam_media::hls::Playlist;

fuzz_target!(|data: &[u8]| {
    let mut p = Playlist::new(usize::from(data.first().copied().unwrap_or(6) % 16));
    let mut last_media_sequence = 0u64;
    for op in data.chunks(3).skip(1) {
        let seq = u64::from(op.get(1).copied().unwrap_or(0))
            + u64::from(op.get(2).copied().unwrap_or(0)) * 256;
        match op[0] % 5 {
            0 => p.on_ready(
                seq,
                Duration::from_millis(u64::from(op[0]) * 20 + 1),
                op[0] & 0x80 != 0,
            ),
            1 => p.on_missing(seq),
            2 => p.on_end(if op[0] & 0x40 != 0 { Some(seq) } else { None }),
            3 => p.on_restart(),
            _ => {}
        }
        let text = p.render(|s| format!("{s}.ts"));
        let ms: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(ms >= last_media_sequence, "media sequence went backwards");
        last_media_sequence = ms;
    }
});
