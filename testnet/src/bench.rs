//! Helpers of the benchmark binaries (`mesh-bench`, `key-bench`): a
//! process's CPU time and peak memory from `/proc`, and percentiles.

use anyhow::{bail, Context, Result};

/// The `vilokanam` binary a benchmark drives: `--bin PATH`, or the one
/// built next to the benchmark (`cargo build --release -p vilokanam`).
pub fn daemon_binary() -> Result<std::path::PathBuf> {
    let bin = match arg("--bin") {
        Some(b) => b.into(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's folder")?
            .join("vilokanam"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: cargo build --release -p vilokanam first",
            bin.display()
        );
    }
    Ok(bin)
}

/// The value after `--name` on the command line, if any.
pub fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// The value at fraction `p` (0..=1) of `sorted` (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// (utime + stime) in clock ticks, and VmHWM in KiB, of a process.
pub fn proc_usage(pid: u32) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks =
        f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("VmHWM")?
        .parse()?;
    Ok((ticks, hwm))
}

/// Clock ticks per second (`getconf CLK_TCK`, else 100).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
