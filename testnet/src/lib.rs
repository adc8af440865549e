//! Local multi-node Vilokanam testnets.
//!
//! A [`Testnet`] starts real `vilokanam daemon` processes on loopback, each
//! with its own data directory, wires them into a topology through
//! `--bootstrap`, and gives typed access to every node's HTTP API. Tests,
//! benchmarks and `vilokanam testnet` all use it. Every process it starts
//! is stopped by its PID when the testnet is shut down or dropped.
//!
//! Nodes are driven through the one API client, [`vilokanam_api::ApiClient`],
//! and found through the daemon's typed stdout events
//! ([`vilokanam_api::OutputEvent`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
pub use vilokanam_api::{ApiClient as Api, ChunkInfo, OutputEvent};

pub mod bench;
pub mod browser;
pub use browser::{BrowserPlayer, PlayReport};

/// A 6 s, 1 s-GOP H.264/AAC MPEG-TS clip shipped for machines without ffmpeg.
pub const FIXTURE: &[u8] = vilokanam_media::fixtures::SAMPLE_TS;

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
    /// Creator key (hex): the node's streams are `<creator_key>-<name>`.
    pub creator_key: String,
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

    /// The id of this node's stream `name`.
    pub fn stream(&self, name: &str) -> String {
        format!("{}-{name}", self.creator_key)
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
        let node = self.launch(index, &opts).await?;
        self.nodes.push(Some(node));
        Ok(index)
    }

    /// Starts node `i` again from its data directory (after [`Testnet::kill`]
    /// or [`Testnet::stop`]): same keys and store, new ports.
    pub async fn restart(&mut self, i: usize, opts: NodeOptions) -> Result<()> {
        if self.nodes.get(i).is_none_or(Option::is_some) {
            bail!("node {i} does not exist or is still running");
        }
        let node = self.launch(i, &opts).await?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    async fn launch(&mut self, index: usize, opts: &NodeOptions) -> Result<Node> {
        let data_dir = self.root.join(format!("node{index}"));
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("daemon.log"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("daemon")
            .arg("--exit-with-parent")
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
            // Its own process group: Ctrl-C in the terminal reaches only
            // the testnet, which stops the nodes in order (a viewer hands
            // its last voucher over before its creator settles).
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let pid = child.id().context("daemon exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(OutputEvent::Ready {
                    api,
                    peer_id,
                    creator_key,
                    listen,
                }) = OutputEvent::parse(&line)
                {
                    return Ok((api, peer_id, creator_key, listen));
                }
            }
            bail!(
                "node {index} exited before it was ready; see {}",
                data_dir.join("daemon.log").display()
            )
        })
        .await
        .with_context(|| format!("node {index} not ready within 30 s"))??;
        let (api_addr, peer_id, creator_key, addrs) = ready;
        // Keep draining stdout so the daemon never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Node {
            index,
            pid,
            api_addr,
            peer_id,
            creator_key,
            addrs,
            data_dir,
            child,
        })
    }

    /// Imports the chain account `uri` (a dev URI such as `//Alice`, or a
    /// seed phrase) into node `i`'s data directory, before the node starts
    /// (a daemon reads its account when it starts).
    pub async fn import_account(&self, i: usize, uri: &str, chain_rpc: &str) -> Result<()> {
        let dir = self.root.join(format!("node{i}"));
        std::fs::create_dir_all(&dir)?;
        let out = Command::new(&self.bin)
            .args(["account", "import", uri, "--data-dir"])
            .arg(&dir)
            .args(["--chain-rpc", chain_rpc])
            .env("RUST_LOG", "warn")
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "importing {uri} for node {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `n` nodes in a line, each linked only to its predecessor: node 0
    /// is `n - 1` hops from node `n - 1`. Every node relays.
    pub async fn line(bin: impl Into<PathBuf>, n: usize) -> Result<Self> {
        Self::line_with(bin, n, &[]).await
    }

    /// [`Testnet::line`] with `extra` daemon flags on every node.
    pub async fn line_with(bin: impl Into<PathBuf>, n: usize, extra: &[&str]) -> Result<Self> {
        let mut t = Testnet::new(bin, None)?;
        for i in 0..n {
            t.spawn(NodeOptions {
                relay: true,
                bootstrap: if i == 0 { vec![] } else { vec![i - 1] },
                extra: extra.iter().map(|s| s.to_string()).collect(),
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
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting vilokanam publish")?;
        Ok(child)
    }

    /// Publishes the shipped fixture, looped in real time, from node `i`
    /// as the paid stream `paid` at `price` (e.g. `"1mTICK/s"`) with
    /// `epoch_secs` epochs, paid on the chain at `rpc` (the publisher reads
    /// the genesis hash and payout account from it and the node's dir).
    pub fn publish_paid(
        &mut self,
        i: usize,
        price: &str,
        epoch_secs: u32,
        rpc: &str,
    ) -> Result<Child> {
        let clip = self.root.join("sample.ts");
        std::fs::write(&clip, FIXTURE)?;
        let clip = clip.to_string_lossy().into_owned();
        let dir = self.node(i)?.data_dir.to_string_lossy().into_owned();
        let epoch = epoch_secs.to_string();
        self.publish(
            i,
            &[
                "--name",
                "paid",
                "--input",
                &clip,
                "--realtime",
                "--loop",
                "--price",
                price,
                "--epoch-secs",
                &epoch,
                "--data-dir",
                &dir,
                "--chain-rpc",
                rpc,
            ],
            Stdio::null(),
        )
    }

    /// Starts ffmpeg making a live test signal (testsrc2 640x360 at 30 fps,
    /// x264 `zerolatency` with 1 s GOPs at 1.5 Mbit/s, a 440 Hz AAC tone)
    /// in real time, as an encoder set up for low latency would send it:
    /// every packet flushed at once, audio in small PES. Returns its
    /// stdout to pipe into `vilokanam publish --input -`; the process
    /// stops with the testnet.
    pub fn live_signal(&mut self) -> Result<Stdio> {
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
            ])
            .args(["-pix_fmt", "yuv420p", "-g", "30", "-keyint_min", "30"])
            .args(["-sc_threshold", "0", "-b:v", "1500k"])
            .args(["-c:a", "aac", "-b:a", "96k"])
            // Low latency out of the muxer: no 0.7 s mux delay, audio PES
            // of one frame, every packet written at once.
            .args([
                "-muxdelay",
                "0",
                "-muxpreload",
                "0",
                "-pes_payload_size",
                "0",
            ])
            .args(["-flush_packets", "1", "-f", "mpegts", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting ffmpeg")?;
        let out: Stdio = ffmpeg
            .stdout
            .take()
            .context("ffmpeg stdout")?
            .try_into()
            .context("piping ffmpeg into publish")?;
        self.adopt(ffmpeg);
        Ok(out)
    }

    /// Keeps a helper process (e.g. ffmpeg) to stop with the testnet.
    pub fn adopt(&mut self, child: Child) {
        self.helpers.push(child);
    }

    /// Stops every node and helper (SIGTERM, then SIGKILL).
    pub async fn shutdown(&mut self) -> Result<()> {
        self.stop_helpers().await;
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

    /// Stops the helpers (SIGTERM, then SIGKILL after 5 s): before the
    /// publisher they feed, so that ffmpeg does not report a broken pipe.
    pub async fn stop_helpers(&mut self) {
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

/// Whether `api`'s node sees at least `want` peers subscribed to `topic`
/// (a chat's neighbours, say).
pub async fn peers_on(api: &Api, topic: &str, want: usize) -> Result<bool> {
    let peers = api.peers().await?;
    Ok(peers
        .iter()
        .filter(|p| p.topics.contains(&topic.to_string()))
        .count()
        >= want)
}

/// Joins every node of a line (`apis` in line order) to `stream`'s chat
/// and waits until each sees its neighbours in it (one at the ends, two
/// in between).
pub async fn join_chat_line(apis: &[Api], stream: &str) -> Result<()> {
    let topic = format!("/vilokanam/chat/1/{stream}");
    for api in apis {
        api.chat_join(stream).await?;
    }
    let last = apis.len().saturating_sub(1);
    for (i, api) in apis.iter().enumerate() {
        let want = if i == 0 || i == last { 1 } else { 2 };
        let (api, topic) = (api.clone(), topic.clone());
        wait_until(
            &format!("node {i}'s neighbours in the chat"),
            Duration::from_secs(30),
            move || {
                let (api, topic) = (api.clone(), topic.clone());
                async move { peers_on(&api, &topic, want).await }
            },
        )
        .await?;
    }
    Ok(())
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
            if let Some(OutputEvent::Started { stream, .. }) = OutputEvent::parse(&line) {
                return Ok(stream);
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
    /// Stop after this long (default: until Ctrl-C). With a duration the
    /// run fails if the viewer stalls while the creator keeps publishing.
    pub duration: Option<Duration>,
    /// Stream for free, with no chain (default: start the dev chain and
    /// publish a paid stream that the viewer pays for).
    pub free: bool,
}

/// The paid stream's terms in the testnet: the price, the viewer's budget
/// and the ceiling of its top-ups (planck; 1 TICK = 10¹² planck).
const PRICE: &str = "200µTICK/s";
const BUDGET: u128 = 500_000_000_000;
const TOP_UP_TO: u128 = 2_000_000_000_000;
/// The dev accounts of the creator (payee) and the viewer (payer).
const CREATOR_ACCOUNT: &str = "//Alice";
const VIEWER_ACCOUNT: &str = "//Bob";
/// The relays' dev accounts (the chain funds these six at genesis), so a
/// paid testnet of up to six nodes runs a bandwidth market: every relay
/// charges a fee per MiB it serves and pays its upstream.
const RELAY_ACCOUNTS: [&str; 4] = ["//Charlie", "//Dave", "//Eve", "//Ferdie"];
/// What the creator and each relay charge per MiB served, and the most
/// any node of the testnet pays. At the ffmpeg signal's ~0.2 MiB/s a
/// relay at 2 mTICK/MiB earns about twice what the creator's price brings.
const CREATOR_FEE: &str = "0.5mTICK/MiB";
const RELAY_FEES: [&str; 4] = ["2mTICK/MiB", "3mTICK/MiB", "2.5mTICK/MiB", "4mTICK/MiB"];
const MAX_FEE: &str = "5mTICK/MiB";

/// The dev chain of a paid testnet, and the accounts it settles between.
struct PaidTestnet {
    chain: vilokanam_chain::dev_chain::DevChain,
    client: vilokanam_chain::Settlement,
    creator: vilokanam_chain::AccountId,
    viewer: vilokanam_chain::AccountId,
    before: (u128, u128),
    /// The relays that charge for bandwidth: node index, dev URI, account
    /// and balance before (empty when the testnet has more relays than
    /// funded dev accounts).
    relays: Vec<(usize, &'static str, vilokanam_chain::AccountId, u128)>,
}

impl PaidTestnet {
    /// Installs chopsticks if needed, starts the dev chain from the shipped
    /// spec and imports the dev accounts into the creator's and viewer's
    /// data directories (before their daemons start: they read them then).
    async fn start(t: &Testnet, viewer: usize) -> Result<Self> {
        // Nodes between the creator and the viewer are relays; each needs
        // a funded account to charge and to pay its upstream.
        let relay_uris: Vec<(usize, &'static str)> = if viewer - 1 <= RELAY_ACCOUNTS.len() {
            (1..viewer).zip(RELAY_ACCOUNTS).collect()
        } else {
            println!(
                "{} relays but {} funded dev accounts for them: bandwidth fees are off (run 6 nodes or fewer for relay fees)",
                viewer - 1,
                RELAY_ACCOUNTS.len()
            );
            vec![]
        };
        let parts = vilokanam_chain::dev_chain::DevChainParts::for_testnet(t.root()).await?;
        println!("starting the dev chain (chopsticks executing our runtime's wasm)");
        let chain = vilokanam_chain::dev_chain::DevChain::start(&parts).await?;
        let client = vilokanam_chain::Settlement::connect(&vilokanam_chain::Endpoint::Rpc(
            chain.ws_url.clone(),
        ))
        .await
        .context("connecting to the dev chain")?;
        let mut imports = vec![(0, CREATOR_ACCOUNT), (viewer, VIEWER_ACCOUNT)];
        imports.extend(relay_uris.iter().copied());
        for (i, uri) in imports {
            t.import_account(i, uri, &chain.ws_url).await?;
        }
        let id = |uri| -> Result<vilokanam_chain::AccountId> {
            Ok(vilokanam_chain::account::account_id(
                &vilokanam_chain::account::keypair(uri)?,
            ))
        };
        let (creator, viewer) = (id(CREATOR_ACCOUNT)?, id(VIEWER_ACCOUNT)?);
        let before = (
            client.balance(&creator).await?.free,
            client.balance(&viewer).await?.free,
        );
        println!(
            "dev chain at {}: creator {CREATOR_ACCOUNT} has {}, viewer {VIEWER_ACCOUNT} has {}",
            chain.ws_url,
            vilokanam_chain::format_amount(before.0),
            vilokanam_chain::format_amount(before.1)
        );
        let mut relays = Vec::new();
        for (i, uri) in relay_uris {
            let account = id(uri)?;
            let b = client.balance(&account).await?;
            relays.push((i, uri, account, b.free + b.reserved));
        }
        Ok(PaidTestnet {
            chain,
            client,
            creator,
            viewer,
            before,
            relays,
        })
    }

    /// The bandwidth flags of node `i`: every node with an account pays up
    /// to [`MAX_FEE`]; the creator and the relays also charge.
    fn bandwidth_args(&self, i: usize, viewer: usize) -> Vec<String> {
        if self.relays.is_empty() {
            return vec![];
        }
        let mut args = vec!["--max-fee".to_owned(), MAX_FEE.to_owned()];
        let fee = if i == 0 {
            Some(CREATOR_FEE)
        } else if i == viewer {
            None
        } else {
            self.relays
                .iter()
                .position(|r| r.0 == i)
                .map(|k| RELAY_FEES[k])
        };
        if let Some(f) = fee {
            args.extend(["--fee".to_owned(), f.to_owned()]);
        }
        args
    }

    /// Prints what moved on chain since the start: the creator's gain (what
    /// it claimed less its fees) and the viewer's cost (what it paid plus
    /// its fees; the rest of its deposit came back when the channel closed).
    async fn print_settlement(&self) -> Result<()> {
        let creator = self.client.balance(&self.creator).await?;
        let viewer = self.client.balance(&self.viewer).await?;
        let open = self.client.channels().await?.len();
        let fmt = vilokanam_chain::format_amount;
        let signed = |after: u128, before: u128| {
            if after >= before {
                format!("+{}", fmt(after - before))
            } else {
                format!("-{}", fmt(before - after))
            }
        };
        println!("settled on chain:");
        println!(
            "  creator {CREATOR_ACCOUNT}: {} ({} after its claim fees), {} held",
            fmt(creator.free),
            signed(creator.free, self.before.0),
            fmt(creator.reserved)
        );
        println!(
            "  viewer  {VIEWER_ACCOUNT}: {} ({} with its fees), {} held",
            fmt(viewer.free),
            signed(viewer.free, self.before.1),
            fmt(viewer.reserved)
        );
        for (i, uri, account, before) in &self.relays {
            let b = self.client.balance(account).await?;
            println!(
                "  relay {i} {uri}: {} net (fees claimed, less what its upstream claimed and its transaction fees), {} held in its bandwidth channel",
                signed(b.free + b.reserved, *before),
                fmt(b.reserved)
            );
        }
        let bandwidth = self
            .client
            .channels()
            .await?
            .into_iter()
            .filter(|c| c.max_payees > 1)
            .count();
        let open = open - bandwidth;
        if bandwidth > 0 {
            // Many payees, none named: such a channel is closed once it
            // expires (its payer's node takes back what was not claimed).
            println!(
                "  bandwidth channels: {bandwidth} (each node's deposit for the fees it pays; held until they expire, when the payer's node takes back what its payees did not claim)"
            );
        }
        println!("  open channels: {open}");
        if open > 0 {
            // The creator closes at shutdown; one still open means that
            // failed (its log says why).
            println!(
                "  (the creator could not close the channel, see node0's daemon.log: the viewer's \
                 node takes the rest of its deposit back once the channel expires)"
            );
        }
        Ok(())
    }
}

/// `vilokanam testnet`: starts the nodes, streams a test signal from node 0,
/// prints the playback URL on the last node, reports progress until Ctrl-C.
pub async fn run_interactive(opts: InteractiveOptions) -> Result<()> {
    let n = opts.nodes.max(2);
    let mut t = Testnet::new(&opts.bin, opts.dir)?;
    let viewer = n - 1;
    let paid = if opts.free {
        None
    } else {
        match PaidTestnet::start(&t, viewer).await {
            Ok(p) => Some(p),
            Err(e) => {
                println!("no dev chain, so the stream is free: {e:#}");
                println!("(`vilokanam testnet --free` streams for free without trying)");
                None
            }
        }
    };
    let chain_args: Vec<String> = match &paid {
        Some(p) => vec!["--chain-rpc".into(), p.chain.ws_url.clone()],
        None => vec![],
    };
    let creator_dir = t.root().join("node0").to_string_lossy().into_owned();
    let mut publish_args: Vec<&str> = vec!["--name", "testnet", "--title", "Vilokanam testnet"];
    if paid.is_some() {
        publish_args.extend(["--price", PRICE, "--data-dir", &creator_dir]);
        publish_args.extend(chain_args.iter().map(String::as_str));
    }
    // With relay fees the nodes stay a line (no discovery), so that the
    // viewer's chunks cross every relay and each earns its fee; otherwise
    // a chain of bootstrap links plus Kademlia discovery makes one mesh.
    let fees = paid.as_ref().is_some_and(|p| !p.relays.is_empty());
    println!("starting {n} nodes in {}", t.root().display());
    if fees {
        println!(
            "relay fees: the creator charges {CREATOR_FEE}, relays {} (in line order), every node pays up to {MAX_FEE}; one bandwidth channel per paying node",
            RELAY_FEES[..n - 2].join(", ")
        );
    }
    for i in 0..n {
        let bootstrap = if i == 0 { vec![] } else { vec![i - 1] };
        let mut extra = chain_args.clone();
        if let Some(p) = &paid {
            extra.extend(p.bandwidth_args(i, viewer));
        }
        t.spawn(NodeOptions {
            relay: true,
            discovery: !fees,
            quic: true,
            bootstrap,
            extra,
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

    // Community: the creator signs a profile, the viewer's user follows the
    // creator, and the viewer's feed says when the creator goes live.
    let creator_key = t.api(0)?.id().await?.creator_key;
    t.api(0)?
        .set_profile(&vilokanam_api::ProfileSet {
            name: "Testnet creator".into(),
            bio: "streams the test signal".into(),
            avatar: None,
        })
        .await?;
    t.api(viewer)?.follow(&creator_key, true).await?;
    let mut feed = t.api(viewer)?.feed_events().await?;
    println!("the viewer follows the creator ({creator_key}); its feed waits for the go-live");
    let went_live = Instant::now();

    let use_ffmpeg = opts.use_ffmpeg && ffmpeg_available();
    let mut publish = if use_ffmpeg {
        println!("source: ffmpeg test signal (testsrc2 640x360 30 fps, 1 s GOP, 1.5 Mbit/s), live");
        let out = t.live_signal()?;
        publish_args.extend(["--input", "-"]);
        t.publish(0, &publish_args, out)?
    } else {
        let clip = t.root().join("sample.ts");
        std::fs::write(&clip, FIXTURE)?;
        println!(
            "source: shipped 6 s fixture, looped in real time (install ffmpeg for a live signal)"
        );
        let clip = clip.to_string_lossy().into_owned();
        publish_args.extend(["--input", &clip, "--realtime", "--loop"]);
        t.publish(0, &publish_args, Stdio::null())?
    };
    let stream = stream_id_of(&mut publish).await?;
    let api = t.api(viewer)?;
    {
        use futures::StreamExt;
        match tokio::time::timeout(Duration::from_secs(30), feed.next()).await {
            Ok(Some(Ok(vilokanam_api::FeedEvent::Live(item)))) => println!(
                "feed: the viewer was told {:?} went live with {:?}, {} ms after the publisher started",
                item.name.unwrap_or_default(),
                item.title,
                went_live.elapsed().as_millis()
            ),
            other => {
                let why = format!("the viewer's feed did not announce the go-live: {other:?}");
                if opts.duration.is_some() {
                    bail!(why);
                }
                println!("({why})");
            }
        }
        drop(feed);
    }
    let watch_started = Instant::now();
    let url = if paid.is_some() {
        // The viewer must know the offer (price, payee, chain) to pay.
        wait_until(
            "the viewer hears the offer",
            Duration::from_secs(30),
            || async { Ok(api.stream(&stream).await.is_ok_and(|s| s.offer.is_some())) },
        )
        .await?;
        let url = api
            .watch_with(
                &stream,
                &vilokanam_api::WatchRequest {
                    max_price_per_sec: None,
                    budget: Some(BUDGET.to_string()),
                    top_up_to: Some(TOP_UP_TO.to_string()),
                },
            )
            .await?;
        println!(
            "paid stream: {PRICE} to the creator {CREATOR_ACCOUNT}; the viewer {VIEWER_ACCOUNT} opened a channel with a budget of {} (tops up to {} at most)",
            vilokanam_chain::format_amount(BUDGET),
            vilokanam_chain::format_amount(TOP_UP_TO)
        );
        url
    } else {
        api.watch(&stream).await?
    };
    if paid.is_some() {
        let opened = watch_started.elapsed();
        // The first segment a player can decode: the node paid for it and
        // bought its epoch's key.
        wait_until(
            "the first decrypted segment at the viewer",
            Duration::from_secs(30),
            || async { Ok(first_playable(&api, &stream).await) },
        )
        .await?;
        println!(
            "watch to first decrypted segment: {} ms (the channel's opening on chain: {} ms)",
            watch_started.elapsed().as_millis(),
            opened.as_millis()
        );
    } else {
        wait_until(
            "first segment at the viewer",
            Duration::from_secs(30),
            || async { Ok(!api.chunks(&stream).await?.is_empty()) },
        )
        .await?;
    }
    println!();
    println!("stream {stream} is live on node {viewer}. Play it with any of:");
    println!("  mpv {url}");
    println!("  vlc {url}");
    println!("  ffplay {url}");
    // Chat: the creator greets and the viewer answers, across the relays
    // (each node carries the chat of the streams it follows).
    let host = t.api(0)?;
    if paid.is_some() {
        // Only paying viewers may chat: the viewer's messages carry the
        // pass the creator's key server signed with its keys.
        match host
            .chat_moderate(&stream, &vilokanam_api::ChatModerate::PaidOnly { on: true })
            .await
        {
            Ok(_) => {
                println!("chat: paid-viewers-only (the viewer's messages carry the creator's pass)")
            }
            Err(e) => println!("(chat: {e})"),
        }
    }
    for (who, text) in [
        (&host, "welcome to the Vilokanam testnet"),
        (&api, "hello from the viewer"),
    ] {
        if let Err(e) = who.chat_send(&stream, text).await {
            println!("(chat: {e})");
        }
    }
    println!(
        "Chat in it: vilokanam chat open {stream} --api {}",
        t.node(viewer)?.api_addr
    );
    println!("(Ctrl-C stops the testnet)");
    // The viewer's node pays for what its player fetches: a built-in
    // player keeps it paying while no real player is open (a real one
    // fetches the same segments, which are paid once).
    let player = paid.is_some().then(|| {
        println!("(a built-in player fetches every segment at the viewer, so it pays with no player open)");
        tokio::spawn(play_along(api.clone(), stream.clone()))
    });
    let mut status = tokio::time::interval(Duration::from_secs(5));
    status.tick().await;
    let stop = stop_signal();
    tokio::pin!(stop);
    let until = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let creator = t.api(0)?;
    let mut watch = StallWatch::default();
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = async { tokio::time::sleep_until(until.unwrap_or_else(tokio::time::Instant::now)).await }, if until.is_some() => break,
            _ = status.tick() => {
                let (Ok(chunks), Ok(published)) = (api.chunks(&stream).await, creator.chunks(&stream).await) else {
                    continue;
                };
                let (Some(c), Some(p)) = (chunks.last(), published.last()) else { continue };
                let peers = api.peers().await.map(|p| p.len()).unwrap_or(0);
                let behind = p.seq.saturating_sub(c.seq);
                println!(
                    "viewer: chunk #{} ({} KiB), {behind} behind the creator, publish-to-playable {} ms, {peers} peers",
                    c.seq,
                    c.size / 1024,
                    c.ready_at_ms.saturating_sub(c.published_at_ms)
                );
                if let Ok(info) = api.stream(&stream).await {
                    println!("  {}", info.latency_summary());
                }
                if let Ok(chat) = api.chat(&stream).await {
                    let last = chat.messages.last().map(|m| m.text.as_str()).unwrap_or("");
                    println!("  chat: {} messages at the viewer, last: {last:?}", chat.messages.len());
                }
                if let Some(p) = &paid {
                    println!("  {}", payment_line(&api, &creator, &stream).await);
                    if !p.relays.is_empty() {
                        println!("  {}", relay_line(&t, n).await);
                    }
                }
                if let Some(stalled) = watch.observe(c.seq, p.seq) {
                    println!("STALLED: the viewer has been at chunk #{} for {stalled} status lines while the creator moved to #{}", c.seq, p.seq);
                    if opts.duration.is_some() {
                        outcome = Err(anyhow!("the viewer stalled at chunk #{} while the creator reached #{}", c.seq, p.seq));
                        break;
                    }
                }
            }
            r = publish.wait() => {
                println!("publisher exited: {r:?}");
                break;
            }
        }
    }
    // The creator's greeting crossed the relays to the viewer's chat (a
    // timed run, as the tests run it, fails otherwise).
    if outcome.is_ok() && opts.duration.is_some() {
        let greeted = api.chat(&stream).await.is_ok_and(|c| {
            c.messages
                .iter()
                .any(|m| m.text == "welcome to the Vilokanam testnet")
        });
        if !greeted {
            outcome = Err(anyhow!(
                "the creator's chat message never reached the viewer's chat"
            ));
        }
        // A paid testnet's chat is paid-viewers-only: the paying viewer's
        // answer reached the creator all the same.
        let answered = host
            .chat(&stream)
            .await
            .is_ok_and(|c| c.messages.iter().any(|m| m.text == "hello from the viewer"));
        if outcome.is_ok() && !answered {
            outcome = Err(anyhow!(
                "the viewer's chat answer never reached the creator's chat"
            ));
        }
    }
    println!("stopping the testnet");
    if let Some(player) = &player {
        player.abort();
    }
    // In order: the viewer hands its last voucher over as it stops; the
    // source and the publisher stop; the creator claims what is worth a
    // claim and closes the channel (the rest of the deposit goes back to
    // the viewer); the balances are read; the chain stops last.
    if paid.is_some() {
        println!("  {}", payment_line(&api, &creator, &stream).await);
        println!(
            "settling: stopping the viewer, then the relays, then the creator (each claims what is worth a claim; the creator closes the viewer's channel)"
        );
        t.stop(viewer).await?;
        // Downstream first: each relay pays its upstream for what verified
        // last and claims what its downstream paid it, as it stops.
        if paid.as_ref().is_some_and(|p| !p.relays.is_empty()) {
            println!("  {}", relay_line(&t, n).await);
            for i in (1..viewer).rev() {
                t.stop(i).await?;
            }
        }
    }
    // ffmpeg before the publisher it feeds: no broken-pipe noise.
    t.stop_helpers().await;
    if let Some(pid) = publish.id() {
        signal(pid, "-TERM");
    }
    let _ = publish.wait().await;
    if let Some(p) = &paid {
        t.stop(0).await?;
        if let Err(e) = p.print_settlement().await {
            println!("could not read the balances: {e:#}");
        }
    }
    t.shutdown().await?;
    if let Some(p) = paid {
        p.chain.stop().await?;
    }
    outcome
}

/// Whether the first segment of `stream`'s playlist at the viewer can be
/// read (for a paid stream: paid for and decrypted).
async fn first_playable(viewer: &Api, stream: &str) -> bool {
    let Ok(list) = viewer.playlist(stream).await else {
        return false;
    };
    let Some(seq) = segment_seqs(&list).next() else {
        return false;
    };
    matches!(viewer.segment_file(stream, seq).await, Ok(Some(_)))
}

/// The segment numbers of an HLS playlist of ours (`…/<seq>.ts` lines),
/// in playlist order: what a player would fetch.
pub fn segment_seqs(list: &str) -> impl Iterator<Item = u64> + '_ {
    list.lines().filter_map(|l| {
        l.strip_suffix(".ts")?
            .rsplit('/')
            .next()?
            .parse::<u64>()
            .ok()
    })
}

/// The segments of an HLS media playlist with their `#EXTINF` durations
/// in seconds, in playlist order.
pub fn segment_durations(list: &str) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    let mut duration = None;
    for line in list.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d
                .split(',')
                .next()
                .and_then(|d| d.trim().parse::<f64>().ok());
        } else if let Some(seq) = segment_seqs(line).next() {
            out.push((seq, duration.take().unwrap_or(0.0)));
        }
    }
    out
}

/// Plays `stream` at the viewer as a player would: every second, the
/// playlist, then each segment in it not fetched yet.
async fn play_along(viewer: Api, stream: String) {
    let mut fetched = std::collections::BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Ok(list) = viewer.playlist(&stream).await else {
            continue;
        };
        for seq in segment_seqs(&list) {
            if fetched.insert(seq) {
                let _ = viewer.segment_file(&stream, seq).await;
            }
        }
        // Bounded: only the newest segments can be in a live playlist.
        while fetched.len() > 64 {
            fetched.pop_first();
        }
    }
}

/// One status line of a paid testnet: what the viewer paid and has left,
/// and what the creator earned and claimed.
async fn payment_line(viewer: &Api, creator: &Api, stream: &str) -> String {
    let fmt = |t: &str| vilokanam_chain::format_amount(t.parse().unwrap_or(0));
    let spent = match viewer.spending().await {
        Ok(list) => match list
            .iter()
            .find(|s| s.stream == stream && s.state == vilokanam_api::SpendingState::Watching)
        {
            Some(s) => format!(
                "viewer paid {} s: {} of {}, {} s left",
                s.seconds_paid,
                fmt(&s.spent),
                fmt(&s.budget),
                s.seconds_left
            ),
            None => "viewer: no channel yet".to_owned(),
        },
        Err(e) => format!("viewer: {e}"),
    };
    let earned = match creator.earnings().await {
        Ok(list) => {
            let sum = |f: fn(&vilokanam_api::EarningInfo) -> &str| {
                list.iter()
                    .filter(|e| e.stream == stream)
                    .map(|e| f(e).parse::<u128>().unwrap_or(0))
                    .sum::<u128>()
            };
            let (accrued, claimed) = (sum(|e| &e.accrued), sum(|e| &e.claimed));
            format!(
                "creator earned {}, claimed {} on chain",
                vilokanam_chain::format_amount(accrued),
                vilokanam_chain::format_amount(claimed)
            )
        }
        Err(e) => format!("creator: {e}"),
    };
    format!("{spent}; {earned}")
}

/// One status line of a testnet with relay fees: what each node earned
/// serving payloads (owed at its fee, and paid by vouchers) and what it
/// paid the peers it pulled from.
async fn relay_line(t: &Testnet, n: usize) -> String {
    let amount = |v: &str| short_amount(v.parse().unwrap_or(0));
    let mut parts = Vec::new();
    for i in 0..n {
        let Ok(api) = t.api(i) else { continue };
        let Ok(b) = api.bandwidth().await else {
            continue;
        };
        let spent: u128 = b
            .servers
            .iter()
            .map(|s| s.paid.parse::<u128>().unwrap_or(0))
            .sum();
        let served = format!(
            "served {:.1} MiB, paid {} of {}",
            b.served_bytes as f64 / 1_048_576.0,
            amount(&b.paid),
            amount(&b.earned)
        );
        parts.push(match i {
            0 => format!("creator {served}"),
            i if i == n - 1 => format!("viewer paid {}", short_amount(spent)),
            i => format!("relay {i} {served}, paid upstream {}", short_amount(spent)),
        });
    }
    format!("bandwidth: {}", parts.join("; "))
}

/// An amount for a status line: mTICK with three decimals.
fn short_amount(planck: u128) -> String {
    format!("{:.3} mTICK", planck as f64 / 1e9)
}

/// Ctrl-C or SIGTERM: both stop the testnet cleanly (every process by PID).
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = ctrl_c.await;
}

/// Notices a viewer that stops advancing while its creator goes on.
#[derive(Debug, Default)]
pub struct StallWatch {
    last: Option<u64>,
    same: u32,
}

impl StallWatch {
    /// Status lines without progress that count as a stall (15 s at 5 s).
    pub const STALL_LINES: u32 = 3;

    /// Records the viewer's and creator's newest chunks; returns how many
    /// status lines the viewer has not moved while the creator did, once
    /// that reaches [`Self::STALL_LINES`].
    pub fn observe(&mut self, viewer: u64, creator: u64) -> Option<u32> {
        if self.last == Some(viewer) && creator > viewer {
            self.same += 1;
        } else {
            self.same = 0;
        }
        self.last = Some(viewer);
        (self.same >= Self::STALL_LINES).then_some(self.same)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_stuck_while_the_creator_moves_is_a_stall() {
        let mut w = StallWatch::default();
        assert_eq!(w.observe(5, 6), None);
        assert_eq!(w.observe(6, 7), None, "moving");
        assert_eq!(w.observe(6, 8), None);
        assert_eq!(w.observe(6, 9), None);
        assert_eq!(w.observe(6, 10), Some(3));
        // A stream that ended (creator not moving) is not a stall.
        let mut w = StallWatch::default();
        for _ in 0..10 {
            assert_eq!(w.observe(9, 9), None);
        }
    }
}
