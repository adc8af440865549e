//! Node configuration: a TOML file merged with command-line flags.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use vilokanam_swarm::libp2p::Multiaddr;
use vilokanam_swarm::{Config as NetConfig, RelayConfig};

/// Everything `vilokanam daemon` can be configured with. Every field has a
/// default; a TOML file (`--config`, or `config.toml` in the data dir) sets
/// any of them, and flags override the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address of the local HTTP API (JSON, playback, /metrics).
    /// Default `127.0.0.1:7788`; keep it on loopback.
    pub api: SocketAddr,
    /// libp2p listen multiaddrs. Default TCP and QUIC on port 4010.
    pub listen: Vec<String>,
    /// Peers to connect to at start (`/ip4/…/tcp/…/p2p/<id>`).
    pub bootstrap: Vec<String>,
    /// LAN discovery with mDNS. Default off.
    pub mdns: bool,
    /// Find more peers through Kademlia. Default on; off keeps exactly the
    /// `bootstrap` links (fixed testnet topologies).
    pub discovery: bool,
    /// Relay every announced live stream (relay operators). Default off.
    pub relay_all: bool,
    /// Chunks kept in memory per stream for peers and playback. Default 30.
    pub window: usize,
    /// Segments listed in the live playlist. Default 6.
    pub playlist_len: usize,
    /// Seconds between re-announcements of a live stream. Default 5.
    pub announce_interval_secs: u64,
    /// Websocket RPC of a settlement-chain node. Default
    /// `ws://127.0.0.1:9944` (where `scripts/dev-chain.sh` listens).
    pub chain_rpc: String,
    /// Raw chain spec (with boot nodes) of the settlement chain. When set,
    /// the chain is reached through the embedded light client instead of
    /// `chain_rpc`.
    pub chain_spec: Option<std::path::PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            api: SocketAddr::from(([127, 0, 0, 1], 7788)),
            listen: vec![
                "/ip4/0.0.0.0/tcp/4010".into(),
                "/ip4/0.0.0.0/udp/4010/quic-v1".into(),
            ],
            bootstrap: vec![],
            mdns: false,
            discovery: true,
            relay_all: false,
            window: 30,
            playlist_len: crate::hls::DEFAULT_WINDOW,
            announce_interval_secs: 5,
            chain_rpc: "ws://127.0.0.1:9944".into(),
            chain_spec: None,
        }
    }
}

impl NodeConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Renders as TOML.
    #[cfg(test)]
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Interval between re-announcements.
    pub fn announce_interval(&self) -> Duration {
        Duration::from_secs(self.announce_interval_secs.max(1))
    }

    /// The swarm configuration this describes.
    pub fn network(&self) -> Result<NetConfig> {
        let parse = |list: &[String], what: &str| -> Result<Vec<Multiaddr>> {
            list.iter()
                .map(|s| {
                    s.parse::<Multiaddr>()
                        .with_context(|| format!("invalid {what} multiaddr {s:?}"))
                })
                .collect()
        };
        let mut net = NetConfig {
            listen: parse(&self.listen, "listen")?,
            bootstrap: parse(&self.bootstrap, "bootstrap")?,
            discovery: self.discovery,
            relay_all: self.relay_all,
            relay: RelayConfig::default().with_window(self.window),
            ..NetConfig::default()
        };
        net.behaviour.mdns = self.mdns;
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip() {
        let c = NodeConfig {
            bootstrap: vec![
                "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
                    .into(),
            ],
            relay_all: true,
            window: 12,
            ..NodeConfig::default()
        };
        let text = c.to_toml().unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&text).unwrap(), c);
    }

    #[test]
    fn partial_file_keeps_defaults_and_unknown_keys_are_errors() {
        let c: NodeConfig = toml::from_str("relay_all = true\n").unwrap();
        assert!(c.relay_all);
        assert_eq!(c.window, 30);
        assert!(toml::from_str::<NodeConfig>("relay_al = true\n").is_err());
    }

    #[test]
    fn bad_multiaddr_is_a_clear_error() {
        let c = NodeConfig {
            listen: vec!["tcp:4010".into()],
            ..NodeConfig::default()
        };
        let e = c.network().unwrap_err().to_string();
        assert!(e.contains("invalid listen multiaddr \"tcp:4010\""), "{e}");
    }
}
