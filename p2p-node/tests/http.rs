//! In-process tests of every HTTP endpoint: real nodes (swarm on
//! 127.0.0.1) and the real router on 127.0.0.1:0, driven through the one
//! API client. Milliseconds each, no processes.

use std::time::Duration;

use vilokanam::config::NodeConfig;
use vilokanam::http;
use vilokanam::node::{Node, NodeHandle};
use vilokanam_api::reqwest::{header, Method};
use vilokanam_api::{ApiClient, OfferInfo, StartRequest, StreamState, WatchRequest};
use vilokanam_media::fixtures::SAMPLE_TS;
use vilokanam_media::ts::{Segment, Segmenter};
use vilokanam_storage::Store;
use vilokanam_testnet::wait_until;

struct Running {
    node: NodeHandle,
    api: ApiClient,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(config: NodeConfig) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let listener = http::bind("127.0.0.1:0".parse().unwrap(), config.http_max_connections)
            .await
            .unwrap();
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let node = Node::spawn(config, keys, store).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(listener, node.clone(), async move {
            let _ = rx.await;
        }));
        Running {
            node,
            api: ApiClient::new(&addr.to_string()),
            _dir: dir,
            stop: Some(tx),
            server,
        }
    }

    /// A node that dials `creator` at start (a bootstrap peer).
    async fn viewer_of(creator: &vilokanam_api::IdResponse) -> Running {
        Running::start(NodeConfig {
            bootstrap: vec![creator.listen[0].clone()],
            ..config()
        })
        .await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        self.node.shutdown().await.unwrap();
    }
}

fn config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        announce_interval_secs: 1,
        ..NodeConfig::default()
    }
}

fn segments() -> Vec<Segment> {
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut out = s.push(SAMPLE_TS).unwrap();
    out.extend(s.finish().unwrap());
    out
}

async fn publish(api: &ApiClient, name: &str, segs: &[Segment]) {
    for s in segs {
        let q = vilokanam_api::SegmentQuery {
            duration_us: s.duration.as_micros() as u32,
            discontinuity: false,
        };
        api.segment(name, &q, s.data.clone()).await.unwrap();
    }
}

