//! Every segment the segmenter cuts from the shipped fixture decodes on its
//! own in a real player's parser (ffprobe), starting with a keyframe.
//! Needs ffprobe: skipped with a SKIPPED line without it, a failure under
//! `VILOKANAM_REQUIRE=1` (as in CI).

use std::time::Duration;

use vilokanam_chain::test_utils::skip_or_require;
use vilokanam_media::fixtures::SAMPLE_TS;
use vilokanam_media::ts::Segmenter;

fn ffprobe() -> Result<(), String> {
    match std::process::Command::new("ffprobe")
        .arg("-version")
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("ffprobe -version exited with {}", o.status)),
        Err(e) => Err(format!("ffprobe not on PATH: {e}")),
    }
}

#[test]
fn ffprobe_decodes_each_segment_from_a_keyframe() {
    if skip_or_require("ffprobe", ffprobe()).is_none() {
        return;
    }
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut segments = s.push(SAMPLE_TS).expect("push");
    segments.extend(s.finish().expect("finish"));
    assert_eq!(segments.len(), 6);
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, segment) in segments.iter().enumerate() {
        let path = dir.path().join(format!("seg{i}.ts"));
        std::fs::write(&path, &segment.data).expect("write segment");
        let output = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args(["frame=key_frame,pict_type", "-of", "csv=p=0"])
            .arg(&path)
            .output()
            .expect("run ffprobe");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "ffprobe failed on segment {i}: {stderr}"
        );
        assert!(
            stderr.trim().is_empty(),
            "ffprobe complained on segment {i}: {stderr}"
        );
        let frames: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(frames.len(), 30, "segment {i} frames: {stdout}");
        assert!(
            frames[0].starts_with("1,I"),
            "segment {i} first frame: {}",
            frames[0]
        );
    }
}

/// The DTS of every packet per stream (`v` or `a`), in file order, and
/// ffprobe's warnings.
fn packet_dts(path: &std::path::Path) -> (Vec<(String, i64)>, String) {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "warning", "-show_entries", "packet=codec_type,dts"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(output.status.success(), "ffprobe failed on {path:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let packets = stdout
        .lines()
        .filter_map(|l| {
            let (kind, dts) = l.trim().split_once(',')?;
            Some((kind.to_owned(), dts.trim_end_matches(',').parse().ok()?))
        })
        .collect();
    (
        packets,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn first_backward_step(packets: &[(String, i64)], kind: &str) -> Option<(i64, i64)> {
    let dts: Vec<i64> = packets
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, d)| *d)
        .collect();
    dts.windows(2).find(|w| w[1] <= w[0]).map(|w| (w[0], w[1]))
}

/// What `publish --loop` sends: three passes of the fixture, retimed. A
/// real demuxer sees one continuous stream — every video and audio DTS
/// later than the one before, no continuity-counter warning — where the
/// plain concatenation jumps back at each seam (what made mpv reset
/// playback every six seconds).
#[test]
fn ffprobe_sees_a_retimed_loop_as_one_continuous_stream() {
    use vilokanam_media::ts::{span_ticks, Retimer};
    if skip_or_require("ffprobe", ffprobe()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let span = span_ticks(SAMPLE_TS, Duration::from_secs(1)).expect("span");
    let mut retimer = Retimer::new();
    let mut looped = Vec::new();
    for _ in 0..3 {
        let mut pass = SAMPLE_TS.to_vec();
        retimer.rewrite(&mut pass);
        looped.extend(pass);
        retimer.advance(span);
    }
    let path = dir.path().join("looped.ts");
    std::fs::write(&path, &looped).expect("write");
    let (packets, warnings) = packet_dts(&path);
    assert!(warnings.trim().is_empty(), "ffprobe warned: {warnings}");
    for kind in ["video", "audio"] {
        let n = packets.iter().filter(|(k, _)| k == kind).count();
        assert!(n > 0, "no {kind} packets");
        assert_eq!(
            first_backward_step(&packets, kind),
            None,
            "{kind} DTS went back"
        );
    }
    let video: Vec<i64> = packets
        .iter()
        .filter(|(k, _)| k == "video")
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(video.len(), 3 * 180, "three passes of 180 frames");
    // Each pass is the fixture shifted by one more span.
    let once = dir.path().join("once.ts");
    std::fs::write(&once, SAMPLE_TS).expect("write");
    let (single, _) = packet_dts(&once);
    let single: Vec<i64> = single
        .iter()
        .filter(|(k, _)| k == "video")
        .map(|(_, d)| *d)
        .collect();
    for (i, dts) in video.iter().enumerate() {
        assert_eq!(
            *dts,
            single[i % 180] + (i / 180) as i64 * span as i64,
            "frame {i}"
        );
    }

    // The control: the same three passes, not retimed, jump back.
    let plain = dir.path().join("plain.ts");
    std::fs::write(&plain, SAMPLE_TS.repeat(3)).expect("write");
    let (packets, _) = packet_dts(&plain);
    assert!(first_backward_step(&packets, "video").is_some());
}
