//! Node configuration: a TOML file merged with command-line flags.
//!
//! Every key has a documented default, and every bound on what the network
//! can make the node hold is a key here. [`NodeConfig::validate`] refuses
//! combinations that cannot work, with a message that says why.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use vilokanam_swarm::libp2p::Multiaddr;
use vilokanam_swarm::{AnnounceConfig, Config as NetConfig, RelayConfig};

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
    /// Where the key-only listener listens: the addresses a paid stream's
    /// offer names for buying keys, so that viewers' key connections are
    /// not full mesh peers of this node (docs/PAYMENTS.md §3). Absent: the
    /// `listen` addresses with port 0 (any free port; set fixed ports here
    /// behind a firewall). `[]`: no key-only listener, keys are sold on
    /// the `listen` addresses.
    pub key_listen: Option<Vec<String>>,
    /// Peers to connect to at start (`/ip4/…/tcp/…/p2p/<id>`).
    pub bootstrap: Vec<String>,
    /// LAN discovery with mDNS. Default off.
    pub mdns: bool,
    /// Find more peers through Kademlia. Default on; off keeps exactly the
    /// `bootstrap` links (fixed testnet topologies).
    pub discovery: bool,
    /// Relay every announced live stream (relay operators), up to
    /// `max_relayed_streams`. Default off.
    pub relay_all: bool,
    /// Chunks kept in memory per stream for peers and playback. Default 30.
    pub window: usize,
    /// Segments listed in the live playlist. Default 6; at most
    /// `window - 2`, so that every listed segment is held.
    pub playlist_len: usize,
    /// Seconds between re-announcements of a live stream. Default 5.
    pub announce_interval_secs: u64,
    /// A published stream with no segment for this long is announced as
    /// ended (its encoder stopped); it resumes with a discontinuity when
    /// segments come again. Default 15.
    pub publish_idle_secs: u64,
    /// Streams of others kept in the catalog (least recently announced
    /// evicted). Default 1000.
    pub max_known_streams: usize,
    /// Streams followed at once, for any reason. Default 64.
    pub max_streams: usize,
    /// Of those, streams followed only to relay them. Default 32.
    pub max_relayed_streams: usize,
    /// A relayed stream with no new chunk for this long is left. Default 30.
    pub relay_silence_secs: u64,
    /// MiB of chunks kept per stream. Default 64.
    pub max_stream_mib: usize,
    /// MiB of chunks kept over all streams. Default 512.
    pub max_total_mib: usize,
    /// Announcements a peer may send per second on average. Default 50.
    pub announce_rate: f64,
    /// Announcements a peer may send in a burst. Default 200.
    pub announce_burst: u32,
    /// Streams tracked per creator key. Default 8.
    pub max_streams_per_creator: usize,
    /// Streams the announcement policy tracks. Default 4096.
    pub max_tracked_announcements: usize,
    /// Gossipsub topics recorded per remote peer. Default 128.
    pub max_peer_topics: usize,
    /// libp2p connections at once. Default 256.
    pub max_connections: u32,
    /// HTTP API requests served at once; more get 503. Default 64.
    pub http_max_requests: usize,
    /// HTTP API connections open at once; more wait to be accepted.
    /// Default 256.
    pub http_max_connections: usize,
    /// Websocket RPC of a settlement-chain node. Default
    /// `ws://127.0.0.1:9944` (where `scripts/dev-chain.sh` listens).
    pub chain_rpc: String,
    /// Raw chain spec (with boot nodes) of the settlement chain. When set,
    /// the chain is reached through the embedded light client instead of
    /// `chain_rpc`.
    pub chain_spec: Option<PathBuf>,
    /// Highest price per second this node agrees to watch, e.g.
    /// `"5µTICK/s"`; `vilokanam watch --max-price` overrides it. A dearer
    /// stream is refused with its price. Default none: any price.
    pub max_price: Option<String>,
    /// As a payee, claim a channel's held voucher once what is unclaimed
    /// is worth this many claim fees (the runtime's own estimate,
    /// `claim_cost`). Default 10. Held vouchers are also claimed when
    /// their channel nears expiry and at shutdown.
    pub claim_fee_multiple: u32,
    /// Seconds between settlement checks (claims due; as a viewer, ended
    /// channels to reclaim). Default 30.
    pub claim_check_secs: u64,
    /// As a viewer, blocks a channel stays open past its budget's playing
    /// time before this node may take the rest of the deposit back
    /// itself: the creator's time to claim. Default 14,400 (a day of 6 s
    /// blocks). The creator's node refuses channels that expire within
    /// 10 blocks and claims within 100 blocks of expiry, so much less
    /// than 100 risks its pay.
    pub channel_grace_blocks: u32,
    /// As a creator, close a viewer's single-payee channel (claiming first
    /// if that pays its fee) once its node has not asked for a key for
    /// this many seconds: the viewer is done, and gets the rest of its
    /// deposit back then rather than at expiry. Default 300.
    pub close_idle_secs: u64,
    /// What this node charges for the payload bytes it serves, per MiB,
    /// e.g. `"0.05mTICK/MiB"` (`vilokanam daemon --fee`). Default none:
    /// free. A fee needs the chain and a chain account.
    pub fee: Option<String>,
    /// Unpaid payload MiB served to a peer before it must pay. Default 4
    /// (a few chunks); keep it above two of the largest chunks, or a peer
    /// that pays after each chunk waits on its payment.
    pub credit_mib: u64,
    /// The most this node pays a peer per MiB, e.g. `"0.1mTICK/MiB"`
    /// (`--max-fee`). Default none: it pulls only from free peers.
    pub max_fee: Option<String>,
    /// Deposit of the channel this node pays bandwidth from (opened on the
    /// first fee it pays, one per run). Default `"1TICK"`.
    pub bandwidth_deposit: String,
    /// Peers one bandwidth channel can pay, each up to
    /// `bandwidth_deposit / bandwidth_slots` (so no collateral is needed).
    /// Default 8, at most 16 (the runtime's `MaxPayees`).
    pub bandwidth_slots: u32,
    /// Record every stream this node relays or watches, not only its own,
    /// and build each into a VOD when its creator ends it (`--record`).
    /// Default false.
    pub record: bool,
    /// MiB of recordings and VODs this node keeps; a chunk past it is not
    /// recorded (logged, counted in `record_failures`). Default 10,240.
    pub record_quota_mib: u64,
    /// Kubo RPC API of an IPFS daemon (`http://127.0.0.1:5001`): every
    /// VOD this node builds is added and pinned there (only the blocks it
    /// lacks; retried at start until done). Default none.
    pub ipfs_api: Option<String>,
    /// Seconds between re-announcements of this node's own VODs (the
    /// newest 16), so nodes that join later learn of them. Default 300, at
    /// least 60 (relays forward one VOD at most once a minute).
    pub vod_announce_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let relay = RelayConfig::default();
        let announce = AnnounceConfig::default();
        NodeConfig {
            api: SocketAddr::from(([127, 0, 0, 1], 7788)),
            listen: vec![
                "/ip4/0.0.0.0/tcp/4010".into(),
                "/ip4/0.0.0.0/udp/4010/quic-v1".into(),
            ],
            key_listen: None,
            bootstrap: vec![],
            mdns: false,
            discovery: true,
            relay_all: false,
            window: relay.window,
            playlist_len: vilokanam_media::hls::DEFAULT_WINDOW,
            announce_interval_secs: 5,
            publish_idle_secs: 15,
            max_known_streams: 1000,
            max_streams: relay.max_streams,
            max_relayed_streams: relay.max_relayed,
            relay_silence_secs: relay.silence_timeout.as_secs(),
            max_stream_mib: relay.max_stream_bytes >> 20,
            max_total_mib: relay.max_total_bytes >> 20,
            announce_rate: announce.source_rate,
            announce_burst: announce.source_burst,
            max_streams_per_creator: announce.max_streams_per_creator,
            max_tracked_announcements: announce.max_tracked,
            max_peer_topics: 128,
            max_connections: 256,
            http_max_requests: 64,
            http_max_connections: 256,
            chain_rpc: "ws://127.0.0.1:9944".into(),
            chain_spec: None,
            max_price: None,
            claim_fee_multiple: 10,
            claim_check_secs: 30,
            channel_grace_blocks: 14_400,
            close_idle_secs: 300,
            fee: None,
            credit_mib: 4,
            max_fee: None,
            bandwidth_deposit: "1TICK".into(),
            bandwidth_slots: 8,
            record: false,
            record_quota_mib: 10_240,
            ipfs_api: None,
            vod_announce_secs: 300,
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
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Refuses settings that cannot work, saying why.
    pub fn validate(&self) -> Result<()> {
        self.max_price_per_sec()?;
        self.bandwidth_settings()?;
        if self.playlist_len < 3 {
            bail!(
                "playlist_len ({}) must be at least 3 (HLS players need three segments)",
                self.playlist_len
            );
        }
        if self.window < self.playlist_len + 2 {
            bail!(
                "window ({}) must be at least playlist_len + 2 ({}): the playlist would list segments the node no longer holds",
                self.window,
                self.playlist_len + 2
            );
        }
        if self.vod_announce_secs < 60 {
            bail!(
                "vod_announce_secs ({}) must be at least 60: relays forward one VOD at most once a minute",
                self.vod_announce_secs
            );
        }
        for (key, v) in [
            ("announce_interval_secs", self.announce_interval_secs),
            ("publish_idle_secs", self.publish_idle_secs),
            ("relay_silence_secs", self.relay_silence_secs),
            ("claim_check_secs", self.claim_check_secs),
            ("channel_grace_blocks", u64::from(self.channel_grace_blocks)),
            ("close_idle_secs", self.close_idle_secs),
        ] {
            if v == 0 {
                bail!("{key} must be at least 1");
            }
        }
        for (key, v) in [
            ("max_known_streams", self.max_known_streams),
            ("max_streams", self.max_streams),
            ("max_stream_mib", self.max_stream_mib),
            ("max_total_mib", self.max_total_mib),
            ("max_tracked_announcements", self.max_tracked_announcements),
            ("max_streams_per_creator", self.max_streams_per_creator),
            ("max_peer_topics", self.max_peer_topics),
            ("http_max_requests", self.http_max_requests),
            ("http_max_connections", self.http_max_connections),
        ] {
            if v == 0 {
                bail!("{key} must be at least 1");
            }
        }
        if self.max_relayed_streams > self.max_streams {
            bail!(
                "max_relayed_streams ({}) cannot exceed max_streams ({})",
                self.max_relayed_streams,
                self.max_streams
            );
        }
        if self.max_total_mib < self.max_stream_mib {
            bail!(
                "max_total_mib ({}) must be at least max_stream_mib ({})",
                self.max_total_mib,
                self.max_stream_mib
            );
        }
        if !(self.announce_rate.is_finite() && self.announce_rate > 0.0) || self.announce_burst == 0
        {
            bail!("announce_rate and announce_burst must be positive");
        }
        self.network().map(|_| ())
    }

    /// The bandwidth market's settings (fees parsed, ranges checked).
    pub fn bandwidth_settings(&self) -> Result<crate::node::bandwidth::BandwidthSettings> {
        let fee = |v: &Option<String>, key: &str| -> Result<u64> {
            v.as_deref()
                .map(vilokanam_chain::parse_fee)
                .transpose()
                .with_context(|| key.to_owned())
                .map(|f| f.unwrap_or(0))
        };
        let fee_per_mib = fee(&self.fee, "fee")?;
        let max_fee_per_mib = fee(&self.max_fee, "max_fee")?;
        let max = vilokanam_swarm::protocols::bandwidth::MAX_FEE_PER_MIB;
        if fee_per_mib > max {
            bail!("fee is over the highest fee a node may ask (1 TICK/MiB)");
        }
        let credit_bytes = self.credit_mib.saturating_mul(1 << 20);
        if credit_bytes > vilokanam_swarm::protocols::bandwidth::MAX_CREDIT_BYTES {
            bail!("credit_mib ({}) is over 1024", self.credit_mib);
        }
        if !(1..=16).contains(&self.bandwidth_slots) {
            bail!(
                "bandwidth_slots ({}) must be 1 to 16 (the runtime's payee limit)",
                self.bandwidth_slots
            );
        }
        let deposit =
            vilokanam_chain::parse_amount(&self.bandwidth_deposit).context("bandwidth_deposit")?;
        Ok(crate::node::bandwidth::BandwidthSettings {
            fee_per_mib,
            credit_bytes,
            max_fee_per_mib,
            deposit,
            slots: self.bandwidth_slots,
        })
    }

    /// `max_price` in planck per second.
    pub fn max_price_per_sec(&self) -> Result<Option<u128>> {
        self.max_price
            .as_deref()
            .map(vilokanam_chain::parse_rate)
            .transpose()
            .context("max_price")
    }

    /// Interval between re-announcements.
    pub fn announce_interval(&self) -> Duration {
        Duration::from_secs(self.announce_interval_secs.max(1))
    }

    /// How long a published stream may go without a segment.
    pub fn publish_idle(&self) -> Duration {
        Duration::from_secs(self.publish_idle_secs.max(1))
    }

    /// The key-only listener's addresses (see [`NodeConfig::key_listen`]);
    /// empty for none.
    pub fn key_listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        use vilokanam_swarm::libp2p::multiaddr::Protocol;
        match &self.key_listen {
            Some(list) => parse_addrs(list, "key_listen"),
            None => Ok(parse_addrs(&self.listen, "listen")?
                .into_iter()
                .map(|a| {
                    a.iter()
                        .map(|p| match p {
                            Protocol::Tcp(_) => Protocol::Tcp(0),
                            Protocol::Udp(_) => Protocol::Udp(0),
                            p => p,
                        })
                        .collect()
                })
                .collect()),
        }
    }

    /// The swarm configuration this describes.
    pub fn network(&self) -> Result<NetConfig> {
        let relay = RelayConfig {
            window: self.window.max(1),
            max_streams: self.max_streams.max(1),
            max_relayed: self.max_relayed_streams,
            silence_timeout: Duration::from_secs(self.relay_silence_secs.max(1)),
            max_stream_bytes: self.max_stream_mib << 20,
            max_total_bytes: self.max_total_mib << 20,
            ..RelayConfig::default()
        };
        let announce = AnnounceConfig {
            source_rate: self.announce_rate,
            source_burst: self.announce_burst,
            max_streams_per_creator: self.max_streams_per_creator,
            max_tracked: self.max_tracked_announcements,
            ..AnnounceConfig::default()
        };
        let mut net = NetConfig {
            listen: parse_addrs(&self.listen, "listen")?,
            bootstrap: parse_addrs(&self.bootstrap, "bootstrap")?,
            discovery: self.discovery,
            relay_all: self.relay_all,
            relay,
            announce,
            ..NetConfig::default()
        };
        net.behaviour.mdns = self.mdns;
        net.behaviour.max_peer_topics = self.max_peer_topics;
        net.behaviour.max_connections = self.max_connections;
        Ok(net)
    }
}

