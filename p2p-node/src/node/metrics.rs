//! Node-level Prometheus metrics (the swarm registers its own).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Counters and gauges of the node's services.
#[derive(Clone, Default)]
pub struct NodeMetrics {
    /// Segments published by this node.
    pub segments_published: Counter,
    /// Segments refused at ingest, by reason.
    pub segments_refused: Family<Labels, Counter>,
    /// Messages or payloads refused from peers, by reason.
    pub rejected_from_peers: Family<Labels, Counter>,
    /// Announcements this node signed and sent.
    pub announcements_sent: Counter,
    /// Streams in the catalog.
    pub known_streams: Gauge,
    /// HTTP requests refused because the API was at its concurrency limit.
    pub http_busy: Counter,
    /// HTTP requests refused for a foreign `Origin`.
    pub http_cross_origin: Counter,
    /// Epoch keys this node sold (as a creator).
    pub keys_granted: Counter,
    /// Key requests refused, by reason.
    pub keys_refused: Family<Labels, Counter>,
    /// Planck earned: the sum of the best vouchers held (creator).
    pub earned_planck: Gauge,
    /// Planck of it claimed on chain.
    pub claimed_planck: Gauge,
    /// Planck this node signed over while watching (viewer).
    pub spent_planck: Gauge,
    /// Group flushes of the vouchers tree (vouchers kept ÷ this is what
    /// group commit saves in fsyncs).
    pub voucher_flushes: Gauge,
}

impl NodeMetrics {
    /// Registers the metrics under the `vilokanam_node` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let m = NodeMetrics::default();
        let r = registry.sub_registry_with_prefix("vilokanam_node");
        r.register(
            "segments_published",
            "Segments published by this node",
            m.segments_published.clone(),
        );
        r.register(
            "segments_refused",
            "Segments refused at ingest, by reason",
            m.segments_refused.clone(),
        );
        r.register(
            "rejected_from_peers",
            "Messages or payloads refused from peers, by reason",
            m.rejected_from_peers.clone(),
        );
        r.register(
            "announcements_sent",
            "Announcements signed and sent",
            m.announcements_sent.clone(),
        );
        r.register(
            "known_streams",
            "Streams in the catalog",
            m.known_streams.clone(),
        );
        r.register(
            "http_busy",
            "HTTP requests refused at the concurrency limit",
            m.http_busy.clone(),
        );
        r.register(
            "http_cross_origin",
            "HTTP requests refused for a foreign Origin",
            m.http_cross_origin.clone(),
        );
        r.register("keys_granted", "Epoch keys sold", m.keys_granted.clone());
        r.register(
            "keys_refused",
            "Key requests refused, by reason",
            m.keys_refused.clone(),
        );
        r.register(
            "earned_planck",
            "Planck of the best vouchers held as a payee",
            m.earned_planck.clone(),
        );
        r.register(
            "claimed_planck",
            "Planck claimed on chain",
            m.claimed_planck.clone(),
        );
        r.register(
            "spent_planck",
            "Planck signed over while watching",
            m.spent_planck.clone(),
        );
        r.register(
            "voucher_flushes",
            "Group flushes of held vouchers to disk",
            m.voucher_flushes.clone(),
        );
        m
    }

    /// Increments `family` labelled `key=value`.
    pub fn inc(family: &Family<Labels, Counter>, key: &'static str, value: impl Into<String>) {
        family.get_or_create(&vec![(key, value.into())]).inc();
    }
}
