//! The composed libp2p behaviour of a Vilokanam node and its configuration.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    connection_limits, gossipsub, identify, identity, kad, mdns, ping, request_response,
    StreamProtocol,
};
use sha2::{Digest, Sha256};

use crate::codec::{ChunkCodec, CHUNK_PROTOCOL};

/// Kademlia protocol name of the Vilokanam DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/kad/1.0.0");
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/vilokanam/id/1.0.0";
/// The global topic on which stream announcements travel.
pub const ANNOUNCE_TOPIC: &str = "/vilokanam/announce/1";

/// Transport-level cap of one gossipsub frame; the application cap per
/// message ([`MAX_GOSSIP_MESSAGE`]) is smaller and checked on decode so
/// that an oversized message is *rejected* (and its sender scored down)
/// rather than silently dropped by the framing layer.
pub const GOSSIP_TRANSMIT_LIMIT: usize = 64 * 1024;

/// Score thresholds of gossipsub peer scoring.
pub fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    }
}

/// Per-topic score parameters: invalid messages (P4) weigh heavily; the
/// mesh-delivery-rate penalty (P3) is off because honest relays deliver
/// headers only after pulling the payload, which makes them "late" by
/// design.
pub fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.99,
        ..Default::default()
    }
}

fn score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        // Local testnets put every node on one address.
        ip_colocation_factor_whitelist: HashSet::from([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
        ..Default::default()
    }
}

/// Builds the gossipsub behaviour: signed messages, application
/// validation before forwarding, content-addressed message ids, scoring.
pub fn gossipsub(key: &identity::Keypair) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(GOSSIP_TRANSMIT_LIMIT)
        .heartbeat_interval(Duration::from_millis(700))
        // Messages wait in the cache while their payload is fetched (up to
        // `give_up_after` + one `fetch_timeout` = 17 s); a verdict for a
        // message that already left the cache would be lost and the header
        // never forwarded. 30 heartbeats × 0.7 s = 21 s.
        .history_length(30)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(&Sha256::digest(&m.data)[..20])
        })
        .build()
        .map_err(|e| e.to_string())?;
    let mut g =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)?;
    g.with_peer_score(score_params(), score_thresholds())?;
    let announce = gossipsub::IdentTopic::new(ANNOUNCE_TOPIC);
    g.set_topic_params(announce, topic_score_params())
        .map_err(|e| e.to_string())?;
    Ok(g)
}

/// Every protocol a node speaks.
#[allow(missing_docs)] // the derive generates an undocumented event enum
mod composed {
    use super::*;

    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Caps on connections.
        pub limits: connection_limits::Behaviour,
        /// Chunk headers and announcements.
        pub gossipsub: gossipsub::Behaviour,
        /// Chunk payloads by CID / sequence.
        pub chunks: request_response::Behaviour<ChunkCodec>,
        /// Peer discovery (and, later, signed social records).
        pub kad: kad::Behaviour<kad::store::MemoryStore>,
        /// Exchange of listen addresses and protocols.
        pub identify: identify::Behaviour,
        /// Liveness.
        pub ping: ping::Behaviour,
        /// Optional LAN discovery.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
    }
}
pub use composed::{Behaviour, BehaviourEvent};

/// Options for building a [`Behaviour`].
#[derive(Clone, Debug)]
pub struct BehaviourConfig {
    /// Enable mDNS discovery.
    pub mdns: bool,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Concurrent chunk substreams per connection.
    pub max_chunk_streams: usize,
    /// Timeout of one chunk request.
    pub request_timeout: Duration,
    /// Let Kademlia dial peers it learns of (periodic bootstrap). Off keeps
    /// the topology to explicit dials.
    pub discovery: bool,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            mdns: false,
            max_connections: 256,
            max_chunk_streams: 64,
            request_timeout: Duration::from_secs(10),
            discovery: true,
        }
    }
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub fn new(key: &identity::Keypair, cfg: &BehaviourConfig) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        if !cfg.discovery {
            // No walks and an empty routing table: nothing makes Kademlia
            // dial on its own, so the topology is exactly the explicit dials.
            kad_config.set_periodic_bootstrap_interval(None);
            kad_config.set_kbucket_inserts(kad::BucketInserts::Manual);
        }
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(Some(kad::Mode::Server));
        let mdns = if cfg.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(cfg.max_connections))
                    .with_max_established_per_peer(Some(2))
                    .with_max_pending_incoming(Some(64)),
            ),
            gossipsub: gossipsub(key)?,
            chunks: request_response::Behaviour::with_codec(
                ChunkCodec,
                [(CHUNK_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(cfg.request_timeout)
                    .with_max_concurrent_streams(cfg.max_chunk_streams),
            ),
            kad,
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("vilokanam/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
            mdns: mdns.into(),
        })
    }
}
