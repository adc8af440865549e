//! The composed libp2p behaviour of a Vilokanam node and its configuration.

use std::collections::BTreeSet;
use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentityTransform, MaxCountSubscriptionFilter, TopicHash, TopicSubscriptionFilter,
};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    connection_limits, identify, identity, kad, mdns, ping, request_response, StreamProtocol,
};
use sha2::{Digest, Sha256};

use crate::protocols::live::codec::{ChunkCodec, CHUNK_PROTOCOL};
use crate::protocols::live::wire::{StreamId, ANNOUNCE_TOPIC};
use crate::scoring::{score_params, score_thresholds, topic_score_params};

/// Kademlia protocol name of the Vilokanam DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/kad/1.0.0");
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/vilokanam/id/1.0.0";

/// Transport-level cap of one gossipsub frame; the application cap per
/// message ([`crate::wire::MAX_GOSSIP_MESSAGE`]) is smaller and checked on
/// decode so that an oversized message is *rejected* (and its sender scored
/// down) rather than silently dropped by the framing layer.
pub const GOSSIP_TRANSMIT_LIMIT: usize = 64 * 1024;

/// Which remote subscriptions gossipsub records: only Vilokanam topics
/// (the announce topic and well-formed stream topics). Anything else is
/// dropped before it takes memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct VilokanamTopics;

impl TopicSubscriptionFilter for VilokanamTopics {
    fn can_subscribe(&mut self, topic_hash: &TopicHash) -> bool {
        let t = topic_hash.as_str();
        t == ANNOUNCE_TOPIC
            || t == crate::protocols::social::SOCIAL_TOPIC
            || StreamId::from_topic(t).is_some()
            || crate::protocols::chat::wire::stream_of_chat_topic(t).is_some()
    }
}

/// The subscription filter: Vilokanam topics only, at most
/// [`BehaviourConfig::max_peer_topics`] per peer and per request.
pub type SubscriptionFilter = MaxCountSubscriptionFilter<VilokanamTopics>;

/// Gossipsub as this node runs it.
pub type Gossipsub = gossipsub::Behaviour<IdentityTransform, SubscriptionFilter>;

/// Builds the gossipsub behaviour: signed messages, application
/// validation before forwarding, content-addressed message ids, scoring,
/// and bounded remote subscriptions.
pub fn gossipsub(key: &identity::Keypair, max_peer_topics: usize) -> Result<Gossipsub, String> {
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
    let filter = MaxCountSubscriptionFilter {
        filter: VilokanamTopics,
        max_subscribed_topics: max_peer_topics,
        max_subscriptions_per_request: max_peer_topics,
    };
    let mut g = Gossipsub::new_with_subscription_filter(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        config,
        filter,
    )?;
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
        pub gossipsub: Gossipsub,
        /// Chunk payloads by CID / sequence.
        pub chunks: request_response::Behaviour<ChunkCodec>,
        /// Chat history for late joiners.
        pub chat_history: request_response::Behaviour<crate::protocols::chat::codec::HistoryCodec>,
        /// Paywall epoch keys for vouchers: long-lived key sessions
        /// (`protocols::keys::session`), served outside the swarm task.
        pub keys: libp2p_stream::Behaviour,
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
#[derive(Clone, Debug, PartialEq)]
pub struct BehaviourConfig {
    /// Enable mDNS discovery.
    pub mdns: bool,
    /// Most established connections in total. Default 256.
    pub max_connections: u32,
    /// Most connections being set up by remote peers at once. Default 64.
    pub max_pending_incoming: u32,
    /// Concurrent chunk substreams per connection. Default 64.
    pub max_chunk_streams: usize,
    /// Timeout of one chunk request. Default 10 s.
    pub request_timeout: Duration,
    /// Gossipsub topics recorded per remote peer (and per subscription
    /// request). Default 128: an honest relay follows at most
    /// `max_streams` (64) streams plus the announce topic.
    pub max_peer_topics: usize,
    /// Let Kademlia dial peers it learns of (periodic bootstrap). Off keeps
    /// the topology to explicit dials.
    pub discovery: bool,
    /// Social records the DHT store holds (each at most
    /// [`crate::protocols::social::wire::MAX_RECORD`] bytes). Default 2048.
    pub max_records: usize,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            mdns: false,
            max_connections: 256,
            max_pending_incoming: 64,
            max_chunk_streams: 64,
            request_timeout: Duration::from_secs(10),
            max_peer_topics: 128,
            discovery: true,
            max_records: 2048,
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
        // Every inbound record is checked by the social rules before it is
        // stored (`protocols::social::actor`); lookups end within 10 s.
        kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
        kad_config.set_query_timeout(Duration::from_secs(10));
        kad_config.set_max_packet_size(crate::protocols::social::wire::MAX_RECORD + 4096);
        let store = kad::store::MemoryStore::with_config(
            peer_id,
            kad::store::MemoryStoreConfig {
                max_records: cfg.max_records,
                max_value_bytes: crate::protocols::social::wire::MAX_RECORD,
                ..Default::default()
            },
        );
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
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
                    .with_max_pending_incoming(Some(cfg.max_pending_incoming)),
            ),
            gossipsub: gossipsub(key, cfg.max_peer_topics)?,
            chunks: request_response::Behaviour::with_codec(
                ChunkCodec::default(),
                [(CHUNK_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(cfg.request_timeout)
                    .with_max_concurrent_streams(cfg.max_chunk_streams),
            ),
            chat_history: request_response::Behaviour::with_codec(
                crate::protocols::chat::codec::HistoryCodec::default(),
                [(
                    crate::protocols::chat::codec::HISTORY_PROTOCOL,
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(cfg.request_timeout)
                    .with_max_concurrent_streams(8),
            ),
            keys: libp2p_stream::Behaviour::new(),
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

/// The remote peers subscribed to `topic`, as gossipsub recorded them.
pub fn topic_peers(g: &Gossipsub, topic: &str) -> Vec<libp2p::PeerId> {
    let hash = TopicHash::from_raw(topic);
    g.all_peers()
        .filter(|(_, ts)| ts.contains(&&hash))
        .map(|(p, _)| *p)
        .collect()
}

/// Topics a remote peer is subscribed to, as gossipsub recorded them.
pub fn peer_topics(g: &Gossipsub) -> Vec<(libp2p::PeerId, BTreeSet<String>)> {
    g.all_peers()
        .map(|(p, ts)| (*p, ts.iter().map(|t| t.to_string()).collect()))
        .collect()
}
