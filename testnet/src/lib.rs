//! Local multi-node Vilokanam testnets.
//!
//! A [`Testnet`] starts real `vilokanam daemon` processes on loopback, each
//! with its own data directory, wires them into a topology through
//! `--bootstrap`, and gives typed access to every node's HTTP API. Tests,
//! benchmarks and `vilokanam testnet` all use it. Every process it starts
//! is stopped by its PID when the testnet is shut down or dropped.
//!
//! [`chain::DevChain`] runs the settlement chain (our runtime's wasm under
//! chopsticks) on loopback for tests and `scripts/dev-chain.sh`.

pub mod chain;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A 6 s, 1 s-GOP H.264/AAC MPEG-TS clip shipped for machines without ffmpeg.
pub const FIXTURE: &[u8] = include_bytes!("../fixtures/sample.ts");

/// One running daemon.
#[derive(Debug)]
pub struct Node {
    /// Position in the testnet.
    pub index: usize,
    /// OS process id.
    pub pid: u32,
    /// API address (`127.0.0.1:port`).
    pub api_addr: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Full listen multiaddrs (with `/p2p/`).
    pub addrs: Vec<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    child: Child,
}

impl Node {
    /// Client of this node's API.
    pub fn api(&self) -> Api {
        Api::new(&self.api_addr)
    }

    /// The TCP listen address (for bootstrapping others).
    pub fn tcp_addr(&self) -> Option<&str> {
        self.addrs
            .iter()
            .map(String::as_str)
            .find(|a| a.contains("/tcp/"))
    }

    /// The QUIC listen address, if the node listens on QUIC.
    pub fn quic_addr(&self) -> Option<&str> {
        self.addrs
            .iter()
            .map(String::as_str)
            .find(|a| a.contains("/quic-v1"))
    }
}

/// How to start one daemon.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Relay every announced stream (`--relay`).
    pub relay: bool,
    /// Allow Kademlia discovery (off: only the bootstrap links exist).
    pub discovery: bool,
    /// Indices of already-running nodes to bootstrap to.
    pub bootstrap: Vec<usize>,
    /// Also listen on QUIC.
    pub quic: bool,
    /// Listen and dial on QUIC only (no TCP).
    pub quic_only: bool,
    /// Extra daemon flags.
    pub extra: Vec<String>,
}

/// A set of daemon processes on loopback.
pub struct Testnet {
    bin: PathBuf,
    root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Nodes by index; `None` once killed or stopped.
    pub nodes: Vec<Option<Node>>,
    helpers: Vec<Child>,
}

#[derive(Deserialize)]
struct Ready {
    api: String,
    peer_id: String,
    listen: Vec<String>,
}

