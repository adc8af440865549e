//! The MPEG-TS parser on arbitrary bytes, fed whole and in pieces, plus the
//! segment and part validators: must never panic, every segment it emits
//! must itself validate, and with parts on, every part must validate and a
//! segment's bytes must be exactly its parts' bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use vilokanam_media::ts::{validate_part, validate_segment, Cut, Segmenter};

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
    // The same bytes cut into parts.
    let _ = validate_part(data, false);
    let mut seg = Segmenter::with_parts(Duration::from_millis(500), Duration::from_millis(100));
    let mut cuts = vec![];
    for piece in data.chunks(split) {
        match seg.push_cuts(piece) {
            Ok(c) => cuts.extend(c),
            Err(_) => break,
        }
    }
    if let Ok(c) = seg.finish_cuts() {
        cuts.extend(c);
    }
    let mut parts: Vec<u8> = vec![];
    for c in cuts {
        match c {
            Cut::Part(p) => {
                assert!(
                    validate_part(&p.data, p.independent).is_ok(),
                    "segmenter emitted an invalid part"
                );
                parts.extend_from_slice(&p.data);
            }
            Cut::Segment(s) => {
                assert_eq!(s.data.as_ref(), parts.as_slice(), "a segment is its parts");
                assert!(validate_segment(&s.data).is_ok());
                parts.clear();
            }
        }
    }
});
