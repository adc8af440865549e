//! Paused-time tests of the publisher: `--realtime` pacing and the idle
//! end of a silent live input.

use std::collections::VecDeque;

use super::*;
use vilokanam_media::fixtures::SAMPLE_TS;

#[derive(Debug, PartialEq)]
enum Call {
    Start,
    Segment {
        at: Duration,
        discontinuity: bool,
        start_pts: u64,
        data: Vec<u8>,
    },
    Part {
        at: Duration,
        index: u16,
        discontinuity: bool,
    },
    End,
}

/// Records what the publisher asks of the daemon, with virtual times.
struct Recorder {
    t0: Instant,
    calls: Vec<Call>,
    next: u64,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            t0: Instant::now(),
            calls: vec![],
            next: 0,
        }
    }
}

impl Sink for &mut Recorder {
    async fn start(&mut self) -> Result<(String, u64)> {
        self.calls.push(Call::Start);
        Ok(("s".into(), self.next))
    }
    async fn segment(&mut self, seg: &Segment, discontinuity: bool) -> Result<SegmentResponse> {
        self.calls.push(Call::Segment {
            at: self.t0.elapsed(),
            discontinuity,
            start_pts: seg.start_pts,
            data: seg.data.to_vec(),
        });
        self.next += 1;
        Ok(SegmentResponse {
            seq: self.next - 1,
            cid: String::new(),
            size: 0,
        })
    }
    async fn part(&mut self, part: &Part, discontinuity: bool) -> Result<()> {
        self.calls.push(Call::Part {
            at: self.t0.elapsed(),
            index: part.index,
            discontinuity,
        });
        Ok(())
    }
    async fn end(&mut self) -> Result<()> {
        self.calls.push(Call::End);
        Ok(())
    }
}

fn segments() -> Vec<Segment> {
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut out = s.push(SAMPLE_TS).unwrap();
    out.extend(s.finish().unwrap());
    out
}

