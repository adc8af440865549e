//! A real browser as the viewer's player: hls.js in headless Chromium,
//! driven by `scripts/tools/play-hls.mjs` on the pinned Node 22.
//!
//! Tests find the parts with [`BrowserPlayer::locate`] and the
//! skip-or-require switch; `scripts/test-all.sh` installs them (Debian
//! `chromium`; npm `playwright-core` and `hls.js` in the tools folder).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

/// What the player script needs: Node, the tools folder with
/// `playwright-core` and `hls.js`, and a Chromium binary.
#[derive(Clone, Debug)]
pub struct BrowserPlayer {
    node: PathBuf,
    tools: PathBuf,
    chromium: PathBuf,
    script: PathBuf,
}

/// One look at the `<video>` element.
#[derive(Clone, Debug, Deserialize)]
pub struct PlaySample {
    /// Seconds since playback was asked for.
    pub at: f64,
    /// The playhead (`currentTime`, s).
    pub t: f64,
    /// Decoded picture width (0 before the first frame).
    pub width: u32,
    /// Decoded picture height.
    pub height: u32,
    /// Frames decoded so far.
    pub frames: u64,
    /// Not paused, and enough data to play on (`readyState >= 3`).
    pub playing: bool,
}

/// What the browser saw, sample by sample, and every hls.js error.
#[derive(Clone, Debug, Deserialize)]
pub struct PlayReport {
    /// One sample every 5 s.
    pub samples: Vec<PlaySample>,
    /// hls.js errors (`Hls.Events.ERROR`) as `type/details`, in order.
    pub errors: Vec<String>,
    /// How often the `<video>` element waited for data.
    pub waiting: u32,
    /// The fatal error that ended playback, if any.
    pub fatal: Option<String>,
    /// Glass-to-glass latency sampled once a second while playing (ms):
    /// the wall clock minus the program date of the frame being shown.
    #[serde(default)]
    pub latencies: Vec<f64>,
}

impl PlayReport {
    /// The `q` quantile (0..=1) of the latency samples, if any.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.latencies, q)
    }
}

/// The `q` quantile (0..=1, nearest rank) of `values`, if any.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// hls.js errors that report a short wait for data, or a request the
/// player itself cancelled, rather than a fault; whether playback was
/// smooth is judged by the playhead. (`networkError/aborted` was seen once
/// in 150 s of smooth playback of the no-ffmpeg testnet.)
const WAITS: [&str; 4] = [
    "mediaError/bufferStalledError",
    "mediaError/bufferNudgeOnStall",
    "mediaError/bufferSeekOverHole",
    "networkError/aborted",
];

impl PlayReport {
    /// Fails unless playback started within the first samples and then,
    /// from the sample after it started (hls.js first seeks to near the
    /// live edge), moved on by at least 4 s and some frames in every 5 s
    /// sample: no stall over about a second, no reset, no player error
    /// other than a short wait, a real picture decoded.
    pub fn ensure_smooth(&self) -> Result<()> {
        ensure!(self.fatal.is_none(), "fatal player error: {self:?}");
        let faults: Vec<&String> = self
            .errors
            .iter()
            .filter(|e| !WAITS.contains(&e.as_str()))
            .collect();
        ensure!(faults.is_empty(), "hls.js reported errors: {faults:?}");
        let started = self
            .samples
            .iter()
            .position(|s| s.playing && s.t > 0.0 && s.width > 0 && s.frames > 0)
            .with_context(|| format!("playback never started: {self:?}"))?;
        ensure!(
            started <= 2,
            "playback took {started} samples to start: {self:?}"
        );
        let from = (started + 1).min(self.samples.len());
        for w in self.samples[from..].windows(2) {
            let moved = w[1].t - w[0].t;
            ensure!(
                moved >= 4.0 && w[1].frames > w[0].frames,
                "the playhead moved {moved:.1} s ({} frames) between {:.0} s and {:.0} s: {self:?}",
                w[1].frames.saturating_sub(w[0].frames),
                w[0].at,
                w[1].at
            );
        }
        Ok(())
    }
}

