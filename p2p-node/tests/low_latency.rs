//! LL-HLS across the mesh, in process: a creator publishes parts, two
//! relays forward them, a viewer three hops away lists them as they come
//! and serves them; every playlist keeps the LL-HLS rules and round-trips
//! through m3u8-rs; blocking reloads answer when the part comes, 400 when
//! asked too far ahead and 503 after three target durations; segments are
//! assembled from parts with no second download; bad parts are refused.

use std::time::{Duration, Instant};

use bytes::Bytes;
use vilokanam::config::NodeConfig;
use vilokanam::http;
use vilokanam::node::{Node, NodeHandle};
use vilokanam_api::{ApiClient, PartQuery, SegmentQuery, StartRequest};
use vilokanam_media::fixtures::SAMPLE_TS;
use vilokanam_media::hls::rules;
use vilokanam_media::ts::{Cut, Part, Segment, Segmenter};
use vilokanam_storage::Store;
use vilokanam_testnet::wait_until;

struct Running {
    node: NodeHandle,
    api: ApiClient,
    _dir: tempfile::TempDir,
}

async fn start(bootstrap: Option<&ApiClient>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut config = NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        announce_interval_secs: 1,
        ..NodeConfig::default()
    };
    if let Some(b) = bootstrap {
        config.bootstrap = vec![b.id().await.unwrap().listen[0].clone()];
    }
    let listener = http::bind("127.0.0.1:0".parse().unwrap(), 64)
        .await
        .unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let node = Node::spawn(config, keys, store).await.unwrap();
    tokio::spawn(http::serve(listener, node.clone(), std::future::pending()));
    Running {
        node,
        api: ApiClient::new(&addr.to_string()),
        _dir: dir,
    }
}

/// The fixture's six 1 s segments, each with its four parts (300, 300,
/// 300, 100 ms).
fn cut() -> Vec<(Vec<Part>, Segment)> {
    let mut s = Segmenter::with_parts(Duration::from_secs(1), Duration::from_millis(300));
    let mut cuts = s.push_cuts(SAMPLE_TS).unwrap();
    cuts.extend(s.finish_cuts().unwrap());
    let mut out = vec![];
    let mut parts = vec![];
    for c in cuts {
        match c {
            Cut::Part(p) => parts.push(p),
            Cut::Segment(s) => out.push((std::mem::take(&mut parts), s)),
        }
    }
    out
}

async fn post_part(api: &ApiClient, name: &str, p: &Part) {
    let q = PartQuery {
        index: p.index,
        duration_us: p.duration.as_micros() as u32,
        target_us: Some(300_000),
        independent: p.independent,
        discontinuity: false,
    };
    api.part(name, &q, p.data.clone()).await.unwrap();
}

async fn post_segment(api: &ApiClient, name: &str, s: &Segment) {
    let q = SegmentQuery {
        duration_us: s.duration.as_micros() as u32,
        discontinuity: false,
    };
    api.segment(name, &q, s.data.clone()).await.unwrap();
}

/// Reads the playlist (with optional blocking directives), checks the
/// LL-HLS rules and the m3u8-rs round trip, returns it with the status.
async fn read_playlist(api: &ApiClient, stream: &str, query: &str) -> (u16, String) {
    let url = format!("{}{query}", api.playlist_url(stream));
    let r = vilokanam_api::reqwest::get(&url).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    if status == 200 {
        check(&text);
    }
    (status, text)
}

