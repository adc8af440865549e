//! `vilokanam watch`, `unwatch`, `streams`, `peers`, `id`, `stats`.

use anyhow::{Context, Result};
use clap::Args;
use vilokanam_api::{ApiClient, SpendingState, StreamState};

use super::ApiArg;

/// `vilokanam watch STREAM [--player mpv]`.
#[derive(Args, Debug)]
pub struct WatchCmd {
    #[command(flatten)]
    api: ApiArg,
    /// Stream id (`<creator key hex>-<name>`, see `vilokanam streams`).
    stream: String,
    /// Start this player with the URL, e.g. `mpv`, `vlc`, `ffplay`.
    #[arg(long)]
    player: Option<String>,
    #[command(flatten)]
    pay: PayArgs,
}

/// How to pay for a paid stream or VOD (`watch`, `vod play`).
#[derive(Args, Debug)]
pub struct PayArgs {
    /// Refuse it if it costs more than this per second, e.g. `5µTICK/s`
    /// (default: `max_price` in the daemon's config.toml).
    #[arg(long)]
    max_price: Option<String>,
    /// If it is paid: the most to spend, e.g. `0.5TICK`. The daemon opens
    /// one channel on the chain with it (one transaction) and pays from it
    /// for every second it plays.
    #[arg(long)]
    budget: Option<String>,
    /// When the budget runs out, top the channel up by the budget again
    /// (one transaction each), while the total stays within this, e.g.
    /// `2TICK`. Default: no top-up; playback stops with the amounts.
    #[arg(long, requires = "budget")]
    top_up_to: Option<String>,
}

impl PayArgs {
    /// The request for the daemon (amounts in planck), and the budget.
    pub fn request(&self) -> Result<(vilokanam_api::WatchRequest, Option<u128>)> {
        let max = self
            .max_price
            .as_deref()
            .map(vilokanam_chain::parse_rate)
            .transpose()
            .context("--max-price")?;
        let budget = self
            .budget
            .as_deref()
            .map(vilokanam_chain::parse_amount)
            .transpose()
            .context("--budget")?;
        let top_up_to = self
            .top_up_to
            .as_deref()
            .map(vilokanam_chain::parse_amount)
            .transpose()
            .context("--top-up-to")?;
        let req = vilokanam_api::WatchRequest {
            max_price_per_sec: max.map(|m| m.to_string()),
            budget: budget.map(|b| b.to_string()),
            top_up_to: top_up_to.map(|b| b.to_string()),
        };
        Ok((req, budget))
    }
}

impl WatchCmd {
    /// Follows the stream; prints its URL or plays it.
    pub async fn run(self) -> Result<()> {
        let client = self.api.client();
        let (req, budget) = self.pay.request()?;
        let url = client.watch_with(&self.stream, &req).await?;
        println!("{url}");
        if let Ok(info) = client.stream(&self.stream).await {
            match (&info.offer, budget) {
                (Some(_), None) => eprintln!(
                    "note: this stream is paid ({}); without --budget this node does not pay, so it will not play",
                    price_of(&info)
                ),
                (Some(_), Some(b)) => eprintln!(
                    "paying {} from a budget of {}",
                    price_of(&info),
                    vilokanam_chain::format_amount(b)
                ),
                _ => {}
            }
        }
        if let Some(player) = self.player {
            let mut parts = player.split_whitespace();
            let prog = parts.next().context("--player is empty")?;
            let mut child = tokio::process::Command::new(prog)
                .args(parts)
                .arg(&url)
                .spawn()
                .with_context(|| format!("starting player {prog:?}"))?;
            // While the player runs: how far behind the creator this node
            // plays, every 5 s (on stderr; stdout has the URL only).
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            tick.tick().await;
            let status = loop {
                tokio::select! {
                    s = child.wait() => break s.context("waiting for the player")?,
                    _ = tick.tick() => {
                        if let Ok(info) = client.stream(&self.stream).await {
                            eprintln!("{}", info.latency_summary());
                        }
                    }
                }
            };
            if !status.success() {
                anyhow::bail!("player exited with {status}");
            }
        }
        Ok(())
    }
}

/// `vilokanam unwatch STREAM`.
#[derive(Args, Debug)]
pub struct UnwatchCmd {
    #[command(flatten)]
    api: ApiArg,
    /// Stream id.
    stream: String,
}

impl UnwatchCmd {
    /// Stops following the stream.
    pub async fn run(self) -> Result<()> {
        self.api.client().unwatch(&self.stream).await?;
        println!("no longer watching {}", self.stream);
        Ok(())
    }
}