/// Parses the multiaddrs of setting `what`, naming the bad one.
fn parse_addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>> {
    list.iter()
        .map(|s| {
            s.parse::<Multiaddr>()
                .with_context(|| format!("invalid {what} multiaddr {s:?}"))
        })
        .collect()
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
            max_known_streams: 77,
            announce_rate: 2.5,
            chain_spec: Some("spec.json".into()),
            ..NodeConfig::default()
        };
        let text = c.to_toml().unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&text).unwrap(), c);
        // The defaults round-trip too, and are valid.
        let d = NodeConfig::default();
        assert_eq!(
            toml::from_str::<NodeConfig>(&d.to_toml().unwrap()).unwrap(),
            d
        );
        d.validate().unwrap();
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

    #[test]
    fn max_price_is_a_per_second_rate() {
        let c = NodeConfig {
            max_price: Some("5µTICK/s".into()),
            ..NodeConfig::default()
        };
        assert_eq!(c.max_price_per_sec().unwrap(), Some(5_000_000));
        c.validate().unwrap();
        let text = c.to_toml().unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&text).unwrap(), c);
        let bad = NodeConfig {
            max_price: Some("5µTICK/h".into()),
            ..NodeConfig::default()
        };
        let e = format!("{:#}", bad.validate().unwrap_err());
        assert!(e.contains("max_price") && e.contains("per second"), "{e}");
        assert_eq!(NodeConfig::default().max_price_per_sec().unwrap(), None);
    }

    #[test]
    fn bandwidth_settings_are_parsed_and_refused_with_the_key() {
        let c = NodeConfig {
            fee: Some("0.05mTICK/MiB".into()),
            max_fee: Some("0.1mTICK/MiB".into()),
            credit_mib: 2,
            bandwidth_deposit: "0.5TICK".into(),
            bandwidth_slots: 4,
            ..NodeConfig::default()
        };
        let s = c.bandwidth_settings().unwrap();
        assert_eq!(
            (
                s.fee_per_mib,
                s.max_fee_per_mib,
                s.credit_bytes,
                s.deposit,
                s.slots
            ),
            (50_000_000, 100_000_000, 2 << 20, 500_000_000_000, 4)
        );
        let text = c.to_toml().unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&text).unwrap(), c);
        let d = NodeConfig::default().bandwidth_settings().unwrap();
        assert_eq!(
            (d.fee_per_mib, d.max_fee_per_mib),
            (0, 0),
            "free by default"
        );
        let bad: [(NodeConfig, &str); 6] = [
            (
                NodeConfig {
                    fee: Some("1mTICK/GiB".into()),
                    ..NodeConfig::default()
                },
                "fee",
            ),
            (
                NodeConfig {
                    max_fee: Some("1mTICK/s".into()),
                    ..NodeConfig::default()
                },
                "max_fee",
            ),
            (
                NodeConfig {
                    fee: Some("2TICK/MiB".into()),
                    ..NodeConfig::default()
                },
                "highest fee",
            ),
            (
                NodeConfig {
                    credit_mib: 2048,
                    ..NodeConfig::default()
                },
                "credit_mib",
            ),
            (
                NodeConfig {
                    bandwidth_slots: 17,
                    ..NodeConfig::default()
                },
                "bandwidth_slots",
            ),
            (
                NodeConfig {
                    bandwidth_deposit: "lots".into(),
                    ..NodeConfig::default()
                },
                "bandwidth_deposit",
            ),
        ];
        for (c, key) in bad {
            let e = format!("{:#}", c.validate().unwrap_err());
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    /// Before this check, a window smaller than the playlist made the
    /// playlist list segments the node had already evicted.
    #[test]
    fn window_smaller_than_the_playlist_is_refused() {
        let c = NodeConfig {
            window: 4,
            playlist_len: 6,
            ..NodeConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("window (4) must be at least playlist_len + 2 (8)"),
            "{e}"
        );
        for bad in [
            NodeConfig {
                max_known_streams: 0,
                ..NodeConfig::default()
            },
            NodeConfig {
                max_relayed_streams: 100,
                ..NodeConfig::default()
            },
            NodeConfig {
                max_total_mib: 1,
                ..NodeConfig::default()
            },
            NodeConfig {
                announce_rate: f64::NAN,
                ..NodeConfig::default()
            },
            NodeConfig {
                publish_idle_secs: 0,
                ..NodeConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bounds_reach_the_swarm() {
        let c = NodeConfig {
            max_streams: 9,
            max_relayed_streams: 3,
            max_total_mib: 100,
            max_peer_topics: 17,
            ..NodeConfig::default()
        };
        let n = c.network().unwrap();
        assert_eq!((n.relay.max_streams, n.relay.max_relayed), (9, 3));
        assert_eq!(n.relay.max_total_bytes, 100 << 20);
        assert_eq!(n.behaviour.max_peer_topics, 17);
    }
}
