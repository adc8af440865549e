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
