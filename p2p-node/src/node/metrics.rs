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
    /// Bandwidth vouchers this node signed for payloads it pulled.
    pub bandwidth_vouchers_out: Counter,
    /// Planck signed over for bandwidth (this run's channel).
    pub bandwidth_spent_planck: Gauge,
    /// Bandwidth payments this node could not make, by reason.
    pub bandwidth_pay_failed: Family<Labels, Counter>,
    /// Bandwidth channels opened.
    pub bandwidth_channels_opened: Counter,
    /// Bandwidth vouchers from peers accepted (kept, peer credited).
    pub bandwidth_vouchers_accepted: Counter,
    /// Bandwidth vouchers from peers refused, by reason.
    pub bandwidth_vouchers_refused: Family<Labels, Counter>,
    /// Payload bytes served to peers (the ledger's count).
    pub bandwidth_served_bytes: Gauge,
    /// Planck owed for them at this node's fee.
    pub bandwidth_earned_planck: Gauge,
    /// Planck of it paid by vouchers.
    pub bandwidth_paid_planck: Gauge,
    /// Planck owed and unpaid (credit outstanding).
    pub bandwidth_outstanding_planck: Gauge,
    /// Peers cut off for unpaid bytes past their credit (times).
    pub bandwidth_cut_offs: Gauge,
    /// Chunks recorded (for VODs).
    pub chunks_recorded: Counter,
    /// Chunks that could not be recorded (quota, storage).
    pub record_failures: Counter,
    /// VODs built from recordings.
    pub vods_built: Counter,
    /// VODs other creators announced, new to this node.
    pub vods_heard: Counter,
    /// Chat messages shown (own, live and from history).
    pub chat_messages: Counter,
    /// Feed notifications (a followed creator live or ended).
    pub feed_notifications: Counter,
    /// Bytes recorded against the quota.
    pub recorded_bytes: Gauge,
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
            "chunks_recorded",
            "Chunks recorded for VODs",
            m.chunks_recorded.clone(),
        );
        r.register(
            "record_failures",
            "Chunks that could not be recorded (quota, storage)",
            m.record_failures.clone(),
        );
        r.register(
            "vods_built",
            "VODs built from recordings",
            m.vods_built.clone(),
        );
        r.register(
            "vods_heard",
            "VODs other creators announced, new to this node",
            m.vods_heard.clone(),
        );
        r.register(
            "feed_notifications",
            "Feed notifications: a followed creator went live or ended",
            m.feed_notifications.clone(),
        );
        r.register(
            "chat_messages",
            "Chat messages shown (own, live and from history)",
            m.chat_messages.clone(),
        );
        r.register(
            "recorded_bytes",
            "Bytes recorded against the quota",
            m.recorded_bytes.clone(),
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
        r.register(
            "bandwidth_vouchers_out",
            "Bandwidth vouchers signed for payloads pulled",
            m.bandwidth_vouchers_out.clone(),
        );
        r.register(
            "bandwidth_spent_planck",
            "Planck signed over for bandwidth",
            m.bandwidth_spent_planck.clone(),
        );
        r.register(
            "bandwidth_pay_failed",
            "Bandwidth payments not made, by reason",
            m.bandwidth_pay_failed.clone(),
        );
        r.register(
            "bandwidth_channels_opened",
            "Bandwidth channels opened",
            m.bandwidth_channels_opened.clone(),
        );
        r.register(
            "bandwidth_vouchers_accepted",
            "Bandwidth vouchers from peers accepted",
            m.bandwidth_vouchers_accepted.clone(),
        );
        r.register(
            "bandwidth_vouchers_refused",
            "Bandwidth vouchers from peers refused, by reason",
            m.bandwidth_vouchers_refused.clone(),
        );
        r.register(
            "bandwidth_served_bytes",
            "Payload bytes served to peers",
            m.bandwidth_served_bytes.clone(),
        );
        r.register(
            "bandwidth_earned_planck",
            "Planck owed for payload bytes served",
            m.bandwidth_earned_planck.clone(),
        );
        r.register(
            "bandwidth_paid_planck",
            "Planck of bandwidth owed that vouchers paid",
            m.bandwidth_paid_planck.clone(),
        );
        r.register(
            "bandwidth_outstanding_planck",
            "Planck of bandwidth owed and unpaid (credit outstanding)",
            m.bandwidth_outstanding_planck.clone(),
        );
        r.register(
            "bandwidth_cut_offs",
            "Peers cut off for unpaid bytes past their credit",
            m.bandwidth_cut_offs.clone(),
        );
        m
    }

    /// Increments `family` labelled `key=value`.
    pub fn inc(family: &Family<Labels, Counter>, key: &'static str, value: impl Into<String>) {
        family.get_or_create(&vec![(key, value.into())]).inc();
    }
}