/// Paid-stream terms: 2 µTICK/s to Alice on a made-up chain.
fn offer() -> OfferInfo {
    OfferInfo {
        price_per_sec: "2000000".into(),
        payee: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
        genesis: format!("0x{}", "42".repeat(32)),
        epoch_secs: 6,
        key_servers: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_over_two_nodes() {
    let creator = Running::start(config()).await;
    let cid = creator.api.id().await.unwrap();
    // The viewer dials the creator at start (a bootstrap peer).
    let viewer = Running::viewer_of(&cid).await;
    // id
    assert_eq!(cid.peer_id, creator.node.identity().peer_id.to_string());
    assert_eq!(cid.creator_key.len(), 64);
    assert_ne!(cid.creator_key, cid.voucher_key, "separate keys by role");
    assert!(cid.listen[0].contains("/p2p/"));
    // peers
    wait_until("peers on both sides", Duration::from_secs(10), || async {
        Ok(!creator.api.peers().await?.is_empty() && !viewer.api.peers().await?.is_empty())
    })
    .await
    .unwrap();
    // start, watch, segments
    let start = creator
        .api
        .start(
            "show",
            &StartRequest {
                title: "The show".into(),
                tags: vec!["music".into()],
                codec: String::new(),
                offer: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(start.stream, format!("{}-show", cid.creator_key));
    assert_eq!(start.next_seq, 0);
    let url = viewer.api.watch(&start.stream).await.unwrap();
    assert_eq!(url, viewer.api.playlist_url(&start.stream));
    // The viewer learns of the stream from the announcement.
    wait_until(
        "the viewer hears the announcement",
        Duration::from_secs(10),
        || async {
            Ok(viewer
                .api
                .streams()
                .await?
                .iter()
                .any(|s| s.id == start.stream && s.state == StreamState::Live))
        },
    )
    .await
    .unwrap();
    let segs = segments();
    publish(&creator.api, "show", &segs).await;
    wait_until(
        "all chunks at the viewer",
        Duration::from_secs(20),
        || async { Ok(viewer.api.chunks(&start.stream).await?.len() == segs.len()) },
    )
    .await
    .unwrap();
    // chunks, segment files, playlist
    let chunks = viewer.api.chunks(&start.stream).await.unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    for (c, s) in chunks.iter().zip(&segs) {
        let bytes = viewer
            .api
            .segment_file(&start.stream, c.seq)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes, s.data, "chunk {}", c.seq);
        assert!(c.ready_at_ms >= c.published_at_ms);
    }
    assert_eq!(
        viewer.api.segment_file(&start.stream, 99).await.unwrap(),
        None
    );
    let list = viewer.api.playlist(&start.stream).await.unwrap();
    assert!(list.starts_with("#EXTM3U\n"), "{list}");
    assert!(
        list.contains(&format!("/streams/{}/5.ts", start.stream)),
        "{list}"
    );
    // streams/{id}, stats, metrics
    let one = viewer.api.stream(&start.stream).await.unwrap();
    assert_eq!(one.title.as_deref(), Some("The show"));
    assert_eq!(one.offer, None, "a free stream");
    assert!(one.watching && !one.publishing);
    let stats = viewer.api.stats().await.unwrap();
    assert_eq!(stats.joined_streams, 1);
    assert_eq!(stats.chunks_held, 6);
    assert!(stats.http_in_flight >= 1, "this request is in flight");
    let metrics = creator.api.metrics_text().await.unwrap();
    assert!(
        metrics.contains("vilokanam_node_segments_published_total 6"),
        "{metrics}"
    );
    assert!(metrics.contains("vilokanam_swarm_loop_branch_total"));
    // end: the viewer's playlist ends.
    creator.api.end("show").await.unwrap();
    wait_until("ENDLIST at the viewer", Duration::from_secs(10), || async {
        Ok(viewer
            .api
            .playlist(&start.stream)
            .await?
            .contains("#EXT-X-ENDLIST"))
    })
    .await
    .unwrap();
    // unwatch: the viewer leaves, and its playlist is gone.
    viewer.api.unwatch(&start.stream).await.unwrap();
    let e = viewer.api.playlist(&start.stream).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert!(e.to_string().contains("not watched here"), "{e}");
    assert_eq!(viewer.api.stats().await.unwrap().joined_streams, 0);
    viewer.stop().await;
    creator.stop().await;
}

#[tokio::test]
async fn errors_have_precise_status_codes() {
    let n = Running::start(config()).await;
    let api = &n.api;
    let raw = |m: Method, p: &'static str, b: Vec<u8>| api.raw(m, p, b);
    // 400: a malformed stream id.
    let (code, body) = raw(Method::POST, "/api/v0/watch/nothex-x", vec![])
        .await
        .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid stream id"), "{body}");
    // 400: an offer that cannot be signed, each with its field.
    for (o, why) in [
        (
            OfferInfo {
                price_per_sec: "0".into(),
                ..offer()
            },
            "zero",
        ),
        (
            OfferInfo {
                payee: "alice".into(),
                ..offer()
            },
            "payee",
        ),
        (
            OfferInfo {
                genesis: "0x12".into(),
                ..offer()
            },
            "genesis",
        ),
    ] {
        let req = StartRequest {
            offer: Some(o),
            ..StartRequest::default()
        };
        let e = api.start("paid", &req).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");
        assert!(
            e.to_string().contains("invalid offer") && e.to_string().contains(why),
            "{e}"
        );
    }
    // ...and nothing was started.
    assert!(api.streams().await.unwrap().is_empty());
    // 409: a segment before the start.
    let seg = segments()[0].data.to_vec();
    let (code, body) = raw(
        Method::POST,
        "/api/v0/publish/s/segment?duration_us=1000000",
        seg.clone(),
    )
    .await
    .unwrap();
    assert_eq!(code, 409, "{body}");
    // 422: garbage media, after a start.
    api.start("s", &StartRequest::default()).await.unwrap();
    let (code, body) = raw(
        Method::POST,
        "/api/v0/publish/s/segment?duration_us=1000000",
        b"garbage".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("segment refused: segment length 7 bytes"),
        "{body}"
    );
    // 413: over the media layer's segment limit.
    let big = vec![0x47; vilokanam_media::limits::MAX_SEGMENT_BYTES + 188];
    let (code, _) = raw(
        Method::POST,
        "/api/v0/publish/s/segment?duration_us=1000000",
        big.clone(),
    )
    .await
    .unwrap();
    assert_eq!(code, 413);
    // The unread rest of that body spoils the connection: the response
    // says so, or the client's next request on it fails to send.
    let r = vilokanam_api::reqwest::Client::new()
        .post(api.url("/api/v0/publish/s/segment?duration_us=1000000"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    // 400: a missing query.
    let (code, _) = raw(Method::POST, "/api/v0/publish/s/segment", seg)
        .await
        .unwrap();
    assert_eq!(code, 400);
    // 404: unknown endpoint, unknown stream, not published, not held.
    for (m, p) in [
        (Method::GET, "/api/v0/nothing"),
        (Method::POST, "/api/v0/publish/other/end"),
        (
            Method::GET,
            "/streams/0000000000000000000000000000000000000000000000000000000000000000-x/3.ts",
        ),
        (
            Method::GET,
            "/api/v0/streams/0000000000000000000000000000000000000000000000000000000000000000-x",
        ),
        (
            Method::DELETE,
            "/api/v0/watch/0000000000000000000000000000000000000000000000000000000000000000-x",
        ),
    ] {
        let (code, body) = raw(m.clone(), p, vec![]).await.unwrap();
        assert_eq!(code, 404, "{m} {p}: {body}");
        assert!(body.starts_with("{\"error\":"), "{body}");
    }
    n.stop().await;
}

/// A web page of another origin must not make the node watch or publish
/// (a GET from a page can happen, a state change must not).
#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let n = Running::start(config()).await;
    let client = vilokanam_api::reqwest::Client::new();
    let stream = "0000000000000000000000000000000000000000000000000000000000000000-x";
    let r = client
        .post(n.api.url(&format!("/api/v0/watch/{stream}")))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("cross-origin POST"));
    assert_eq!(n.api.stats().await.unwrap().joined_streams, 0);
    // The same from a local page is fine.
    let r = client
        .post(n.api.url(&format!("/api/v0/watch/{stream}")))
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    n.stop().await;
}

/// More requests at once than `http_max_requests` get 503 at once (they
/// do not queue without bound). Two uploads whose bodies the test trickles
/// hold both slots; a third request is refused while they last, and served
/// once they are done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_get_503() {
    let n = Running::start(NodeConfig {
        http_max_requests: 2,
        ..config()
    })
    .await;
    n.api.start("s", &StartRequest::default()).await.unwrap();
    let client = vilokanam_api::reqwest::Client::new();
    let url = n.api.url("/api/v0/publish/s/segment?duration_us=1000000");
    let mut senders = vec![];
    let mut uploads = vec![];
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let req = client
            .post(&url)
            .body(vilokanam_api::reqwest::Body::wrap_stream(body))
            .send();
        uploads.push(tokio::spawn(req));
        senders.push(tx);
    }
    // While both uploads hold their slot, any other request is refused at
    // once with 503 and the limit named.
    let seg = segments()[0].data.to_vec();
    for tx in &senders {
        tx.send(Ok(seg[..188 * 10].to_vec())).await.unwrap();
    }
    wait_until("the API at its limit", Duration::from_secs(10), || async {
        Ok(n.api.raw(Method::GET, "/api/v0/id", vec![]).await?.0 == 503)
    })
    .await
    .unwrap();
    let (code, body) = n.api.raw(Method::GET, "/api/v0/id", vec![]).await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("maximum of 2 requests"), "{body}");
    // Finish the uploads: both are served, and the API answers again.
    for tx in senders {
        tx.send(Ok(seg[188 * 10..].to_vec())).await.unwrap();
    }
    for u in uploads {
        let r = u.await.unwrap().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    }
    n.api.id().await.unwrap();
    let busy = n.api.metric("vilokanam_node_http_busy", &[]).await.unwrap();
    assert!(busy >= 1.0);
    n.stop().await;
}