fn signal(pid: u32, sig: &str) {
    // `kill` by PID: no unsafe code, no extra dependency.
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

impl Testnet {
    /// An empty testnet whose nodes run `bin`; data under `dir` or a
    /// temporary directory removed on drop.
    pub fn new(bin: impl Into<PathBuf>, dir: Option<PathBuf>) -> Result<Self> {
        let (root, tmp) = match dir {
            Some(d) => {
                std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
                (d, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("vilokanam-testnet-")
                    .tempdir()?;
                (t.path().to_owned(), Some(t))
            }
        };
        Ok(Testnet {
            bin: bin.into(),
            root,
            _tmp: tmp,
            nodes: vec![],
            helpers: vec![],
        })
    }

    /// The directory holding node data and logs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The binary nodes run.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A running node.
    pub fn node(&self, i: usize) -> Result<&Node> {
        self.nodes
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("node {i} is not running"))
    }

    /// API client of node `i`.
    pub fn api(&self, i: usize) -> Result<Api> {
        Ok(self.node(i)?.api())
    }

    /// Starts one daemon and waits for its ready line.
    pub async fn spawn(&mut self, opts: NodeOptions) -> Result<usize> {
        let index = self.nodes.len();
        let data_dir = self.root.join(format!("node{index}"));
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::File::create(data_dir.join("daemon.log"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("daemon")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--api", "127.0.0.1:0"])
            .args(["--announce-secs", "2"]);
        if !opts.quic_only {
            cmd.args(["--listen", "/ip4/127.0.0.1/tcp/0"]);
        }
        if opts.quic || opts.quic_only {
            cmd.args(["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"]);
        }
        if opts.relay {
            cmd.arg("--relay");
        }
        if !opts.discovery {
            cmd.arg("--no-discovery");
        }
        for b in &opts.bootstrap {
            let target = self.node(*b)?;
            let addr = if opts.quic_only {
                target.quic_addr()
            } else {
                target.tcp_addr()
            };
            let addr = addr
                .ok_or_else(|| anyhow!("node {b} has no address for this transport"))?
                .to_owned();
            cmd.args(["--bootstrap", &addr]);
        }
        cmd.args(&opts.extra)
            .env(
                "RUST_LOG",
                std::env::var("VILOKANAM_TESTNET_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let pid = child.id().context("daemon exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready: Ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Ok(r) = serde_json::from_str::<Ready>(&line) {
                    return Ok(r);
                }
            }
            bail!(
                "node {index} exited before it was ready; see {}",
                data_dir.join("daemon.log").display()
            )
        })
        .await
        .with_context(|| format!("node {index} not ready within 30 s"))??;
        self.nodes.push(Some(Node {
            index,
            pid,
            api_addr: ready.api,
            peer_id: ready.peer_id,
            addrs: ready.listen,
            data_dir,
            child,
        }));
        Ok(index)
    }

    /// `n` nodes in a line, each linked only to its predecessor: node 0
    /// is `n - 1` hops from node `n - 1`. Every node relays.
    pub async fn line(bin: impl Into<PathBuf>, n: usize) -> Result<Self> {
        let mut t = Testnet::new(bin, None)?;
        for i in 0..n {
            t.spawn(NodeOptions {
                relay: true,
                bootstrap: if i == 0 { vec![] } else { vec![i - 1] },
                ..NodeOptions::default()
            })
            .await?;
        }
        t.wait_connected().await?;
        Ok(t)
    }

    /// Waits until every running node has at least one peer.
    pub async fn wait_connected(&self) -> Result<()> {
        for node in self.nodes.iter().flatten() {
            let api = node.api();
            wait_until(
                &format!("node {} connected", node.index),
                Duration::from_secs(20),
                || async { Ok(!api.peers().await?.is_empty()) },
            )
            .await?;
        }
        Ok(())
    }

    /// Kills node `i` at once (SIGKILL by PID), as a crash would.
    pub async fn kill(&mut self, i: usize) -> Result<()> {
        let mut node = self
            .nodes
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        signal(node.pid, "-KILL");
        let _ = node.child.wait().await;
        Ok(())
    }

    /// Stops node `i` gracefully (SIGTERM by PID), waiting up to 10 s.
    pub async fn stop(&mut self, i: usize) -> Result<()> {
        let Some(mut node) = self.nodes.get_mut(i).and_then(Option::take) else {
            return Ok(());
        };
        signal(node.pid, "-TERM");
        if tokio::time::timeout(Duration::from_secs(10), node.child.wait())
            .await
            .is_err()
        {
            signal(node.pid, "-KILL");
            let _ = node.child.wait().await;
            bail!("node {i} did not stop within 10 s of SIGTERM");
        }
        Ok(())
    }

    /// Starts `vilokanam publish` against node `i` with `args` (after
    /// `--api`); its stdout (JSON lines) is piped.
    pub fn publish(&mut self, i: usize, args: &[&str], stdin: Stdio) -> Result<Child> {
        let api = self.node(i)?.api_addr.clone();
        let child = Command::new(&self.bin)
            .arg("publish")
            .args(["--api", &api])
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting vilokanam publish")?;
        Ok(child)
    }

    /// Keeps a helper process (e.g. ffmpeg) to stop with the testnet.
    pub fn adopt(&mut self, child: Child) {
        self.helpers.push(child);
    }

    /// Stops every node and helper (SIGTERM, then SIGKILL).
    pub async fn shutdown(&mut self) -> Result<()> {
        for mut h in self.helpers.drain(..) {
            if let Some(pid) = h.id() {
                signal(pid, "-TERM");
            }
            if tokio::time::timeout(Duration::from_secs(5), h.wait())
                .await
                .is_err()
            {
                let _ = h.kill().await;
            }
        }
        let mut errors = vec![];
        for i in 0..self.nodes.len() {
            if let Err(e) = self.stop(i).await {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("{}", errors.join("; "))
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for h in &self.helpers {
            if let Some(pid) = h.id() {
                signal(pid, "-KILL");
            }
        }
        for n in self.nodes.iter().flatten() {
            signal(n.pid, "-KILL");
        }
    }
}

/// A chunk as listed by `/streams/{id}/chunks`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ChunkInfo {
    /// Sequence number.
    pub seq: u64,
    /// Payload CID.
    pub cid: String,
    /// Payload size.
    pub size: u32,
    /// Duration (µs).
    pub duration_us: u32,
    /// Creator's publication time (unix ms).
    pub published_at_ms: u64,
    /// When it became playable on the node (unix ms).
    pub ready_at_ms: u64,
}

/// Typed client of one daemon's HTTP API.
#[derive(Clone, Debug)]
pub struct Api {
    /// `http://host:port`.
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    /// Client of `addr` (`host:port`).
    pub fn new(addr: &str) -> Self {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        if !r.status().is_success() {
            bail!("GET {path}: {}", r.status());
        }
        Ok(r.json().await?)
    }

    /// `/api/v0/id`.
    pub async fn id(&self) -> Result<serde_json::Value> {
        self.get_json("/api/v0/id").await
    }

    /// Connected peers with scores.
    pub async fn peers(&self) -> Result<Vec<serde_json::Value>> {
        self.get_json("/api/v0/peers").await
    }

    /// Known streams.
    pub async fn streams(&self) -> Result<Vec<serde_json::Value>> {
        self.get_json("/api/v0/streams").await
    }

    /// Chunks held for `stream`.
    pub async fn chunks(&self, stream: &str) -> Result<Vec<ChunkInfo>> {
        self.get_json(&format!("/streams/{stream}/chunks")).await
    }

    /// Follows `stream`; returns the playlist URL.
    pub async fn watch(&self, stream: &str) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v0/watch/{stream}", self.base))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("watch {stream}: {}", r.status());
        }
        let v: serde_json::Value = r.json().await?;
        Ok(format!(
            "{}{}",
            self.base,
            v["playlist"].as_str().unwrap_or_default()
        ))
    }

    /// Playlist URL of `stream` on this node.
    pub fn playlist_url(&self, stream: &str) -> String {
        format!("{}/streams/{stream}/live.m3u8", self.base)
    }

    /// The live playlist text.
    pub async fn playlist(&self, stream: &str) -> Result<String> {
        let r = self.http.get(self.playlist_url(stream)).send().await?;
        if !r.status().is_success() {
            bail!("playlist {stream}: {}", r.status());
        }
        Ok(r.text().await?)
    }

    /// One segment's bytes, if held.
    pub async fn segment(&self, stream: &str, seq: u64) -> Result<Option<Vec<u8>>> {
        let r = self
            .http
            .get(format!("{}/streams/{stream}/{seq}.ts", self.base))
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            bail!("segment {seq}: {}", r.status());
        }
        Ok(Some(r.bytes().await?.to_vec()))
    }

    /// Raw POST (for error-path tests).
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<(u16, String)> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// Sum of every sample of a Prometheus metric whose name starts with
    /// `name` and whose labels contain all of `labels`.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(sum_metric(&text, name, labels))
    }
}

