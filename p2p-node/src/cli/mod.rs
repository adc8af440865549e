//! The command line: one module per command family. Every command but
//! `daemon` and `testnet` is a client of a running daemon's HTTP API
//! (through [`vilokanam_api::ApiClient`]) or of the chain.

pub mod chain;
pub mod chat;
pub mod daemon;
pub mod publish;
pub mod social;
pub mod vod;
pub mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use vilokanam_api::ApiClient;

use chain::{AccountCmd, ChainArgs, ChainCmd, ChannelCmd};

#[derive(Parser)]
#[command(
    name = "vilokanam",
    version,
    about = "Peer-to-peer live streaming node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the daemon's API is.
#[derive(Args, Clone, Debug)]
pub struct ApiArg {
    /// Address of the daemon's HTTP API.
    #[arg(long, env = "VILOKANAM_API", default_value = "127.0.0.1:7788")]
    pub api: String,
}

impl ApiArg {
    /// A client of it.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.api)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the node (until Ctrl-C / SIGTERM).
    Daemon(daemon::DaemonCmd),
    /// Publish a live MPEG-TS stream through the local daemon.
    Publish(PublishCmd),
    /// Follow a stream and print (or open) its local playback URL.
    Watch(watch::WatchCmd),
    /// Stop following a stream.
    Unwatch(watch::UnwatchCmd),
    /// A stream's chat: follow and type, say one line, moderate.
    Chat {
        #[command(subcommand)]
        action: chat::ChatCmd,
    },
    /// This node's user's profile, or a creator's (resolved on the DHT).
    Profile {
        #[command(subcommand)]
        action: social::ProfileCmd,
    },
    /// Follow a creator (a signed operation that merges across devices).
    Follow(social::FollowCmd),
    /// Unfollow a creator.
    Unfollow(social::FollowCmd),
    /// The creators a user follows (this node's user without a key).
    Following(social::ListCmd),
    /// A creator's followers, counted from signed operations.
    Followers(social::ListCmd),
    /// Followed creators live now; `--follow` prints notifications as they
    /// come.
    Feed(social::FeedCmd),
    /// VODs: list, play, export as CAR.
    Vod {
        #[command(subcommand)]
        action: vod::VodCmd,
    },
    /// List streams the daemon knows.
    Streams {
        /// Search titles, tags and creator names (live streams first, then
        /// followed creators, then relevance); VODs are found too.
        #[arg(long)]
        search: Option<String>,
        /// Only streams and VODs with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Most results of a search.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        api: ApiArg,
    },
    /// What this node pays for paid streams: seconds paid, spent, left.
    Spending {
        #[command(flatten)]
        api: ApiArg,
    },
    /// What this node earned as a payee: vouchers held, accrued, claimed
    /// (`--claim`: claim them on chain now).
    Earnings {
        #[command(flatten)]
        api: ApiArg,
        /// Claim every held voucher now (it is also done at shutdown).
        #[arg(long)]
        claim: bool,
    },
    /// Show connected peers and their scores.
    Peers {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show this node's id, keys and addresses.
    Id {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show what the node holds against its caps.
    Stats {
        #[command(flatten)]
        api: ApiArg,
    },
    /// The node's chain account (sr25519): show, create or import it.
    Account {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(subcommand)]
        action: Option<AccountCmd>,
    },
    /// The settlement chain.
    Chain {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(subcommand)]
        action: ChainCmd,
    },
    /// tick-stream payment channels of this account.
    Channel {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(subcommand)]
        action: ChannelCmd,
    },
    /// Start a local multi-node testnet that streams a test signal.
    Testnet {
        /// Number of nodes (creator, relays, viewer).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Do not use ffmpeg even if installed (use the shipped fixture).
        #[arg(long)]
        no_ffmpeg: bool,
        /// Directory for the nodes' data (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Stop after this many seconds of streaming (default: until Ctrl-C).
        #[arg(long)]
        duration_secs: Option<u64>,
        /// A free stream and no chain (default: the dev chain starts,
        /// installed on first use, and the viewer pays the creator).
        #[arg(long)]
        free: bool,
    },
}