fn check(text: &str) -> rules::Summary {
    let sum = rules::check(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .unwrap_or_else(|e| panic!("m3u8-rs: {e:?}:\n{text}"));
    let mut out = Vec::new();
    parsed.write_to(&mut out).unwrap();
    let again = m3u8_rs::parse_media_playlist_res(&out).unwrap();
    assert_eq!(parsed, again, "m3u8-rs round trip");
    assert_eq!(parsed.segments.len(), sum.segments);
    sum
}

async fn metric(api: &ApiClient, name: &str) -> u64 {
    let text = api.metrics_text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_cross_three_hops_as_low_latency_hls() {
    let creator = start(None).await;
    let r1 = start(Some(&creator.api)).await;
    let r2 = start(Some(&r1.api)).await;
    let viewer = start(Some(&r2.api)).await;
    let relays = [&r1, &r2];
    let start_req = StartRequest {
        title: "low latency".into(),
        ..StartRequest::default()
    };
    let stream = creator.api.start("ll", &start_req).await.unwrap().stream;
    for r in relays {
        r.api.watch(&stream).await.unwrap();
    }
    viewer.api.watch(&stream).await.unwrap();
    wait_until("the line is meshed", Duration::from_secs(20), || async {
        let mut ok = true;
        for n in [&creator, &r1, &r2, &viewer] {
            ok &= !n.api.peers().await?.is_empty();
        }
        Ok(ok)
    })
    .await
    .unwrap();
    let cut = cut();
    let total: usize = cut.iter().skip(1).map(|(_, s)| s.data.len()).sum();
    // Segment 0 while the stream topic's mesh forms (its headers may
    // reach nobody yet: nodes then pull it by sequence).
    for p in &cut[0].0 {
        post_part(&creator.api, "ll", p).await;
    }
    post_segment(&creator.api, "ll", &cut[0].1).await;
    wait_until(
        "segment 0 at the viewer",
        Duration::from_secs(20),
        || async { Ok(viewer.api.segment_file(&stream, 0).await?.is_some()) },
    )
    .await
    .unwrap();
    let mut pulled_before = vec![];
    for n in [&r1, &r2, &viewer] {
        pulled_before.push(metric(&n.api, "vilokanam_swarm_payload_bytes_in_total").await);
    }
    let mut part_seen_at = vec![];
    for (seq, (parts, seg)) in cut.iter().enumerate().skip(1) {
        for p in parts {
            post_part(&creator.api, "ll", p).await;
            let t = Instant::now();
            // The viewer lists the part (three hops away) and serves its
            // bytes, unchanged.
            let uri = format!("/streams/{stream}/{seq}.{}.ts", p.index);
            wait_until(
                "the part at the viewer",
                Duration::from_secs(10),
                || async {
                    let (_, list) = read_playlist(&viewer.api, &stream, "").await;
                    Ok(list.contains(&format!("URI=\"{uri}\"")))
                },
            )
            .await
            .unwrap();
            part_seen_at.push(t.elapsed());
            let bytes = vilokanam_api::reqwest::get(viewer.api.url(&uri))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(bytes, p.data, "part {seq}.{}", p.index);
        }
        post_segment(&creator.api, "ll", seg).await;
        wait_until(
            "the segment at the viewer",
            Duration::from_secs(10),
            || async {
                Ok(viewer
                    .api
                    .segment_file(&stream, seq as u64)
                    .await?
                    .is_some())
            },
        )
        .await
        .unwrap();
        let got = viewer
            .api
            .segment_file(&stream, seq as u64)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, seg.data, "segment {seq} is its parts");
    }
    let (_, list) = read_playlist(&viewer.api, &stream, "").await;
    let sum = check(&list);
    assert_eq!(sum.part_target, Some(0.3), "{list}");
    assert_eq!(sum.program_dates, sum.segments);
    assert_eq!(sum.parts, 3 * 4, "the last three segments' parts: {list}");
    eprintln!("part at the viewer (3 hops) after posting: {part_seen_at:?}");

    // Parts cost no second download: what each node pulled is the
    // stream's bytes once (headers aside).
    for ((name, n), before) in [("r1", &r1), ("r2", &r2), ("viewer", &viewer)]
        .into_iter()
        .zip(pulled_before)
    {
        let pulled = metric(&n.api, "vilokanam_swarm_payload_bytes_in_total").await - before;
        assert!(
            pulled as f64 <= total as f64 * 1.05,
            "{name} pulled {pulled} bytes for a {total}-byte stream"
        );
    }
    // A player without LL-HLS reads the same playlist: ffprobe decodes
    // it (skipped without ffprobe, a failure under VILOKANAM_REQUIRE=1).
    let ffprobe = if vilokanam_testnet::ffmpeg_available() {
        Ok(())
    } else {
        Err("ffmpeg/ffprobe not on PATH".to_owned())
    };
    if vilokanam_chain::test_utils::skip_or_require("ffprobe", ffprobe).is_some() {
        let out = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args(["stream=codec_name,width,height", "-of", "csv=p=0"])
            .arg(viewer.api.playlist_url(&stream))
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // ffprobe lists the stream under the HLS program and on its own.
        let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| *l == "h264,320,180"),
            "{stdout}"
        );
    }
    let info = viewer.api.stream(&stream).await.unwrap();
    assert_eq!(info.part_target_ms, Some(300));
    assert!(info.latency_ms.is_some(), "{info:?}");

    // Blocking reload: asks for the next part before it exists, and is
    // answered once it is published.
    let (_, list) = read_playlist(&viewer.api, &stream, "").await;
    let msn: u64 = list
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let open = msn + rules::check(&list).unwrap().segments as u64;
    let next = cut[0].0[0].clone();
    let api = viewer.api.clone();
    let st = stream.clone();
    let waiting = tokio::spawn(async move {
        let t = Instant::now();
        let r = read_playlist(&api, &st, &format!("?_HLS_msn={open}&_HLS_part=0")).await;
        (r, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "held until the part exists");
    // A resumed stream continues its numbers: the next part starts
    // segment 6 with a discontinuity (a new encoder pass).
    let q = PartQuery {
        index: 0,
        duration_us: next.duration.as_micros() as u32,
        target_us: Some(300_000),
        independent: true,
        discontinuity: true,
    };
    creator.api.part("ll", &q, next.data.clone()).await.unwrap();
    let ((status, list), waited) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("/streams/{stream}/6.0.ts\"")),
        "{list}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "answered when the part came: {waited:?}"
    );
    // Too far ahead: 400 at once. Never coming: 503 after 3 targets.
    let (status, _) = read_playlist(&viewer.api, &stream, &format!("?_HLS_msn={}", open + 5)).await;
    assert_eq!(status, 400);
    let t = Instant::now();
    let (status, body) = read_playlist(
        &viewer.api,
        &stream,
        &format!("?_HLS_msn={open}&_HLS_part=3"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    let (status, _) = read_playlist(&viewer.api, &stream, "?_HLS_part=1").await;
    assert_eq!(status, 400, "_HLS_part needs _HLS_msn");
    // The preload-hinted part is waited for; a part that will never be
    // listed is 404 at once.
    let hinted = format!("/streams/{stream}/6.1.ts");
    let url = viewer.api.url(&hinted);
    let get = tokio::spawn(async move { vilokanam_api::reqwest::get(url).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = cut[0].0[1].clone();
    post_part(&creator.api, "ll", &second).await;
    let r = get.await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap(), second.data);
    let r = vilokanam_api::reqwest::get(viewer.api.url(&format!("/streams/{stream}/1.0.ts")))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "parts of old segments are gone");
    // Too many parts ahead: 400 at once.
    let (status, _) = read_playlist(
        &viewer.api,
        &stream,
        &format!("?_HLS_msn={open}&_HLS_part=9"),
    )
    .await;
    assert_eq!(status, 400);
    // The creator ends the stream with segment 6 open (two parts sent):
    // it is completed from them, so the viewer's playlist ends instead of
    // waiting for it for good.
    creator.api.end("ll").await.unwrap();
    wait_until("ENDLIST at the viewer", Duration::from_secs(10), || async {
        Ok(read_playlist(&viewer.api, &stream, "")
            .await
            .1
            .contains("#EXT-X-ENDLIST"))
    })
    .await
    .unwrap();
    let closed = viewer.api.segment_file(&stream, 6).await.unwrap().unwrap();
    assert_eq!(closed.len(), next.data.len() + second.data.len());
    let info = creator.api.stream(&stream).await.unwrap();
    assert_eq!(info.last_seq, Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parts_are_refused_with_a_reason() {
    let creator = start(None).await;
    let start_req = StartRequest::default();
    creator.api.start("bad", &start_req).await.unwrap();
    let cut = cut();
    let parts = &cut[0].0;
    let q = |index: u16, independent: bool| PartQuery {
        index,
        duration_us: 300_000,
        target_us: None,
        independent,
        discontinuity: false,
    };
    // Out of order: part 1 before part 0.
    let e = creator
        .api
        .part("bad", &q(1, false), parts[1].data.clone())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(e.to_string().contains("expected part 0"), "{e}");
    // Garbage media.
    let e = creator
        .api
        .part("bad", &q(0, true), Bytes::from_static(b"not mpeg-ts"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    // A part 0 that does not start at a keyframe.
    let e = creator
        .api
        .part("bad", &q(0, true), parts[1].data.clone())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    // Good part 0, then a skipped index.
    creator
        .api
        .part("bad", &q(0, true), parts[0].data.clone())
        .await
        .unwrap();
    let e = creator
        .api
        .part("bad", &q(2, false), parts[2].data.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expected part 1"), "{e}");
    // A segment that is not made of its parts is published whole (its
    // header lists no parts) and keeps the number part 0 reserved.
    let other = &cut[1].1;
    let r = creator
        .api
        .segment(
            "bad",
            &SegmentQuery {
                duration_us: 1_000_000,
                discontinuity: false,
            },
            other.data.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.seq, 0);
    // Parts of a paid stream are sealed one by one: the mesh carries the
    // ciphertext, the creator's own node serves the plaintext.
    let paid = StartRequest {
        offer: Some(vilokanam_api::OfferInfo {
            price_per_sec: "2000000".into(),
            payee: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
            genesis: format!("0x{}", "42".repeat(32)),
            epoch_secs: 6,
            key_servers: vec![],
        }),
        ..StartRequest::default()
    };
    let paid_id = creator.api.start("paid", &paid).await.unwrap().stream;
    let r = creator
        .api
        .part("paid", &q(0, true), parts[0].data.clone())
        .await
        .unwrap();
    let sealed = creator.node.raw_part(&paid_id, r.seq, 0).await.unwrap();
    assert_eq!(sealed.len(), parts[0].data.len() + 16, "plaintext + tag");
    assert_ne!(&sealed[16..], &parts[0].data[16..], "encrypted");
    let plain = vilokanam_api::reqwest::get(creator.api.url(&format!("/streams/{paid_id}/0.0.ts")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(plain, parts[0].data);
    let metrics = creator.api.metrics_text().await.unwrap();
    assert!(
        metrics.contains("reason=\"part_out_of_order\""),
        "{metrics}"
    );

    // A segment refused after its parts (a zero duration) leaves it open:
    // the right segment then takes the number its part 0 had.
    let start_req = StartRequest::default();
    let id = creator.api.start("open", &start_req).await.unwrap().stream;
    creator
        .api
        .part("open", &q(0, true), parts[0].data.clone())
        .await
        .unwrap();
    creator
        .api
        .part("open", &q(1, false), parts[1].data.clone())
        .await
        .unwrap();
    let two: Bytes = [parts[0].data.clone(), parts[1].data.clone()]
        .concat()
        .into();
    let zero = SegmentQuery {
        duration_us: 0,
        discontinuity: false,
    };
    let e = creator
        .api
        .segment("open", &zero, two.clone())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    let ok = SegmentQuery {
        duration_us: 600_000,
        discontinuity: false,
    };
    assert_eq!(
        creator
            .api
            .segment("open", &ok, two.clone())
            .await
            .unwrap()
            .seq,
        0
    );
    // Parts may not add up to more than the longest segment (30 s).
    let long = |index: u16, ms: u32| PartQuery {
        index,
        duration_us: ms * 1000,
        target_us: None,
        independent: index == 0,
        discontinuity: false,
    };
    creator
        .api
        .part("open", &long(0, 29_000), parts[0].data.clone())
        .await
        .unwrap();
    let e = creator
        .api
        .part("open", &long(1, 2_000), parts[1].data.clone())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    // The encoder bridge restarts mid-segment (`start` again): the open
    // segment (seq 1, one part) is completed from its part, no hole.
    creator.api.start("open", &start_req).await.unwrap();
    let held = creator.node.raw_payload(&id, 1).await.unwrap();
    assert_eq!(held, parts[0].data, "segment 1 made of its one part");
    let r = creator
        .api
        .part("open", &q(0, true), parts[0].data.clone())
        .await
        .unwrap();
    assert_eq!(r.seq, 2, "the next segment takes the next number");
    creator.node.shutdown().await.unwrap();
}
