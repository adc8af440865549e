//! Prometheus metrics of the swarm event loop.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Counters for every branch of the event loop, every verdict, and the
/// sizes of what the swarm holds.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Event-loop wake-ups by branch (`command`, `swarm`, `tick`, ...).
    pub loop_branch: Family<Labels, Counter>,
    /// Gossip messages by kind and verdict (ignore reasons as verdicts).
    pub gossip: Family<Labels, Counter>,
    /// Verified chunks that became available.
    pub chunks_ready: Counter,
    /// Chunks given up on.
    pub chunks_missing: Counter,
    /// Verified parts (LL-HLS) that became available.
    pub parts_ready: Counter,
    /// Parts given up on (their segments come whole).
    pub parts_missing: Counter,
    /// Payload bytes received in chunk responses.
    pub payload_bytes_in: Counter,
    /// Chunk requests answered, by result (`found`, `not_found`).
    pub served: Family<Labels, Counter>,
    /// Payload requests that failed or timed out.
    pub fetch_failures: Counter,
    /// Application penalties, by reason.
    pub penalties: Family<Labels, Counter>,
    /// Joins refused by a bound, by reason.
    pub joins_refused: Family<Labels, Counter>,
    /// Events dropped because the node lagged, by kind (never critical ones).
    pub events_dropped: Family<Labels, Counter>,
    /// Critical events waiting for the node.
    pub events_backlog: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// Streams followed.
    pub streams_joined: Gauge,
    /// Streams followed only to relay them.
    pub streams_relayed: Gauge,
    /// Chunk payload bytes held.
    pub chunk_bytes_held: Gauge,
    /// Key sessions served now.
    pub key_sessions: Gauge,
    /// Key sessions ended or refused, by reason (`closed`, `idle`,
    /// `malformed`, `oversized`, `busy`, `per_peer`, ...).
    pub key_sessions_ended: Family<Labels, Counter>,
    /// Bitswap blocks sent to peers.
    pub bitswap_blocks_sent: Counter,
    /// Bitswap blocks received that were wanted (verified by their CID).
    pub bitswap_blocks_received: Counter,
    /// Bitswap input refused, by reason (`malformed`, `frame`, `busy`,
    /// `bad_block`, `unwanted_block`, `send_queue_full`, `too_many_peers`).
    pub bitswap_refused: Family<Labels, Counter>,
    /// Payload bytes served to peers.
    pub payload_bytes_out: Counter,
    /// Payload requests refused until the peer pays.
    pub bandwidth_refusals: Counter,
    /// Times a peer went from served to refused for payment.
    pub bandwidth_cut_offs: Counter,
    /// Bandwidth vouchers received from peers (checked by the node).
    pub bandwidth_vouchers_in: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers the metrics under the `vilokanam_swarm` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("vilokanam_swarm");
        r.register(
            "loop_branch",
            "Event-loop wake-ups by branch",
            m.loop_branch.clone(),
        );
        r.register(
            "gossip_messages",
            "Gossip messages by kind and verdict",
            m.gossip.clone(),
        );
        r.register(
            "chunks_ready",
            "Verified chunks available",
            m.chunks_ready.clone(),
        );
        r.register(
            "chunks_missing",
            "Chunks given up on",
            m.chunks_missing.clone(),
        );
        r.register(
            "parts_ready",
            "Verified parts (LL-HLS) available",
            m.parts_ready.clone(),
        );
        r.register(
            "parts_missing",
            "Parts given up on (their segments come whole)",
            m.parts_missing.clone(),
        );
        r.register(
            "payload_bytes_in",
            "Payload bytes received",
            m.payload_bytes_in.clone(),
        );
        r.register(
            "payload_bytes_out",
            "Payload bytes served to peers",
            m.payload_bytes_out.clone(),
        );
        r.register(
            "bandwidth_refusals",
            "Payload requests refused until the peer pays",
            m.bandwidth_refusals.clone(),
        );
        r.register(
            "bandwidth_cut_offs",
            "Peers cut off for unpaid bytes past their credit",
            m.bandwidth_cut_offs.clone(),
        );
        r.register(
            "bandwidth_vouchers_in",
            "Bandwidth vouchers received from peers",
            m.bandwidth_vouchers_in.clone(),
        );
        r.register(
            "requests_served",
            "Chunk requests answered",
            m.served.clone(),
        );
        r.register(
            "fetch_failures",
            "Failed payload requests",
            m.fetch_failures.clone(),
        );
        r.register(
            "penalties",
            "Application penalties by reason",
            m.penalties.clone(),
        );
        r.register(
            "joins_refused",
            "Joins refused by a bound",
            m.joins_refused.clone(),
        );
        r.register(
            "events_dropped",
            "Non-critical events dropped (node lagging)",
            m.events_dropped.clone(),
        );
        r.register(
            "events_backlog",
            "Critical events waiting for the node",
            m.events_backlog.clone(),
        );
        r.register("peers", "Connected peers", m.peers.clone());
        r.register(
            "streams_joined",
            "Streams followed",
            m.streams_joined.clone(),
        );
        r.register(
            "streams_relayed",
            "Streams followed only to relay them",
            m.streams_relayed.clone(),
        );
        r.register(
            "chunk_bytes_held",
            "Chunk payload bytes held",
            m.chunk_bytes_held.clone(),
        );
        r.register(
            "key_sessions",
            "Key sessions served now",
            m.key_sessions.clone(),
        );
        r.register(
            "bitswap_blocks_sent",
            "Bitswap blocks sent to peers",
            m.bitswap_blocks_sent.clone(),
        );
        r.register(
            "bitswap_blocks_received",
            "Wanted Bitswap blocks received (CID-verified)",
            m.bitswap_blocks_received.clone(),
        );
        r.register(
            "bitswap_refused",
            "Bitswap input refused, by reason",
            m.bitswap_refused.clone(),
        );
        r.register(
            "key_sessions_ended",
            "Key sessions ended or refused, by reason",
            m.key_sessions_ended.clone(),
        );
        m
    }

    /// Increments the counter of `family` labelled `key=value`.
    pub fn inc(family: &Family<Labels, Counter>, key: &'static str, value: impl Into<String>) {
        family.get_or_create(&vec![(key, value.into())]).inc();
    }
}