/// Lists the streams the daemon knows.
pub async fn streams(client: &ApiClient) -> Result<()> {
    let list = client.streams().await?;
    if list.is_empty() {
        println!("no streams known yet");
    }
    for s in list {
        let state = match s.state {
            StreamState::Live => "live",
            StreamState::Quiet => "quiet",
            StreamState::Ended => "ended",
        };
        let role = match (s.publishing, s.watching, s.relaying) {
            (true, _, _) => " (yours)",
            (_, true, _) => " (watching)",
            (_, _, true) => " (relaying)",
            _ => "",
        };
        println!(
            "{state:5} {} {:?} last_seq={} {}{role} {}",
            s.id,
            s.title.clone().unwrap_or_default(),
            s.last_seq.map_or("-".into(), |n| n.to_string()),
            price_of(&s),
            client.url(&s.playlist)
        );
    }
    Ok(())
}

/// `free`, or the price and payee of a paid stream (`2 µTICK/s to 5Grw…`).
fn price_of(s: &vilokanam_api::StreamInfo) -> String {
    match &s.offer {
        None => "free".into(),
        Some(o) => match o.price_per_sec.parse() {
            Ok(p) => format!("{} to {}", vilokanam_chain::format_rate(p), o.payee),
            Err(_) => format!("price {:?} (unreadable)", o.price_per_sec),
        },
    }
}

/// Prints the connected peers.
pub async fn peers(client: &ApiClient) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&client.peers().await?)?);
    Ok(())
}

/// Prints the node's id.
pub async fn id(client: &ApiClient) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&client.id().await?)?);
    Ok(())
}

/// Prints what the node holds.
pub async fn stats(client: &ApiClient) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&client.stats().await?)?);
    Ok(())
}

/// `vilokanam spending`.
pub async fn spending(client: &ApiClient) -> Result<()> {
    let list = client.spending().await?;
    if list.is_empty() {
        println!("paying for no stream");
    }
    for s in list {
        let amount = |t: &str| vilokanam_chain::format_amount(t.parse().unwrap_or(0));
        let state = match s.state {
            SpendingState::Watching => format!("watching, {} s left", s.seconds_left),
            SpendingState::Ended => format!(
                "ended; the rest is held until the creator closes the channel or block {}, when this node takes it back",
                s.expires_at
            ),
            SpendingState::Closed => "settled: the creator closed the channel, the rest came back".into(),
            SpendingState::Reclaimed => format!(
                "settled: reclaimed {} after expiry",
                amount(s.refunded.as_deref().unwrap_or("0"))
            ),
        };
        println!(
            "{}\n  channel {}: {} s paid, spent {} of {}; {state}",
            s.stream,
            s.channel,
            s.seconds_paid,
            amount(&s.spent),
            amount(&s.budget),
        );
    }
    Ok(())
}

/// `vilokanam earnings [--claim]`.
pub async fn earnings(client: &ApiClient, claim: bool) -> Result<()> {
    let amount = |t: &str| vilokanam_chain::format_amount(t.parse().unwrap_or(0));
    if claim {
        let claimed = client.claim().await?;
        println!("claimed {} now", amount(&claimed));
    }
    let list = client.earnings().await?;
    if list.is_empty() {
        println!("no vouchers held");
    }
    let bw = client.bandwidth().await?;
    let planck = amount;
    if bw.fee_per_mib > 0 || bw.served_bytes > 0 {
        println!(
            "bandwidth at {}: served {:.1} MiB, earned {}, paid {}, unpaid {} ({} cut-offs)",
            vilokanam_chain::format_fee(bw.fee_per_mib),
            bw.served_bytes as f64 / 1_048_576.0,
            planck(&bw.earned),
            planck(&bw.paid),
            planck(&bw.outstanding),
            bw.cut_offs
        );
        for p in &bw.peers {
            println!(
                "  peer {}: {} bytes, owed {}, paid {}{}",
                p.peer,
                p.served_bytes,
                planck(&p.owed),
                planck(&p.paid),
                if p.cut_off { " (cut off)" } else { "" }
            );
        }
        for s in &bw.streams {
            println!(
                "  stream {}: {} bytes, earned {}",
                s.stream,
                s.served_bytes,
                planck(&s.earned)
            );
        }
    }
    // Peers whose terms are known but that served nothing are not listed.
    for s in bw
        .servers
        .iter()
        .filter(|s| s.verified_bytes > 0 || s.paid != "0")
    {
        println!(
            "paid server {} ({}): {} bytes verified, paid {}",
            s.peer,
            s.fee_per_mib
                .map_or("terms unknown".into(), vilokanam_chain::format_fee),
            s.verified_bytes,
            planck(&s.paid)
        );
    }
    for e in list {
        let pending = e
            .accrued
            .parse::<u128>()
            .unwrap_or(0)
            .saturating_sub(e.claimed.parse().unwrap_or(0));
        let what = if e.stream == "bandwidth" {
            "bandwidth fees (held voucher)".to_owned()
        } else {
            e.stream.clone()
        };
        println!(
            "{what}\n  channel {}: {} s paid, accrued {}, claimed {}, pending {}",
            e.channel,
            e.seconds,
            amount(&e.accrued),
            amount(&e.claimed),
            vilokanam_chain::format_amount(pending)
        );
    }
    Ok(())
}