/// Sums samples of `name` (prefix match on the sample name) whose label
/// text contains every string in `labels`.
pub fn sum_metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `cond` every 50 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match cond().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            let why = last_err
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            bail!("timed out after {timeout:?} waiting for {what}{why}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `ffmpeg` (and `ffprobe`) are on PATH.
pub fn ffmpeg_available() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|b| {
        std::process::Command::new(b)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Writes an H.264/AAC MPEG-TS test signal of `seconds` at about `kbps`
/// with exact 1 s GOPs (ffmpeg lavfi sources), or copies the shipped
/// fixture when ffmpeg is missing. Returns whether ffmpeg made it.
pub fn make_test_clip(path: &Path, seconds: u32, kbps: u32, size: &str) -> Result<bool> {
    if !ffmpeg_available() {
        std::fs::write(path, FIXTURE)?;
        return Ok(false);
    }
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args([
            "-b:v",
            &format!("{kbps}k"),
            "-minrate",
            &format!("{kbps}k"),
            "-maxrate",
            &format!("{kbps}k"),
        ])
        .args([
            "-bufsize",
            &format!("{}k", kbps / 2),
            "-x264-params",
            "nal-hrd=cbr",
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "mpegts"])
        .arg(path)
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg failed to make a test clip: {status}");
    }
    Ok(true)
}

/// Reads `vilokanam publish` stdout until its `started` line; returns the
/// stream id.
pub async fn stream_id_of(publish: &mut Child) -> Result<String> {
    let stdout = publish.stdout.take().context("publish stdout not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let id = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["event"] == "started" {
                    return Ok(v["stream"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        bail!("publish ended before the stream started")
    })
    .await
    .context("publish did not start a stream within 30 s")??;
    // Keep draining so the publisher never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(id)
}

/// Options of [`run_interactive`].
pub struct InteractiveOptions {
    /// The vilokanam binary.
    pub bin: PathBuf,
    /// Number of nodes (≥ 2).
    pub nodes: usize,
    /// Generate a live test signal with ffmpeg when installed.
    pub use_ffmpeg: bool,
    /// Data directory (default: temporary).
    pub dir: Option<PathBuf>,
}

/// `vilokanam testnet`: starts the nodes, streams a test signal from node 0,
/// prints the playback URL on the last node, reports progress until Ctrl-C.
pub async fn run_interactive(opts: InteractiveOptions) -> Result<()> {
    let n = opts.nodes.max(2);
    let mut t = Testnet::new(&opts.bin, opts.dir)?;
    println!("starting {n} nodes in {}", t.root().display());
    for i in 0..n {
        // A chain of bootstrap links plus Kademlia discovery: the nodes end
        // up in one mesh.
        let bootstrap = if i == 0 { vec![] } else { vec![i - 1] };
        t.spawn(NodeOptions {
            relay: true,
            discovery: true,
            quic: true,
            bootstrap,
            ..NodeOptions::default()
        })
        .await?;
        let node = t.node(i)?;
        println!(
            "  node {i}: peer {} api http://{}",
            node.peer_id, node.api_addr
        );
    }
    t.wait_connected().await?;

    let use_ffmpeg = opts.use_ffmpeg && ffmpeg_available();
    let mut publish = if use_ffmpeg {
        println!("source: ffmpeg test signal (testsrc2 640x360 30 fps, 1 s GOP, 1.5 Mbit/s), live");
        let mut ffmpeg = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-pix_fmt",
                "yuv420p",
            ])
            .args([
                "-g",
                "30",
                "-keyint_min",
                "30",
                "-sc_threshold",
                "0",
                "-b:v",
                "1500k",
            ])
            .args(["-c:a", "aac", "-b:a", "96k", "-f", "mpegts", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting ffmpeg")?;
        let out: Stdio = ffmpeg
            .stdout
            .take()
            .context("ffmpeg stdout")?
            .try_into()
            .context("piping ffmpeg into publish")?;
        t.adopt(ffmpeg);
        t.publish(
            0,
            &[
                "--name",
                "testnet",
                "--title",
                "Vilokanam testnet",
                "--input",
                "-",
            ],
            out,
        )?
    } else {
        let clip = t.root().join("sample.ts");
        std::fs::write(&clip, FIXTURE)?;
        println!(
            "source: shipped 6 s fixture, looped in real time (install ffmpeg for a live signal)"
        );
        let clip = clip.to_string_lossy().into_owned();
        t.publish(
            0,
            &[
                "--name",
                "testnet",
                "--title",
                "Vilokanam testnet",
                "--input",
                &clip,
                "--realtime",
                "--loop",
            ],
            Stdio::null(),
        )?
    };
    let stream = stream_id_of(&mut publish).await?;
    let viewer = n - 1;
    let api = t.api(viewer)?;
    let url = api.watch(&stream).await?;
    wait_until(
        "first segment at the viewer",
        Duration::from_secs(30),
        || async { Ok(!api.chunks(&stream).await?.is_empty()) },
    )
    .await?;
    println!();
    println!("stream {stream} is live on node {viewer}. Play it with any of:");
    println!("  mpv {url}");
    println!("  vlc {url}");
    println!("  ffplay {url}");
    println!("(Ctrl-C stops the testnet)");
    let mut status = tokio::time::interval(Duration::from_secs(5));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = status.tick() => {
                if let Ok(chunks) = api.chunks(&stream).await {
                    if let Some(c) = chunks.last() {
                        let peers = api.peers().await.map(|p| p.len()).unwrap_or(0);
                        println!(
                            "viewer: chunk #{} ({} KiB), publish-to-playable {} ms, {peers} peers",
                            c.seq,
                            c.size / 1024,
                            c.ready_at_ms.saturating_sub(c.published_at_ms)
                        );
                    }
                }
            }
            r = publish.wait() => {
                println!("publisher exited: {r:?}");
                break;
            }
        }
    }
    println!("stopping the testnet");
    if let Some(pid) = publish.id() {
        signal(pid, "-TERM");
    }
    let _ = publish.wait().await;
    t.shutdown().await
}
