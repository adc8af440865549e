//! `vilokanam vod ls|play|stop|export|pin|unpin`: the VODs the local daemon
//! holds (its own streams are recorded and become VODs when they end).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tokio::io::AsyncWriteExt;

use super::ApiArg;

/// What to do with VODs.
#[derive(Subcommand, Debug)]
pub enum VodCmd {
    /// List the VODs this node holds, newest first (`--heard`: those
    /// other creators announced, which any node can play or pin).
    Ls {
        /// VODs other creators announced instead.
        #[arg(long)]
        heard: bool,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Print a VOD's playback URL (or open it in `--player`). The VOD of a
    /// paid stream plays with `--budget`: the node pays its creator per
    /// second watched, as for a live stream.
    Play {
        /// Root CID of the VOD.
        root: String,
        /// Start this player with the URL, e.g. `mpv`, `vlc`, `ffplay`.
        #[arg(long)]
        player: Option<String>,
        /// Payment, for a paid VOD.
        #[command(flatten)]
        pay: super::watch::PayArgs,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Stop paying for a paid VOD played with `--budget` (what was watched
    /// stays paid; the rest of the deposit comes back when the creator
    /// closes the channel, or at its expiry).
    Stop {
        /// Root CID of the VOD.
        root: String,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Write a VOD as a CARv1 file (`ipfs dag import FILE` takes it).
    Export {
        /// Root CID of the VOD.
        root: String,
        /// The CAR file to write.
        #[arg(long)]
        car: PathBuf,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Keep a VOD on this node: every block it lacks is fetched from its
    /// peers over Bitswap (verified) and stored. With `--ipfs-api`, also add
    /// it to that IPFS daemon and pin it there (resumable: a rerun sends
    /// only what the daemon still lacks).
    Pin {
        /// Root CID of the VOD.
        root: String,
        /// Kubo RPC API of an IPFS daemon, e.g. `http://127.0.0.1:5001`.
        #[arg(long, env = "VILOKANAM_IPFS_API")]
        ipfs_api: Option<String>,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Forget a VOD's record on this node (with `--ipfs-api`: unpin it on
    /// that IPFS daemon instead).
    Unpin {
        /// Root CID of the VOD.
        root: String,
        /// Kubo RPC API of an IPFS daemon, e.g. `http://127.0.0.1:5001`.
        #[arg(long, env = "VILOKANAM_IPFS_API")]
        ipfs_api: Option<String>,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
}

/// Runs a `vod` subcommand.
pub async fn run(cmd: VodCmd) -> Result<()> {
    match cmd {
        VodCmd::Ls { api, heard } => {
            let vods = if heard {
                api.client().heard_vods().await?
            } else {
                api.client().vods().await?
            };
            if vods.is_empty() && heard {
                println!("no VODs announced yet (creators announce theirs every few minutes)");
            } else if vods.is_empty() {
                println!("no VODs yet (a stream becomes one when it ends)");
            }
            for v in vods {
                println!(
                    "{}  {:>8.1} s  {:>5} segments  {:>10} bytes  {}{}  {}",
                    v.root,
                    v.duration_ms as f64 / 1000.0,
                    v.segments,
                    v.bytes,
                    if v.title.is_empty() {
                        &v.stream
                    } else {
                        &v.title
                    },
                    match (&v.price_per_sec, v.signed) {
                        (Some(p), _) => format!(
                            " (paid: {})",
                            p.parse::<u128>()
                                .map(vilokanam_chain::format_rate)
                                .unwrap_or_else(|_| p.clone())
                        ),
                        (None, true) => String::new(),
                        (None, false) => " (unsigned)".into(),
                    },
                    api.client().vod_url(&v.root),
                );
            }
            Ok(())
        }
        VodCmd::Play {
            root,
            player,
            pay,
            api,
        } => {
            let client = api.client();
            let (req, budget) = pay.request()?;
            // Fails with the node's reason when the VOD cannot be found,
            // costs more than the cap, or is paid and no budget is given.
            let w = client.vod_watch(&root, &req).await?;
            if !w.stream.is_empty() && budget.is_some() {
                eprintln!(
                    "paid VOD of {}: paying from a budget of {} as it plays (`vilokanam spending`)",
                    w.stream,
                    vilokanam_chain::format_amount(budget.unwrap_or(0))
                );
            }
            client.vod_file(&root, "index.m3u8").await?;
            let url = w.playlist;
            println!("{url}");
            if let Some(player) = player {
                let mut parts = player.split_whitespace();
                let prog = parts.next().context("--player is empty")?;
                let status = tokio::process::Command::new(prog)
                    .args(parts)
                    .arg(&url)
                    .status()
                    .await
                    .with_context(|| format!("starting player {prog:?}"))?;
                // Done watching: the last voucher goes to the creator.
                if !w.stream.is_empty() {
                    client.vod_unwatch(&root).await?;
                }
                if !status.success() {
                    bail!("player exited with {status}");
                }
            }
            Ok(())
        }
        VodCmd::Stop { root, api } => {
            api.client().vod_unwatch(&root).await?;
            println!("no longer paying for {root}");
            Ok(())
        }
        VodCmd::Export { root, car, api } => {
            let mut resp = api.client().vod_car(&root).await?;
            let tmp = car.with_extension("car.partial");
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("creating {}", tmp.display()))?;
            // Each block is checked as it streams by (memory: one block); a
            // CAR cut short by the node (a block missing) is not complete
            // and is not named as asked.
            let mut reader = vilokanam_storage::unixfs::car::Reader::default();
            let (mut n, mut blocks) = (0u64, 0usize);
            while let Some(piece) = resp
                .chunk()
                .await
                .context("reading the CAR from the node")?
            {
                blocks += reader
                    .push(&piece)
                    .context("the node sent an invalid CAR")?
                    .len();
                f.write_all(&piece).await?;
                n += piece.len() as u64;
            }
            f.sync_all().await?;
            drop(f);
            let r = reader.finish().context("the node sent an incomplete CAR")?;
            if r.to_string() != root {
                bail!("the CAR's root is {r}, not {root}");
            }
            tokio::fs::rename(&tmp, &car).await?;
            println!(
                "wrote {} ({n} bytes, {blocks} blocks, root {root}); import it with `ipfs dag import {}`",
                car.display(),
                car.display()
            );
            Ok(())
        }
        VodCmd::Pin {
            root,
            ipfs_api,
            api,
        } => {
            let client = api.client();
            let v = client.vod_pin(&root).await?;
            println!(
                "pinned {} ({} segments, {} bytes) on this node",
                v.root, v.segments, v.bytes
            );
            if let Some(url) = ipfs_api {
                pin_on_ipfs(&client, &url, &root).await?;
            }
            Ok(())
        }
        VodCmd::Unpin {
            root,
            ipfs_api,
            api,
        } => {
            match ipfs_api {
                Some(url) => {
                    let cid = root.parse().context("invalid CID")?;
                    crate::kubo::Kubo::new(&url).pin_rm(&cid).await?;
                    println!("unpinned {root} on the IPFS daemon at {url}");
                }
                None => {
                    api.client().vod_unpin(&root).await?;
                    println!("unpinned {root}");
                }
            }
            Ok(())
        }
    }
}

/// Adds and pins a VOD on the IPFS daemon at `url` with a progress bar:
/// the CAR streams from the local daemon, only blocks the IPFS daemon
/// lacks are sent, then it pins the root.
async fn pin_on_ipfs(client: &vilokanam_api::ApiClient, url: &str, root: &str) -> Result<()> {
    let kubo = crate::kubo::Kubo::new(url);
    let peer = kubo
        .id()
        .await
        .with_context(|| format!("is an IPFS daemon running at {url}?"))?;
    let cid = root.parse().context("invalid CID")?;
    let resp = client.vod_car(root).await?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut last = crate::kubo::PinProgress::default();
    let r = crate::kubo::pin_vod(&kubo, cid, crate::kubo::car_blocks(resp), |p| {
        last = p;
        bar.set_message(format!(
            "{} blocks: {} already on the daemon, {} sent; pin: {} nodes",
            p.blocks, p.present, p.sent, p.pinned_nodes
        ));
    })
    .await;
    bar.finish_and_clear();
    r.with_context(|| {
        format!(
            "pinning {root} on {url} (after {} of {} blocks sent; run it again to resume)",
            last.sent, last.blocks
        )
    })?;
    anyhow::ensure!(
        kubo.is_pinned(&cid).await?,
        "the IPFS daemon does not list {root} as pinned"
    );
    println!(
        "pinned {root} on the IPFS daemon {peer} at {url}: {} blocks, {} already there, {} sent",
        last.blocks, last.present, last.sent
    );
    Ok(())
}
