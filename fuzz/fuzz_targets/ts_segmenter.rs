//! The MPEG-TS parser on arbitrary bytes, fed whole and in pieces, plus the
//! segment validator: must never panic, and every segment it emits must
//! itself validate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vilokanam_media::ts::{validate_segment, Segmenter};

fuzz_target!(|data: &[u8]| {
    let _ = validate_segment(data);
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    let mut seg = Segmenter::new(Duration::from_millis(500));
    let mut out = vec![];
    for piece in data.chunks(split) {
        match seg.push(piece) {
            Ok(s) => out.extend(s),
            Err(_) => break,
        }
    }
    if let Ok(Some(s)) = seg.finish() {
        out.push(s);
    }
    for s in out {
        assert!(
            validate_segment(&s.data).is_ok(),
            "segmenter emitted an invalid segment"
        );
    }
});