impl BrowserPlayer {
    /// Finds the parts: `VILOKANAM_NODE` and `VILOKANAM_TOOLS` (set by
    /// `scripts/lib.sh`), `VILOKANAM_CHROMIUM` or `/usr/bin/chromium`.
    pub fn locate() -> Result<Self> {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let node = var("VILOKANAM_NODE").context("VILOKANAM_NODE is not set")?;
        let tools = var("VILOKANAM_TOOLS").context("VILOKANAM_TOOLS is not set")?;
        let chromium = var("VILOKANAM_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools/play-hls.mjs");
        for (what, p) in [
            ("node", &node),
            ("chromium", &chromium),
            ("play-hls.mjs", &script),
            (
                "playwright-core",
                &tools.join("node_modules/playwright-core/package.json"),
            ),
            ("hls.js", &tools.join("node_modules/hls.js/dist/hls.min.js")),
        ] {
            ensure!(p.is_file(), "{what} not found at {}", p.display());
        }
        Ok(Self {
            node,
            tools,
            chromium,
            script,
        })
    }

    /// Plays `url` for `seconds` and returns what the browser saw.
    pub async fn play(&self, url: &str, seconds: u32) -> Result<PlayReport> {
        // Its own process group, so that a timeout stops Chromium too.
        let child = tokio::process::Command::new(&self.node)
            .arg(&self.script)
            .arg(&self.tools)
            .arg(&self.chromium)
            .arg(url)
            .arg(seconds.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("running node play-hls.mjs")?;
        let pid = child.id();
        let budget = Duration::from_secs(u64::from(seconds) + 60);
        let out = match tokio::time::timeout(budget, child.wait_with_output()).await {
            Ok(out) => out.context("waiting for play-hls.mjs")?,
            Err(_) => {
                if let Some(pid) = pid {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", "--", &format!("-{pid}")])
                        .status();
                }
                bail!("the browser did not finish within {budget:?}");
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(json) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            bail!(
                "play-hls.mjs gave no result ({}): {stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        serde_json::from_str(json).with_context(|| format!("bad result line: {json}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, t: f64) -> PlaySample {
        PlaySample {
            at,
            t,
            width: 320,
            height: 180,
            frames: (t * 30.0) as u64,
            playing: t > 0.0,
        }
    }

    fn report(ts: &[f64]) -> PlayReport {
        PlayReport {
            samples: ts
                .iter()
                .enumerate()
                .map(|(i, t)| sample(5.0 * (i + 1) as f64, *t))
                .collect(),
            errors: vec![],
            waiting: 1,
            fatal: None,
            latencies: vec![],
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(10.0));
        assert_eq!(quantile(&v, 0.95), Some(19.0));
        assert_eq!(quantile(&v, 1.0), Some(20.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[f64::NAN, 3.0], 0.5), Some(3.0));
    }

    #[test]
    fn smooth_playback_passes_and_each_fault_fails() {
        report(&[0.0, 4.0, 9.0, 14.0, 19.0])
            .ensure_smooth()
            .unwrap();
        // The first window after the start may be short (the seek to the
        // live edge); later ones may not.
        report(&[3.0, 6.0, 11.0, 16.0]).ensure_smooth().unwrap();
        // A stall after start.
        let stalled = report(&[4.0, 9.0, 14.0, 14.5, 19.0]);
        assert!(stalled.ensure_smooth().is_err());
        // A reset to the start (what a timestamp jump does to a player).
        let reset = report(&[4.0, 9.0, 14.0, 1.0, 6.0]);
        assert!(reset.ensure_smooth().is_err());
        // Never started.
        assert!(report(&[0.0, 0.0, 0.0, 0.0]).ensure_smooth().is_err());
        // A short wait is not a fault; a parsing error is.
        let mut r = report(&[4.0, 9.0, 14.0]);
        r.errors.push("mediaError/bufferStalledError".into());
        r.ensure_smooth().unwrap();
        r.errors.push("mediaError/fragParsingError".into());
        assert!(r.ensure_smooth().is_err());
        let mut r = report(&[4.0, 9.0]);
        r.fatal = Some("manifestLoadError".into());
        assert!(r.ensure_smooth().is_err());
    }
}
