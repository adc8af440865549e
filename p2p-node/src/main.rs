//! `vilokanam`: the command-line entry point (see the library docs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use vilokanam::chain_cmd::{self, AccountCmd, ChainArgs, ChainCmd, ChannelCmd};
use vilokanam::client::ApiClient;
use vilokanam::config::NodeConfig;
use vilokanam::{daemon, ingest};

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

#[derive(Args, Clone)]
struct ApiArg {
    /// Address of the daemon's HTTP API.
    #[arg(long, env = "VILOKANAM_API", default_value = "127.0.0.1:7788")]
    api: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node (until Ctrl-C / SIGTERM).
    Daemon(DaemonCmd),
    /// Publish a live MPEG-TS stream through the local daemon.
    Publish {
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
        input: ingest::publish::Input,
        /// Pace a file by its timestamps, as if it were live.
        #[arg(long)]
        realtime: bool,
        /// Restart a file at its end until interrupted.
        #[arg(long = "loop")]
        repeat: bool,
        /// Target chunk duration in seconds (chunks start at keyframes).
        #[arg(long, default_value_t = 1.0)]
        segment_secs: f64,
    },
    /// Follow a stream and print (or open) its local playback URL.
    Watch {
        #[command(flatten)]
        api: ApiArg,
        /// Stream id (`<creator key hex>-<name>`, see `vilokanam streams`).
        stream: String,
        /// Start this player with the URL, e.g. `mpv`, `vlc`, `ffplay`.
        #[arg(long)]
        player: Option<String>,
    },
    /// List streams the daemon knows.
    Streams {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show connected peers and their scores.
    Peers {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show this node's id and addresses.
    Id {
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
    },
}

#[derive(Args)]
struct DaemonCmd {
    /// Data directory (identity key, database).
    #[arg(long, env = "VILOKANAM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (default: `config.toml` in the data dir, if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// HTTP API address.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// libp2p listen multiaddr (repeatable).
    #[arg(long)]
    listen: Vec<String>,
    /// Peer to connect to at start (repeatable): `/ip4/…/tcp/…/p2p/<id>`.
    #[arg(long)]
    bootstrap: Vec<String>,
    /// Enable mDNS LAN discovery.
    #[arg(long)]
    mdns: bool,
    /// Only connect to --bootstrap peers (no Kademlia walks, no stored peers).
    #[arg(long)]
    no_discovery: bool,
    /// Relay every announced live stream.
    #[arg(long)]
    relay: bool,
    /// Chunks kept in memory per stream.
    #[arg(long)]
    window: Option<usize>,
    /// Seconds between re-announcements of a live stream.
    #[arg(long)]
    announce_secs: Option<u64>,
}

impl DaemonCmd {
    fn resolve(self) -> Result<(PathBuf, NodeConfig)> {
        let data_dir = chain_cmd::resolve_data_dir(self.data_dir)?;
        let file = self.config.clone().or_else(|| {
            let p = data_dir.join("config.toml");
            p.exists().then_some(p)
        });
        let mut c = match file {
            Some(f) => NodeConfig::from_file(&f)?,
            None => NodeConfig::default(),
        };
        if let Some(a) = self.api {
            c.api = a;
        }
        if !self.listen.is_empty() {
            c.listen = self.listen;
        }
        c.bootstrap.extend(self.bootstrap);
        c.mdns |= self.mdns;
        if self.no_discovery {
            c.discovery = false;
        }
        c.relay_all |= self.relay;
        if let Some(w) = self.window {
            c.window = w;
        }
        if let Some(s) = self.announce_secs {
            c.announce_interval_secs = s;
        }
        Ok((data_dir, c))
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Daemon(cmd) => {
            let (data_dir, config) = cmd.resolve()?;
            daemon::run(daemon::DaemonArgs { data_dir, config }).await
        }
        Command::Publish {
            api,
            name,
            title,
            tags,
            input,
            realtime,
            repeat,
            segment_secs,
        } => {
            let client = ApiClient::new(&api.api);
            let segment = Duration::try_from_secs_f64(segment_secs)
                .ok()
                .filter(|d| !d.is_zero() && *d <= Duration::from_secs(30))
                .context("--segment-secs must be in (0, 30]")?;
            let n = ingest::publish::run(
                &client,
                ingest::publish::PublishOptions {
                    name,
                    title,
                    tags,
                    input,
                    realtime,
                    repeat,
                    segment,
                },
            )
            .await?;
            eprintln!("published {n} segments");
            Ok(())
        }
        Command::Watch {
            api,
            stream,
            player,
        } => {
            let client = ApiClient::new(&api.api);
            let url = client.watch(&stream).await?;
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
                if !status.success() {
                    anyhow::bail!("player exited with {status}");
                }
            }
            Ok(())
        }
        Command::Streams { api } => {
            let client = ApiClient::new(&api.api);
            let list = client.streams().await?;
            if list.is_empty() {
                println!("no streams known yet");
            }
            for s in list {
                let state = if s.live {
                    "live"
                } else if s.ended {
                    "ended"
                } else {
                    "quiet"
                };
                println!(
                    "{state:5} {} {:?} last_seq={} {}{}",
                    s.id,
                    s.title.unwrap_or_default(),
                    s.last_seq.map_or("-".into(), |n| n.to_string()),
                    client.base(),
                    s.playlist
                );
            }
            Ok(())
        }
        Command::Peers { api } => {
            let v = ApiClient::new(&api.api).get("/api/v0/peers").await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Command::Id { api } => {
            let v = ApiClient::new(&api.api).get("/api/v0/id").await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Command::Account { chain, action } => {
            let action = action.unwrap_or(AccountCmd::Show { offline: false });
            chain_cmd::account(&chain, action).await
        }
        Command::Chain { chain, action } => chain_cmd::chain(&chain, action).await,
        Command::Channel { chain, action } => chain_cmd::channel(&chain, action).await,
        Command::Testnet {
            nodes,
            no_ffmpeg,
            dir,
        } => {
            let bin = std::env::current_exe().context("locating the vilokanam binary")?;
            vilokanam_testnet::run_interactive(vilokanam_testnet::InteractiveOptions {
                bin,
                nodes,
                use_ffmpeg: !no_ffmpeg,
                dir,
            })
            .await
        }
    }
}
