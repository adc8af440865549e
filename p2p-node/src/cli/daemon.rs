//! `vilokanam daemon`: flags merged over the TOML file, then the node.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::NodeConfig;

/// Flags of `vilokanam daemon` (each overrides the config file's key).
#[derive(Args, Debug)]
pub struct DaemonCmd {
    /// Data directory (keys, database).
    #[arg(long, env = "VILOKANAM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (default: `config.toml` in the data dir, if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// HTTP API address.
    #[arg(long)]
    pub api: Option<SocketAddr>,
    /// libp2p listen multiaddr (repeatable).
    #[arg(long)]
    pub listen: Vec<String>,
    /// Peer to connect to at start (repeatable): `/ip4/…/tcp/…/p2p/<id>`.
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Enable mDNS LAN discovery.
    #[arg(long)]
    pub mdns: bool,
    /// Only connect to --bootstrap peers (no Kademlia walks, no stored peers).
    #[arg(long)]
    pub no_discovery: bool,
    /// Relay every announced live stream (up to max_relayed_streams).
    #[arg(long)]
    pub relay: bool,
    /// Record every stream this node relays or watches (its own are always
    /// recorded) and build each into a VOD when it ends.
    #[arg(long)]
    pub record: bool,
    /// MiB of recordings and VODs kept (default 10240).
    #[arg(long)]
    pub record_quota_mib: Option<u64>,
    /// Add and pin every VOD this node builds on the IPFS daemon whose Kubo
    /// RPC API is here, e.g. `http://127.0.0.1:5001`.
    #[arg(long, env = "VILOKANAM_IPFS_API")]
    pub ipfs_api: Option<String>,
    /// Chunks kept in memory per stream.
    #[arg(long)]
    pub window: Option<usize>,
    /// Seconds between re-announcements of a live stream.
    #[arg(long)]
    pub announce_secs: Option<u64>,
    /// Seconds without a segment after which a published stream ends.
    #[arg(long)]
    pub publish_idle_secs: Option<u64>,
    /// Seconds between re-announcements of this node's own VODs.
    #[arg(long)]
    pub vod_announce_secs: Option<u64>,
    /// Streams followed at once (any reason).
    #[arg(long)]
    pub max_streams: Option<usize>,
    /// Streams followed only to relay them.
    #[arg(long)]
    pub max_relayed_streams: Option<usize>,
    /// Seconds without a chunk after which a relayed stream is left.
    #[arg(long)]
    pub relay_silence_secs: Option<u64>,
    /// Streams of others kept in the catalog.
    #[arg(long)]
    pub max_known_streams: Option<usize>,
    /// Websocket RPC of the settlement chain (paid streams).
    #[arg(long)]
    pub chain_rpc: Option<String>,
    /// Charge peers for the payload bytes this node serves, per MiB
    /// (e.g. `0.05mTICK/MiB`); needs the chain and a chain account.
    #[arg(long)]
    pub fee: Option<String>,
    /// The most this node pays a peer per MiB (e.g. `0.1mTICK/MiB`);
    /// without it, it pulls only from free peers.
    #[arg(long)]
    pub max_fee: Option<String>,
    /// Unpaid MiB served to a peer before it must pay.
    #[arg(long)]
    pub credit_mib: Option<u64>,
    /// Deposit of the channel bandwidth fees are paid from (e.g. `1TICK`).
    #[arg(long)]
    pub bandwidth_deposit: Option<String>,
    /// Shut down (cleanly, as on SIGTERM) when the process that started
    /// this daemon exits. `vilokanam testnet` starts its daemons in their
    /// own process group, so that Ctrl-C reaches only the testnet, which
    /// then stops them in order; this makes sure none outlives a testnet
    /// that was killed.
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

impl DaemonCmd {
    /// The data dir and the configuration (file, then flags), validated.
    pub fn resolve(self) -> Result<(PathBuf, NodeConfig)> {
        let data_dir = super::chain::resolve_data_dir(self.data_dir)?;
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
        c.record |= self.record;
        if let Some(q) = self.record_quota_mib {
            c.record_quota_mib = q;
        }
        if self.ipfs_api.is_some() {
            c.ipfs_api = self.ipfs_api;
        }
        if self.fee.is_some() {
            c.fee = self.fee;
        }
        if self.max_fee.is_some() {
            c.max_fee = self.max_fee;
        }
        if let Some(v) = self.credit_mib {
            c.credit_mib = v;
        }
        if let Some(v) = self.bandwidth_deposit {
            c.bandwidth_deposit = v;
        }
        if let Some(rpc) = self.chain_rpc {
            c.chain_rpc = rpc;
            c.chain_spec = None;
        }
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut c.window, self.window);
        set(&mut c.max_streams, self.max_streams);
        set(&mut c.max_relayed_streams, self.max_relayed_streams);
        set(&mut c.max_known_streams, self.max_known_streams);
        let set_secs = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set_secs(&mut c.announce_interval_secs, self.announce_secs);
        set_secs(&mut c.publish_idle_secs, self.publish_idle_secs);
        set_secs(&mut c.vod_announce_secs, self.vod_announce_secs);
        set_secs(&mut c.relay_silence_secs, self.relay_silence_secs);
        c.validate()?;
        Ok((data_dir, c))
    }

    /// Runs the daemon until SIGINT/SIGTERM.
    pub async fn run(self) -> Result<()> {
        let exit_with_parent = self.exit_with_parent;
        let (data_dir, config) = self.resolve()?;
        crate::daemon::run(data_dir, config, exit_with_parent).await
    }
}
