//! MPEG-TS clips shipped with the code (made with ffmpeg), so that tests
//! and `vilokanam testnet` work on machines without ffmpeg.

/// 6 s of 320x180 H.264 (a keyframe every 30 frames at 30 fps) plus AAC,
/// muxed by ffmpeg: six 1 s GOPs.
pub const SAMPLE_TS: &[u8] = include_bytes!("../fixtures/sample.ts");

/// 1 s of AAC only (no video), muxed by ffmpeg.
pub const AUDIO_ONLY_TS: &[u8] = include_bytes!("../fixtures/audio-only.ts");
