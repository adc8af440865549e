//! The loop retimer and span meter on arbitrary bytes (what `publish
//! --loop` reads from a file): must never panic, and rewriting keeps the
//! length and every byte outside whole packets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vilokanam_media::ts::{Retimer, SpanMeter, TS_PACKET_SIZE};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    let mut meter = SpanMeter::new(Duration::from_millis(500));
    for piece in data.chunks(split) {
        if meter.push(piece).is_err() {
            break;
        }
    }
    let span = meter.finish().unwrap_or(0);
    let mut r = Retimer::new();
    r.advance(span.max(1));
    let mut shifted = data.to_vec();
    r.rewrite(&mut shifted);
    assert_eq!(shifted.len(), data.len());
    let whole = data.len() / TS_PACKET_SIZE * TS_PACKET_SIZE;
    assert_eq!(shifted[whole..], data[whole..]);
});