/// `watch` with a price cap: a stream announced dearer is refused with its
/// price (402); one heard dearer only after the watch has its playlist
/// refused; a cap at or above the price plays; a bad cap is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_cap_refuses_dearer_streams() {
    let creator = Running::start(config()).await;
    let cid = creator.api.id().await.unwrap();
    let viewer = Running::viewer_of(&cid).await;
    let stream = format!("{}-paid", cid.creator_key);
    let cap = |planck: &str| WatchRequest {
        max_price_per_sec: Some(planck.into()),
        budget: None,
        top_up_to: None,
    };
    // Watched before its price is known: accepted.
    viewer
        .api
        .watch_with(&stream, &cap("1000000"))
        .await
        .unwrap();
    let req = StartRequest {
        offer: Some(offer()),
        ..StartRequest::default()
    };
    creator.api.start("paid", &req).await.unwrap();
    wait_until(
        "the viewer hears the price",
        Duration::from_secs(10),
        || async { Ok(viewer.api.stream(&stream).await?.offer.is_some()) },
    )
    .await
    .unwrap();
    let dearer = "costs 2 µTICK/s, above the limit of 1 µTICK/s";
    let e = viewer.api.playlist(&stream).await.unwrap_err();
    assert_eq!(e.status(), Some(402), "{e}");
    assert!(e.to_string().contains(dearer), "{e}");
    // Known dearer at watch time: refused, and not watched.
    viewer.api.unwatch(&stream).await.unwrap();
    let e = viewer
        .api
        .watch_with(&stream, &cap("1000000"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(402), "{e}");
    assert!(e.to_string().contains(dearer), "{e}");
    assert!(!viewer.api.stream(&stream).await.unwrap().watching);
    // A cap at the price: watched, and its playlist is served.
    viewer
        .api
        .watch_with(&stream, &cap("2000000"))
        .await
        .unwrap();
    publish(&creator.api, "paid", &segments()).await;
    // Within the cap, the price no longer refuses it; the paywall does,
    // since this viewer has not paid.
    let unpaid = "holds no key for any epoch";
    let e = viewer.api.playlist(&stream).await.unwrap_err();
    assert_eq!(e.status(), Some(402), "{e}");
    assert!(e.to_string().contains(unpaid), "{e}");
    // Without a cap (and none configured), any price.
    viewer.api.watch(&stream).await.unwrap();
    let e = viewer.api.playlist(&stream).await.unwrap_err();
    assert!(e.to_string().contains(unpaid), "{e}");
    // A cap that is not planck per second.
    let e = viewer
        .api
        .watch_with(&stream, &cap("5µTICK"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(e.to_string().contains("max_price_per_sec"), "{e}");
    viewer.stop().await;
    creator.stop().await;
}

/// ffprobe's verdict on a file: `Ok` if it decodes video frames.
fn ffprobe_frames(path: &std::path::Path) -> Result<usize, String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=key_frame", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .map_err(|e| format!("ffprobe: {e}"))?;
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    if out.status.success() && frames > 0 {
        Ok(frames)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn a_paid_stream_reaches_non_payers_only_as_ciphertext() {
    let ffprobe = vilokanam_chain::test_utils::skip_or_require(
        "ffprobe",
        std::process::Command::new("ffprobe")
            .arg("-version")
            .output()
            .map(|_| ())
            .map_err(|e| format!("ffprobe not on PATH: {e}")),
    )
    .is_some();
    let creator = Running::start(config()).await;
    let cid = creator.api.id().await.unwrap();
    let viewer = Running::viewer_of(&cid).await;
    let stream = format!("{}-paid", cid.creator_key);
    viewer.api.watch(&stream).await.unwrap();
    let req = StartRequest {
        offer: Some(offer()),
        ..StartRequest::default()
    };
    creator.api.start("paid", &req).await.unwrap();
    let segs = segments();
    publish(&creator.api, "paid", &segs).await;
    wait_until(
        "the viewer holds every chunk",
        Duration::from_secs(20),
        || async { Ok(viewer.api.chunks(&stream).await?.len() == segs.len()) },
    )
    .await
    .unwrap();
    // The announcement names this node as the key server, and the epoch
    // length.
    // The price, payee, chain and epoch arrive signed with the
    // announcement, which names this node as the key server.
    let info = viewer.api.stream(&stream).await.unwrap().offer.unwrap();
    assert_eq!(
        info,
        OfferInfo {
            key_servers: vec![cid.peer_id.clone()],
            ..offer()
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let held = viewer.api.chunks(&stream).await.unwrap();
    let ids = |c: &[vilokanam_api::ChunkInfo]| -> Vec<_> {
        c.iter().map(|c| (c.seq, c.cid.clone(), c.size)).collect()
    };
    assert_eq!(
        ids(&held),
        ids(&creator.api.chunks(&stream).await.unwrap()),
        "same CIDs: relays verify the ciphertext"
    );
    for (c, seg) in held.iter().zip(&segs) {
        // The creator plays its own stream: the plaintext, byte for byte.
        let plain = creator
            .api
            .segment_file(&stream, c.seq)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&plain[..], &seg.data[..], "chunk {}", c.seq);
        // The viewer holds ciphertext: 16 bytes longer, not MPEG-TS.
        let raw = viewer.node.raw_payload(&stream, c.seq).await.unwrap();
        assert_eq!(raw.len(), seg.data.len() + 16);
        assert_ne!(&raw[..188], &seg.data[..188]);
        assert!(vilokanam_media::ts::validate_segment(&raw).is_err());
        // ...and its HLS refuses to serve it, saying why.
        let e = viewer.api.segment_file(&stream, c.seq).await.unwrap_err();
        assert_eq!(e.status(), Some(402), "{e}");
        assert!(e.to_string().contains("holds no key for epoch"), "{e}");
        if ffprobe {
            let p = dir.path().join(format!("plain{}.ts", c.seq));
            std::fs::write(&p, &plain).unwrap();
            assert!(ffprobe_frames(&p).is_ok(), "the creator's copy decodes");
            let p = dir.path().join(format!("cipher{}.ts", c.seq));
            std::fs::write(&p, &raw).unwrap();
            assert!(
                ffprobe_frames(&p).is_err(),
                "ffprobe decoded the ciphertext of {}",
                c.seq
            );
        }
    }
    let e = viewer.api.playlist(&stream).await.unwrap_err();
    assert_eq!(e.status(), Some(402), "{e}");
    viewer.stop().await;
    creator.stop().await;
}

/// The chat's endpoints, and each refusal with its status code and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_endpoints_refuse_with_precise_status_codes() {
    use futures::StreamExt;
    use vilokanam_api::{ChatEvent, ChatModerate, ChatSend};
    let n = Running::start(config()).await;
    let api = &n.api;
    let me = api.id().await.unwrap().creator_key;
    let mine = format!("{me}-show");
    let theirs = format!("{}-show", "11".repeat(32));
    // Not in the chat yet: reading and following it are 404.
    let (code, body) = api
        .raw(Method::GET, &format!("/api/v0/streams/{mine}/chat"), vec![])
        .await
        .unwrap();
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("chat/join"), "{body}");
    let e = api.chat_events(&mine).await.err().expect("404").to_string();
    assert!(e.contains("404"), "{e}");
    // A malformed stream id: 400.
    let (code, _) = api
        .raw(Method::POST, "/api/v0/streams/nothex-x/chat/join", vec![])
        .await
        .unwrap();
    assert_eq!(code, 400);

    // Join, send, read back; the server-sent events carry the message.
    api.chat_join(&mine).await.unwrap();
    let mut events = api.chat_events(&mine).await.unwrap();
    let m = api.chat_send(&mine, "hello").await.unwrap();
    assert_eq!((m.seq, m.sender.as_str()), (1, me.as_str()));
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
        .unwrap();
    assert!(
        matches!(&ev, ChatEvent::Message(x) if x.text == "hello"),
        "{ev:?}"
    );
    assert_eq!(api.chat(&mine).await.unwrap().messages.len(), 1);
    // 400: too long, a control character, nothing but spaces.
    for bad in ["x".repeat(501), "a\u{7}b".into(), "   ".into()] {
        let e = api.chat_send(&mine, &bad).await.unwrap_err().to_string();
        assert!(e.contains("400") && e.contains("chat.text"), "{e}");
    }

    // In another creator's chat this node's key is a viewer's, new here:
    // 10 messages per 30 s, then 429 with the rule; refused messages
    // spend no counter.
    let mut last = 0;
    let mut limited = None;
    for i in 0..12 {
        match api.chat_send(&theirs, &format!("m{i}")).await {
            Ok(m) => last = m.seq,
            Err(e) => {
                limited = Some(e.to_string());
                break;
            }
        }
    }
    let limited = limited.expect("rate limited");
    assert!(
        limited.contains("429") && limited.contains("rate limit"),
        "{limited}"
    );
    assert_eq!(last, 10);
    // 403: moderating a chat whose creator named it no moderator.
    let e = api
        .chat_moderate(&theirs, &ChatModerate::SlowMode { secs: 5 })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("403") && e.contains("neither the creator nor a moderator"),
        "{e}"
    );
    // 400: a key that is not one, a timeout over two weeks.
    let e = api
        .chat_moderate(
            &mine,
            &ChatModerate::Ban {
                target: "zz".into(),
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("400") && e.contains("hex"), "{e}");
    let e = api
        .chat_moderate(
            &mine,
            &ChatModerate::Timeout {
                target: "22".repeat(32),
                secs: 2_000_000,
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("400") && e.contains("mod.timeout"), "{e}");
    // The creator bans a key in its own chat: in force, listed.
    let a = api
        .chat_moderate(
            &mine,
            &ChatModerate::Ban {
                target: "22".repeat(32),
            },
        )
        .await
        .unwrap();
    assert_eq!(api.chat(&mine).await.unwrap().actions, vec![a]);
    // A page of another origin can neither send nor join.
    let client = vilokanam_api::reqwest::Client::new();
    for path in ["chat", "chat/join"] {
        let r = client
            .post(api.url(&format!("/api/v0/streams/{mine}/{path}")))
            .header(header::ORIGIN, "https://evil.example")
            .json(&ChatSend { text: "x".into() })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
    }
    drop(events);
    n.stop().await;
}

/// Every profile, follow, avatar, feed and search endpoint with its
/// refusals: 400 for malformed keys and fields, for garbage as an avatar
/// and for an avatar not held here, 413 for an oversized one, 404 for a
/// profile nobody published, 400 for following oneself; what is accepted
/// reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_endpoints_refuse_with_precise_status_codes() {
    use vilokanam_api::ProfileSet;
    let n = Running::start(config()).await;
    let api = &n.api;
    let me = api.id().await.unwrap().creator_key;
    let other = "22".repeat(32);
    // No profile yet: 404, for this node's user and for a stranger.
    for path in [
        "/api/v0/profile".to_string(),
        format!("/api/v0/profiles/{other}"),
    ] {
        let (code, body) = api.raw(Method::GET, &path, vec![]).await.unwrap();
        assert_eq!(code, 404, "{path}: {body}");
    }
    // Malformed keys: 400.
    for path in [
        "/api/v0/profiles/nothex",
        "/api/v0/users/abc/follows",
        "/api/v0/users/abc/followers",
    ] {
        let (code, body) = api.raw(Method::GET, path, vec![]).await.unwrap();
        assert_eq!(code, 400, "{path}: {body}");
    }
    let (code, _) = api
        .raw(Method::POST, "/api/v0/follows/xyz", vec![])
        .await
        .unwrap();
    assert_eq!(code, 400);
    // Bad profile fields: 400 with the field.
    for (set, what) in [
        (
            ProfileSet {
                name: " ".into(),
                ..ProfileSet::default()
            },
            "profile.name",
        ),
        (
            ProfileSet {
                name: "x".repeat(51),
                ..ProfileSet::default()
            },
            "profile.name",
        ),
        (
            ProfileSet {
                name: "ok".into(),
                bio: "b\u{7}".into(),
                ..ProfileSet::default()
            },
            "profile.bio",
        ),
        (
            ProfileSet {
                name: "ok".into(),
                avatar: Some("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into()),
                ..ProfileSet::default()
            },
            "not held",
        ),
    ] {
        let e = api.set_profile(&set).await.unwrap_err().to_string();
        assert!(e.contains("400") && e.contains(what), "{what}: {e}");
    }
    // Avatars: garbage 400, oversized 413, a PNG accepted and read back.
    let (code, body) = api
        .raw(Method::POST, "/api/v0/avatar", b"GIF00 not really".to_vec())
        .await
        .unwrap();
    assert_eq!(code, 400, "{body}");
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    big.resize(2 << 20, 0);
    let (code, _) = api.raw(Method::POST, "/api/v0/avatar", big).await.unwrap();
    assert_eq!(code, 413);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[1; 300 * 1024]);
    let a = api.add_avatar(png.clone()).await.unwrap();
    assert_eq!(
        (a.bytes, a.content_type.as_str()),
        (png.len() as u64, "image/png")
    );
    assert_eq!(api.avatar(&a.cid).await.unwrap(), png);
    let p = api
        .set_profile(&ProfileSet {
            name: "Me".into(),
            bio: "two\nlines".into(),
            avatar: Some(a.cid.clone()),
        })
        .await
        .unwrap();
    assert_eq!((p.creator.as_str(), p.name.as_str()), (me.as_str(), "Me"));
    let again = api
        .set_profile(&ProfileSet {
            name: "Me again".into(),
            ..ProfileSet::default()
        })
        .await
        .unwrap();
    assert!(again.version > p.version, "versions must grow");
    assert_eq!(api.profile_of(&me).await.unwrap().name, "Me again");
    // Follows: self refused, others counted; unfollow removes.
    let e = api.follow(&me, true).await.unwrap_err().to_string();
    assert!(e.contains("400") && e.contains("itself"), "{e}");
    let f = api.follow(&other, true).await.unwrap();
    assert!(f.follow);
    assert_eq!(api.follows(None).await.unwrap().following.len(), 1);
    assert_eq!(api.followers(&other).await.unwrap().count, 1);
    api.follow(&other, false).await.unwrap();
    let v = api.follows(None).await.unwrap();
    assert_eq!((v.following.len(), v.operations), (0, 1));
    assert_eq!(api.followers(&other).await.unwrap().count, 0);
    // Feed and search answer on an empty node.
    assert!(api.feed().await.unwrap().live.is_empty());
    let r = api.search(Some("anything"), None, 5).await.unwrap();
    assert!(r.hits.is_empty());
    let (code, _) = api
        .raw(
            Method::GET,
            &format!("/api/v0/search?q={}", "x".repeat(300)),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(code, 400);
}