#[derive(Args)]
struct PublishCmd {
    #[command(flatten)]
    api: ApiArg,
    /// Stream name ([A-Za-z0-9_.-], up to 64).
    #[arg(long)]
    name: String,
    /// Title shown to viewers.
    #[arg(long, default_value = "")]
    title: String,
    /// Comma-separated tags.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// MPEG-TS source: a file, `-` for stdin, or `udp://127.0.0.1:PORT`.
    #[arg(long)]
    input: publish::Input,
    /// Pace a file by its timestamps, as if it were live.
    #[arg(long)]
    realtime: bool,
    /// Restart a file at its end until interrupted.
    #[arg(long = "loop")]
    repeat: bool,
    /// Target chunk duration in seconds (chunks start at keyframes).
    #[arg(long, default_value_t = 1.0)]
    segment_secs: f64,
    /// LL-HLS part target in milliseconds: each segment is also published
    /// as parts of at most this long, each as soon as it is cut, so that
    /// players in low-latency mode start and stay within about a second
    /// of the creator. 0 turns parts off.
    #[arg(long, default_value_t = 300)]
    part_ms: u64,
    /// A live input (stdin, UDP) silent this long ends the stream until
    /// input comes back.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Price per second of playback, e.g. `2µTICK/s` (0 or absent: free).
    /// Signed into the stream's announcement with the payee and the chain.
    #[arg(long)]
    price: Option<String>,
    /// Payout account (SS58) of a paid stream (default: the chain account
    /// in `--data-dir`, whose default is the daemon's default data dir;
    /// pass the daemon's `--data-dir` if it runs with another).
    #[arg(long, requires = "price")]
    payee: Option<String>,
    /// Genesis hash (`0x…`) of the chain that settles a paid stream
    /// (default: read from the configured chain).
    #[arg(long, requires = "price")]
    genesis: Option<String>,
    /// Seconds per paywall epoch of a paid stream: each has its own
    /// content key, and a viewer that stops paying keeps at most one more.
    #[arg(long, requires = "price", default_value_t = vilokanam_api::DEFAULT_EPOCH_SECS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(vilokanam_swarm::wire::MAX_EPOCH_SECS)))]
    epoch_secs: u32,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Logs to stderr, filtered by `RUST_LOG`; colours only on a terminal, so
/// log files stay plain text.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the command line.
pub async fn main() -> Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Daemon(cmd) => cmd.run().await,
        Command::Publish(cmd) => {
            let segment = Duration::try_from_secs_f64(cmd.segment_secs)
                .ok()
                .filter(|d| !d.is_zero() && *d <= Duration::from_secs(30))
                .context("--segment-secs must be in (0, 30]")?;
            if cmd.idle_secs == 0 {
                anyhow::bail!("--idle-secs must be at least 1");
            }
            let part = match cmd.part_ms {
                0 => None,
                ms => {
                    let d = Duration::from_millis(ms);
                    if d < vilokanam_media::limits::MIN_PART_TARGET || d > segment {
                        anyhow::bail!(
                            "--part-ms must be 0 (off) or between {} and the segment duration ({} ms)",
                            vilokanam_media::limits::MIN_PART_TARGET.as_millis(),
                            segment.as_millis()
                        );
                    }
                    Some(d)
                }
            };
            let offer = match cmd.price.as_deref().map(vilokanam_chain::parse_rate) {
                None => None,
                Some(Ok(0)) if cmd.payee.is_some() || cmd.genesis.is_some() => {
                    anyhow::bail!("--payee and --genesis are for a paid stream: --price is 0")
                }
                Some(Ok(0)) => None,
                Some(Ok(p)) if p > vilokanam_swarm::wire::MAX_PRICE_PER_SEC => anyhow::bail!(
                    "--price: above the limit of {}",
                    vilokanam_chain::format_rate(vilokanam_swarm::wire::MAX_PRICE_PER_SEC)
                ),
                Some(Ok(price)) => {
                    let mut o = chain::offer(&cmd.chain, price, cmd.payee, cmd.genesis).await?;
                    o.epoch_secs = cmd.epoch_secs;
                    eprintln!(
                        "paid stream: {} to {} on chain {}",
                        vilokanam_chain::format_rate(price),
                        o.payee,
                        o.genesis
                    );
                    Some(o)
                }
                Some(Err(e)) => return Err(e).context("--price"),
            };
            let n = publish::run(
                &cmd.api.client(),
                publish::PublishOptions {
                    offer,
                    name: cmd.name,
                    title: cmd.title,
                    tags: cmd.tags,
                    input: cmd.input,
                    realtime: cmd.realtime,
                    repeat: cmd.repeat,
                    segment,
                    part,
                    idle: Duration::from_secs(cmd.idle_secs),
                },
            )
            .await?;
            eprintln!("published {n} segments");
            Ok(())
        }
        Command::Watch(cmd) => cmd.run().await,
        Command::Unwatch(cmd) => cmd.run().await,
        Command::Vod { action } => vod::run(action).await,
        Command::Chat { action } => chat::run(action).await,
        Command::Profile { action } => social::profile(action).await,
        Command::Follow(c) => social::follow(c, true).await,
        Command::Unfollow(c) => social::follow(c, false).await,
        Command::Following(c) => social::following(c).await,
        Command::Followers(c) => social::followers(c).await,
        Command::Feed(c) => social::feed(c).await,
        Command::Streams {
            search: None,
            tag: None,
            api,
            ..
        } => watch::streams(&api.client()).await,
        Command::Streams {
            search,
            tag,
            limit,
            api,
        } => social::search(&api.client(), search.as_deref(), tag.as_deref(), limit).await,
        Command::Spending { api } => watch::spending(&api.client()).await,
        Command::Earnings { api, claim } => watch::earnings(&api.client(), claim).await,
        Command::Peers { api } => watch::peers(&api.client()).await,
        Command::Id { api } => watch::id(&api.client()).await,
        Command::Stats { api } => watch::stats(&api.client()).await,
        Command::Account { chain, action } => {
            let action = action.unwrap_or(AccountCmd::Show { offline: false });
            chain::account(&chain, action).await
        }
        Command::Chain { chain, action } => chain::chain(&chain, action).await,
        Command::Channel { chain, action } => chain::channel(&chain, action).await,
        Command::Testnet {
            nodes,
            no_ffmpeg,
            dir,
            duration_secs,
            free,
        } => {
            let bin = std::env::current_exe().context("locating the vilokanam binary")?;
            vilokanam_testnet::run_interactive(vilokanam_testnet::InteractiveOptions {
                bin,
                nodes,
                use_ffmpeg: !no_ffmpeg,
                dir,
                duration: duration_secs.map(Duration::from_secs),
                free,
            })
            .await
        }
    }
}