#[tokio::test(start_paused = true)]
async fn realtime_releases_each_segment_at_its_media_time() {
    let mut rec = Recorder::new();
    {
        let mut p = Publisher::new(&mut rec, true);
        for s in segments() {
            p.send(s).await.unwrap();
        }
    }
    let times: Vec<Duration> = rec
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::Segment { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    assert_eq!(times.len(), 6);
    for (i, t) in times.iter().enumerate() {
        // Segment i is due when i + 1 seconds of media have elapsed.
        let due = Duration::from_secs(i as u64 + 1);
        let ms = t.as_millis() as i64 - due.as_millis() as i64;
        assert!(ms.abs() <= 50, "segment {i} sent at {t:?}, due {due:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn realtime_releases_each_part_at_its_media_time_and_the_segment_with_its_last() {
    let mut rec = Recorder::new();
    {
        let mut p = Publisher::new(&mut rec, true);
        let mut s = Segmenter::with_parts(Duration::from_secs(1), Duration::from_millis(300));
        p.feed(&mut s, SAMPLE_TS).await.unwrap();
        p.finish(&mut s).await.unwrap();
    }
    let mut media = Duration::ZERO;
    let mut parts = 0;
    let mut segments = 0;
    for c in &rec.calls {
        match c {
            Call::Part { at, index, .. } => {
                // 300, 300, 300 and 100 ms parts of each 1 s segment.
                media += if *index == 3 {
                    Duration::from_millis(100)
                } else {
                    Duration::from_millis(300)
                };
                let ms = at.as_millis() as i64 - media.as_millis() as i64;
                assert!(ms.abs() <= 50, "part {index} sent at {at:?}, due {media:?}");
                parts += 1;
            }
            Call::Segment { at, .. } => {
                let due = Duration::from_secs(segments + 1);
                let ms = at.as_millis() as i64 - due.as_millis() as i64;
                assert!(ms.abs() <= 50, "segment sent at {at:?}, due {due:?}");
                segments += 1;
            }
            _ => {}
        }
    }
    assert_eq!((parts, segments), (24, 6));
}

#[tokio::test(start_paused = true)]
async fn without_realtime_segments_go_at_once() {
    let mut rec = Recorder::new();
    {
        let mut p = Publisher::new(&mut rec, false);
        for s in segments() {
            p.send(s).await.unwrap();
        }
    }
    assert!(rec
        .calls
        .iter()
        .all(|c| !matches!(c, Call::Segment { at, .. } if *at > Duration::ZERO)));
}

/// A live source that yields `items` (bytes, or a pause of that long)
/// and then ends.
struct Scripted(VecDeque<Result<Vec<u8>, Duration>>);

impl LiveSource for Scripted {
    async fn read(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            match self.0.pop_front() {
                None => return Ok(None),
                Some(Ok(bytes)) => return Ok(Some(bytes)),
                Some(Err(pause)) => {
                    // Cancel-safe: if the idle timer wins, the pause is
                    // over by the next call (time moved on).
                    self.0.push_front(Err(Duration::ZERO));
                    tokio::time::sleep(pause).await;
                    self.0.pop_front();
                }
            }
        }
    }
}

/// Before the idle timeout, a live input that stopped left the stream
/// announced as live forever. Now: what was complete is published, the
/// stream is ended, and it resumes after a discontinuity.
#[tokio::test(start_paused = true)]
async fn silent_live_input_ends_the_stream_and_resumes_with_a_discontinuity() {
    let half = SAMPLE_TS.len() / 188 / 2 * 188;
    let source = Scripted(VecDeque::from([
        Ok(SAMPLE_TS[..half].to_vec()),
        Ok(SAMPLE_TS[half..].to_vec()),
        Err(Duration::from_secs(30)),
        Ok(SAMPLE_TS.to_vec()),
    ]));
    let mut rec = Recorder::new();
    {
        let mut p = Publisher::new(&mut rec, false);
        let mut seg = Segmenter::new(Duration::from_secs(1));
        let mut source = source;
        p.live(&mut seg, Duration::from_secs(5), &mut source)
            .await
            .unwrap();
        p.close().await.unwrap();
    }
    let starts = rec.calls.iter().filter(|c| **c == Call::Start).count();
    let ends = rec.calls.iter().filter(|c| **c == Call::End).count();
    assert_eq!((starts, ends), (2, 2), "{:?}", rec.calls);
    let segs: Vec<&Call> = rec
        .calls
        .iter()
        .filter(|c| matches!(c, Call::Segment { .. }))
        .collect();
    assert_eq!(
        segs.len(),
        12,
        "all six GOPs, twice: the cut-off GOP was kept"
    );
    // The first segment after the silence is marked as a discontinuity.
    let after_idle = rec
        .calls
        .iter()
        .skip_while(|c| **c != Call::End)
        .find(|c| matches!(c, Call::Segment { .. }));
    assert!(matches!(
        after_idle,
        Some(Call::Segment {
            discontinuity: true,
            ..
        })
    ));
    // The cut-off GOP was published, and the stream ended, when the idle
    // timeout (5 s) passed, not at the end of the 30 s pause.
    let idle_end = rec.calls.iter().position(|c| *c == Call::End).unwrap();
    let Call::Segment { at, .. } = rec.calls[idle_end - 1] else {
        panic!("{:?}", rec.calls);
    };
    assert!(
        at >= Duration::from_secs(5) && at < Duration::from_secs(6),
        "flushed at {at:?}"
    );
}

/// `--loop`: three passes of a 6 s file publish as one 18 s stream, each
/// pass one span after the last with no discontinuity, every
/// one valid and none repeating the bytes (hence the CID) of an earlier
/// one. Before the retimer, each pass restarted the timestamps and mpv
/// reset playback at every seam.
#[tokio::test(start_paused = true)]
async fn looped_file_is_one_continuous_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.ts");
    std::fs::write(&path, SAMPLE_TS).unwrap();
    let first = segments()[0].start_pts;
    let span = vilokanam_media::ts::span_ticks(SAMPLE_TS, Duration::from_secs(1)).unwrap();
    let mut rec = Recorder::new();
    {
        let mut p = Publisher::new(&mut rec, false);
        let mut seg = Segmenter::new(Duration::from_secs(1));
        p.file(&mut seg, &path, 3).await.unwrap();
    }
    let segs: Vec<(bool, u64, &[u8])> = rec
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::Segment {
                discontinuity,
                start_pts,
                data,
                ..
            } => Some((*discontinuity, *start_pts, data.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(segs.len(), 18);
    let mut seen = std::collections::HashSet::new();
    for (i, (disc, pts, data)) in segs.iter().enumerate() {
        assert!(!disc, "segment {i} marked as a discontinuity");
        let (pass, k) = (i as u64 / 6, i as u64 % 6);
        assert_eq!(*pts, first + pass * span + k * 90_000, "segment {i}");
        vilokanam_media::ts::validate_segment(data).unwrap();
        assert!(
            seen.insert(data.to_vec()),
            "segment {i} repeats an earlier one"
        );
    }
}

/// A file that cannot loop is refused with the reason, not busy-looped
/// publishing nothing: one without video, one without a keyframe.
#[tokio::test(start_paused = true)]
async fn looping_a_file_without_keyframes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, reason) in [
        (
            "audio.ts",
            vilokanam_media::fixtures::AUDIO_ONLY_TS,
            "lists no video stream",
        ),
        ("tables.ts", &SAMPLE_TS[..188 * 3], "no video keyframe"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut rec = Recorder::new();
        let mut p = Publisher::new(&mut rec, false);
        let mut seg = Segmenter::new(Duration::from_secs(1));
        let err = p.file(&mut seg, &path, u64::MAX).await.unwrap_err();
        assert!(format!("{err:#}").contains(reason), "{name}: {err:#}");
        drop(p);
        assert!(rec.calls.is_empty(), "{name}: {:?}", rec.calls);
    }
}
