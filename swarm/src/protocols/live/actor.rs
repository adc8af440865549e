//! The live protocol's actor: the glue between the swarm and the IO-less
//! cores. The event loop hands it gossip messages on Vilokanam topics,
//! chunk requests and responses, peer changes, timer ticks and commands;
//! it asks [`RelayCore`] and [`AnnouncePolicy`] what to do and carries
//! their outputs out on the swarm. It keeps only what IO needs: the
//! requests in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{
    InboundRequestId, OutboundFailure, OutboundRequestId, ResponseChannel,
};
use libp2p::{PeerId, Swarm};
use tracing::{debug, info, warn};

use super::announce::{AnnounceConfig, AnnouncePolicy};
use super::core::{
    Chunk, FetchError, FetchKey, JoinReason, Output, Part, PartKey, Rejection, RelayConfig,
    RelayCore, Verdict,
};
use super::wire::{
    ChunkRequest, ChunkResponse, GossipMessage, SignedAnnouncement, SignedVodAnnouncement,
    StreamId, ANNOUNCE_TOPIC,
};
use crate::behaviour::Behaviour;
use crate::metrics::Metrics;
use crate::network::{ChunkMeta, Emitter, Event, RejectReason, SwarmError};
use crate::protocols::bandwidth::{
    BandwidthPayment, CreditLedger, LedgerConfig, LedgerTotals, PeerAccount, ServeDecision,
};
use crate::scoring::{topic_score_params, AppScores};

/// Maps the core's monotonic instants to wall-clock milliseconds (for the
/// API's "ready at" times), anchored once at start.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    at: Instant,
    ms: u64,
}

impl WallClock {
    /// Anchors `at` to the current wall clock.
    pub fn anchored(at: Instant) -> Self {
        WallClock { at, ms: unix_ms() }
    }

    /// `t` in unix milliseconds.
    pub fn ms(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.at) {
            Some(d) => self.ms + d.as_millis() as u64,
            None => self
                .ms
                .saturating_sub(self.at.duration_since(t).as_millis() as u64),
        }
    }
}

/// The wall clock in unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the actor needs from its surroundings for one step.
pub struct Ctx<'a> {
    /// The swarm (owned by the event loop).
    pub swarm: &'a mut Swarm<Behaviour>,
    /// Where events go.
    pub events: &'a mut Emitter,
    /// Metrics.
    pub metrics: &'a Metrics,
    /// Application scores.
    pub scores: &'a mut AppScores,
}

/// The live protocol's actor.
pub struct LiveActor {
    core: RelayCore,
    policy: AnnouncePolicy,
    fetches: HashMap<OutboundRequestId, (FetchKey, PeerId)>,
    /// Part requests in flight (bounded by the core's pending parts).
    part_fetches: HashMap<OutboundRequestId, (PartKey, PeerId)>,
    /// Terms and payment requests in flight (bounded by connected peers
    /// and by payloads verified: one payment per payload at most).
    control: HashMap<OutboundRequestId, (PeerId, Control)>,
    ledger: CreditLedger,
    /// Payloads metered to a peer whose response is still being sent
    /// (bounded by libp2p's limit on concurrent inbound streams): a
    /// response that fails to go out is taken off the peer's account.
    metered: HashMap<InboundRequestId, (PeerId, StreamId, u64)>,
    relay_all: bool,
    clock: WallClock,
}

/// A bandwidth request in flight.
#[derive(Debug)]
enum Control {
    Terms,
    /// A payment; told whether the peer received it.
    Pay(tokio::sync::oneshot::Sender<bool>),
}

/// What the ledger holds, for the API and metrics.
#[derive(Clone, Debug, Default)]
pub struct LedgerSnapshot {
    /// This node's terms.
    pub terms: crate::protocols::bandwidth::BandwidthTerms,
    /// Every peer's account.
    pub accounts: Vec<(PeerId, PeerAccount)>,
    /// Payload bytes served per stream.
    pub streams: Vec<(StreamId, u64)>,
    /// The totals.
    pub totals: LedgerTotals,
    /// Owed at this node's fee over all accounts (planck).
    pub earned: u128,
    /// Owed and unpaid over all accounts (planck).
    pub outstanding: u128,
}

impl LiveActor {
    /// An actor with empty cores.
    pub fn new(
        relay: RelayConfig,
        announce: AnnounceConfig,
        ledger: LedgerConfig,
        relay_all: bool,
        now: Instant,
    ) -> Self {
        LiveActor {
            core: RelayCore::new(relay),
            policy: AnnouncePolicy::new(announce),
            fetches: HashMap::new(),
            part_fetches: HashMap::new(),
            control: HashMap::new(),
            ledger: CreditLedger::new(ledger),
            metered: HashMap::new(),
            relay_all,
            clock: WallClock::anchored(now),
        }
    }

    /// The relay core (read-only, for stats and serving).
    pub fn core(&self) -> &RelayCore {
        &self.core
    }

    /// Streams the announcement policy tracks.
    pub fn tracked_announcements(&self) -> usize {
        self.policy.tracked()
    }

    /// Peers with an announcement rate bucket.
    pub fn announce_sources(&self) -> usize {
        self.policy.sources()
    }

    /// Payload requests in flight.
    pub fn fetches_in_flight(&self) -> usize {
        self.fetches.len() + self.part_fetches.len()
    }

    /// A gossip message arrived on one of our topics.
    pub fn on_gossip(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        source: PeerId,
        msg_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let topic = message.topic.as_str();
        let decoded = GossipMessage::decode(&message.data);
        if topic == ANNOUNCE_TOPIC {
            match decoded {
                Ok(GossipMessage::Announce(a)) => self.on_announcement(ctx, now, source, msg_id, a),
                Ok(GossipMessage::Vod(v)) => self.on_vod(ctx, now, source, msg_id, v),
                Ok(GossipMessage::Chunk(_) | GossipMessage::Part(_)) => {
                    let r = Rejection::WrongKind {
                        kind: "a chunk or part header",
                        topic: topic.to_owned(),
                    };
                    self.reject(ctx, &msg_id, source, "malformed", r)
                }
                Err(e) => self.reject(ctx, &msg_id, source, "malformed", Rejection::Invalid(e)),
            }
            return;
        }
        let Some(stream) = StreamId::from_topic(topic) else {
            let r = Rejection::WrongKind {
                kind: "a message",
                topic: topic.to_owned(),
            };
            return self.reject(ctx, &msg_id, source, "malformed", r);
        };
        match decoded {
            Ok(GossipMessage::Chunk(h)) => {
                let out = self.core.on_gossip_header(now, msg_id, source, &stream, h);
                self.apply(ctx, out);
            }
            Ok(GossipMessage::Part(h)) => {
                let out = self.core.on_gossip_part(now, msg_id, source, &stream, h);
                self.apply(ctx, out);
            }
            Ok(GossipMessage::Announce(_) | GossipMessage::Vod(_)) => {
                let r = Rejection::WrongKind {
                    kind: "an announcement",
                    topic: topic.to_owned(),
                };
                self.reject(ctx, &msg_id, source, "malformed", r)
            }
            Err(e) => self.reject(ctx, &msg_id, source, "malformed", Rejection::Invalid(e)),
        }
    }

    fn on_announcement(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        source: PeerId,
        msg_id: gossipsub::MessageId,
        a: SignedAnnouncement,
    ) {
        let d = self.policy.on_announcement(now, unix_ms(), source, &a);
        match d.verdict {
            Verdict::Reject(r) => self.reject(ctx, &msg_id, source, "announce", r),
            Verdict::Ignore(why) => {
                debug!(peer = %source, reason = why.label(), "ignored announcement");
                count_verdict(ctx.metrics, "announce", why.label());
                report(ctx.swarm, &msg_id, &source, MessageAcceptance::Ignore);
            }
            Verdict::Accept => {
                count_verdict(ctx.metrics, "announce", "accept");
                report(ctx.swarm, &msg_id, &source, MessageAcceptance::Accept);
                let stream = a.announcement.stream.clone();
                if a.announcement.ended {
                    self.core.on_ended(now, &stream);
                } else {
                    self.core.on_live(&stream);
                    if self.relay_all && !self.core.is_joined(&stream) {
                        // A stream with no chunk yet is followed from 0.
                        let start = a.announcement.last_seq.is_none().then_some(0);
                        if let Err(e) =
                            self.join(ctx, now, stream.clone(), JoinReason::Relay, start)
                        {
                            debug!(stream = %stream, error = %e, "not relaying");
                            Metrics::inc(&ctx.metrics.joins_refused, "reason", "relay_cap");
                        }
                    }
                }
                ctx.events.emit(Event::Announcement {
                    announcement: Box::new(a),
                    changed: d.changed,
                });
            }
        }
    }

    fn on_vod(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        source: PeerId,
        msg_id: gossipsub::MessageId,
        v: SignedVodAnnouncement,
    ) {
        match self.policy.on_vod(now, unix_ms(), source, &v) {
            Verdict::Reject(r) => self.reject(ctx, &msg_id, source, "vod", r),
            Verdict::Ignore(why) => {
                debug!(peer = %source, reason = why.label(), "ignored VOD announcement");
                count_verdict(ctx.metrics, "vod", why.label());
                report(ctx.swarm, &msg_id, &source, MessageAcceptance::Ignore);
            }
            Verdict::Accept => {
                count_verdict(ctx.metrics, "vod", "accept");
                report(ctx.swarm, &msg_id, &source, MessageAcceptance::Accept);
                ctx.events.emit(Event::VodAnnounced {
                    vod: Box::new(v),
                    source,
                });
            }
        }
    }

    /// Rejects a gossip message (P4 penalty for its sender) and reports why.
    fn reject(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg_id: &gossipsub::MessageId,
        source: PeerId,
        kind: &'static str,
        reason: Rejection,
    ) {
        warn!(peer = %source, %reason, "rejected gossip message");
        count_verdict(ctx.metrics, kind, "reject");
        report(ctx.swarm, msg_id, &source, MessageAcceptance::Reject);
        ctx.events.emit(Event::Rejected {
            peer: source,
            reason: RejectReason::Gossip(reason),
        });
    }

    /// A remote peer subscribed to a topic.
    pub fn on_subscribed(&mut self, ctx: &mut Ctx<'_>, now: Instant, peer: PeerId, topic: &str) {
        ctx.events.emit(Event::Subscribed {
            peer,
            topic: topic.to_owned(),
        });
        if let Some(stream) = StreamId::from_topic(topic) {
            let out = self.core.peer_joined(now, &stream, peer);
            self.apply(ctx, out);
        }
    }

    /// A remote peer unsubscribed from a topic.
    pub fn on_unsubscribed(&mut self, ctx: &mut Ctx<'_>, now: Instant, peer: PeerId, topic: &str) {
        if let Some(stream) = StreamId::from_topic(topic) {
            let out = self.core.peer_left_stream(now, &stream, &peer);
            self.apply(ctx, out);
        }
    }

    /// A peer's last connection closed.
    pub fn on_disconnected(&mut self, ctx: &mut Ctx<'_>, now: Instant, peer: PeerId) {
        self.policy.peer_left(&peer);
        let out = self.core.peer_left(now, &peer);
        self.apply(ctx, out);
    }

    /// A peer asked for a chunk, for the terms, or sent a payment.
    pub fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        peer: PeerId,
        request_id: InboundRequestId,
        request: ChunkRequest,
        channel: ResponseChannel<ChunkResponse>,
    ) {
        let response = match request {
            ChunkRequest::Terms => ChunkResponse::Terms(*self.ledger.terms()),
            ChunkRequest::Pay(payment) => {
                ctx.metrics.bandwidth_vouchers_in.inc();
                ctx.events.emit(Event::PaymentReceived { peer, payment });
                ChunkResponse::PayReceived
            }
            request => match self.core.serve(&request) {
                found @ (ChunkResponse::Found { .. } | ChunkResponse::Part { .. }) => {
                    let (stream, len) = match &found {
                        ChunkResponse::Found { header, payload } => {
                            (header.header.stream.clone(), payload.len() as u64)
                        }
                        ChunkResponse::Part { header, payload } => {
                            (header.header.stream.clone(), payload.len() as u64)
                        }
                        _ => unreachable!("matched above"),
                    };
                    match self.ledger.check(now, peer, len) {
                        ServeDecision::Serve => {
                            self.ledger.served(now, peer, &stream, len);
                            if !self.ledger.terms().is_free() {
                                self.metered.insert(request_id, (peer, stream, len));
                            }
                            ctx.metrics.payload_bytes_out.inc_by(len);
                            found
                        }
                        ServeDecision::Refuse {
                            owed,
                            paid,
                            credit_bytes,
                        } => {
                            ctx.metrics.bandwidth_refusals.inc();
                            if self.ledger.account(&peer).is_some_and(|a| a.refused == 1) {
                                ctx.metrics.bandwidth_cut_offs.inc();
                            }
                            debug!(%peer, owed, paid, "refused a payload until paid");
                            ChunkResponse::PaymentRequired {
                                owed,
                                paid,
                                credit_bytes,
                            }
                        }
                    }
                }
                other => other,
            },
        };
        let label = match response {
            ChunkResponse::Found { .. } => "found",
            ChunkResponse::Part { .. } => "part",
            ChunkResponse::NotFound => "not_found",
            ChunkResponse::Terms(_) => "terms",
            ChunkResponse::PaymentRequired { .. } => "payment_required",
            ChunkResponse::PayReceived => "pay_received",
        };
        Metrics::inc(&ctx.metrics.served, "result", label);
        let _ = ctx
            .swarm
            .behaviour_mut()
            .chunks
            .send_response(channel, response);
    }

    /// A peer answered one of our requests.
    pub fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        id: OutboundRequestId,
        response: ChunkResponse,
    ) {
        if let Some((peer, what)) = self.control.remove(&id) {
            match (what, response) {
                (Control::Terms, ChunkResponse::Terms(terms)) => {
                    ctx.events.emit(Event::Terms { peer, terms })
                }
                (Control::Pay(reply), r) => {
                    let _ = reply.send(r == ChunkResponse::PayReceived);
                }
                (Control::Terms, _) => debug!(%peer, "peer answered terms with something else"),
            }
            return;
        }
        if let ChunkResponse::Found { payload, .. } | ChunkResponse::Part { payload, .. } =
            &response
        {
            ctx.metrics.payload_bytes_in.inc_by(payload.len() as u64);
        }
        if let Some((key, from)) = self.part_fetches.remove(&id) {
            let out = self.core.on_part_result(now, key, from, Ok(response));
            return self.apply(ctx, out);
        }
        let Some((key, from)) = self.fetches.remove(&id) else {
            return;
        };
        let out = self.core.on_fetch_result(now, key, from, Ok(response));
        self.apply(ctx, out);
    }

    /// One of our requests failed.
    pub fn on_outbound_failure(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        id: OutboundRequestId,
        error: &OutboundFailure,
    ) {
        if let Some((peer, what)) = self.control.remove(&id) {
            debug!(%peer, ?what, %error, "bandwidth request failed");
            if let Control::Pay(reply) = what {
                let _ = reply.send(false);
            }
            return;
        }
        let error_kind = match error {
            OutboundFailure::Timeout => FetchError::Timeout,
            OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => {
                FetchError::Disconnected
            }
            OutboundFailure::UnsupportedProtocols => FetchError::Unsupported,
            OutboundFailure::Io(e) => FetchError::Io(e.to_string()),
        };
        if let Some((key, from)) = self.part_fetches.remove(&id) {
            ctx.metrics.fetch_failures.inc();
            debug!(peer = %from, %error, "part request failed");
            let out = self.core.on_part_result(now, key, from, Err(error_kind));
            return self.apply(ctx, out);
        }
        let Some((key, from)) = self.fetches.remove(&id) else {
            return;
        };
        ctx.metrics.fetch_failures.inc();
        debug!(peer = %from, %error, "chunk request failed");
        let out = self.core.on_fetch_result(now, key, from, Err(error_kind));
        self.apply(ctx, out);
    }

    /// A response went out: its bytes stay on the peer's account.
    pub fn on_response_sent(&mut self, request_id: InboundRequestId) {
        self.metered.remove(&request_id);
    }

    /// A response could not be sent (the connection closed, the stream
    /// failed): the peer never got the payload, so it does not owe it.
    pub fn on_inbound_failure(&mut self, request_id: InboundRequestId) {
        if let Some((peer, stream, len)) = self.metered.remove(&request_id) {
            self.ledger.unserved(&peer, &stream, len);
        }
    }

    /// Asks a newly connected peer for its bandwidth terms.
    pub fn ask_terms(&mut self, ctx: &mut Ctx<'_>, peer: PeerId) {
        let id = ctx
            .swarm
            .behaviour_mut()
            .chunks
            .send_request(&peer, ChunkRequest::Terms);
        self.control.insert(id, (peer, Control::Terms));
    }

    /// Sends `peer` a voucher for payloads it served.
    pub fn pay(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer: PeerId,
        payment: BandwidthPayment,
        reply: tokio::sync::oneshot::Sender<bool>,
    ) {
        let id = ctx
            .swarm
            .behaviour_mut()
            .chunks
            .send_request(&peer, ChunkRequest::Pay(payment));
        self.control.insert(id, (peer, Control::Pay(reply)));
        self.core.peer_paid(&peer);
    }

    /// The node decided what it makes of `peer`'s terms.
    pub fn set_peer_price(&mut self, peer: PeerId, price: super::core::PeerPrice) {
        self.core.set_peer_price(peer, price);
    }

    /// The node checked a voucher from `peer`: it raised what the peer
    /// paid by `raised`.
    pub fn credit(&mut self, now: Instant, peer: PeerId, raised: u128) {
        if self.ledger.paid(now, peer, raised) {
            debug!(%peer, "paid up: served again");
        }
    }

    /// What the ledger holds.
    pub fn ledger(&self) -> LedgerSnapshot {
        LedgerSnapshot {
            terms: *self.ledger.terms(),
            accounts: self.ledger.accounts(),
            streams: self.ledger.streams(),
            totals: self.ledger.totals(),
            earned: self.ledger.earned(),
            outstanding: self.ledger.outstanding(),
        }
    }

    /// Advances the cores' timers.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        let out = self.core.tick(now);
        self.apply(ctx, out);
        let stats = self.core.stats();
        ctx.metrics.streams_joined.set(stats.streams as i64);
        ctx.metrics.streams_relayed.set(stats.relayed as i64);
        ctx.metrics.chunk_bytes_held.set(stats.bytes as i64);
    }

    /// Follows `stream` for `reason`.
    pub fn join(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        stream: StreamId,
        reason: JoinReason,
        start: Option<u64>,
    ) -> Result<(), SwarmError> {
        let topic_peers =
            crate::behaviour::topic_peers(&ctx.swarm.behaviour().gossipsub, &stream.topic());
        let out = self.core.join(now, stream, reason, start, topic_peers)?;
        self.apply(ctx, out);
        Ok(())
    }

    /// Stops following `stream` for `reason`.
    pub fn leave(&mut self, ctx: &mut Ctx<'_>, stream: &StreamId, reason: JoinReason) {
        let out = self.core.leave(stream, reason);
        self.apply(ctx, out);
    }

    /// Publishes a chunk this node created.
    pub fn publish(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        chunk: Chunk,
    ) -> Result<(), SwarmError> {
        chunk.header.verify()?;
        chunk.header.check_payload(&chunk.payload)?;
        let stream = chunk.stream().clone();
        self.join(ctx, now, stream.clone(), JoinReason::Publish, None)?;
        let data = GossipMessage::Chunk(chunk.header.clone()).encode();
        let out = self.core.publish_local(now, chunk);
        if let Err(e) = ctx
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(stream.topic()), data)
        {
            // No peers yet is normal for a creator starting alone; peers
            // that join later pull the chunk by sequence.
            debug!(stream = %stream, error = %e, "chunk header not published");
        }
        self.apply(ctx, out);
        Ok(())
    }

    /// Publishes a part this node cut and signed: its header on the
    /// stream topic, the payload served to peers that pull it.
    pub fn publish_part(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        part: Part,
    ) -> Result<(), SwarmError> {
        part.header.verify()?;
        part.header.check_payload(&part.payload)?;
        let stream = part.stream().clone();
        self.join(ctx, now, stream.clone(), JoinReason::Publish, None)?;
        let data = GossipMessage::Part(part.header.clone()).encode();
        let out = self.core.publish_local_part(now, part);
        if let Err(e) = ctx
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(stream.topic()), data)
        {
            debug!(stream = %stream, error = %e, "part header not published");
        }
        self.apply(ctx, out);
        Ok(())
    }

    /// Publishes an announcement this node signed.
    pub fn announce(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        a: &SignedAnnouncement,
    ) -> Result<(), SwarmError> {
        a.verify()?;
        self.policy.on_local(now, unix_ms(), a);
        let data = GossipMessage::Announce(a.clone()).encode();
        if let Err(e) = ctx
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(ANNOUNCE_TOPIC), data)
        {
            debug!(error = %e, "announcement not published");
        }
        Ok(())
    }

    /// Publishes a VOD announcement this node signed (its own VOD).
    pub fn announce_vod(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        v: &SignedVodAnnouncement,
    ) -> Result<(), SwarmError> {
        v.verify()?;
        self.policy.on_local_vod(now, v);
        let data = GossipMessage::Vod(v.clone()).encode();
        if let Err(e) = ctx
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(ANNOUNCE_TOPIC), data)
        {
            debug!(error = %e, "VOD announcement not published");
        }
        Ok(())
    }

    /// One held chunk.
    pub fn chunk(&self, stream: &StreamId, seq: u64) -> Option<Arc<Chunk>> {
        self.core.get(stream, seq).map(|h| h.chunk.clone())
    }

    /// The held chunks of `stream`.
    pub fn chunks(&self, stream: &StreamId) -> Vec<ChunkMeta> {
        self.core
            .chunks(stream)
            .into_iter()
            .map(|held| {
                let h = &held.chunk.header.header;
                ChunkMeta {
                    seq: h.seq,
                    cid: h.cid.to_string(),
                    size: h.size,
                    duration_us: h.duration_us,
                    published_at_ms: h.published_at_ms,
                    ready_at_ms: self.clock.ms(held.ready_at),
                    discontinuity: h.discontinuity,
                }
            })
            .collect()
    }

    /// Carries out the cores' outputs.
    fn apply(&mut self, ctx: &mut Ctx<'_>, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Subscribe(stream) => {
                    let topic = IdentTopic::new(stream.topic());
                    let g = &mut ctx.swarm.behaviour_mut().gossipsub;
                    let _ = g.set_topic_params(topic.clone(), topic_score_params());
                    if let Err(e) = g.subscribe(&topic) {
                        // Only a topic the filter refuses can fail, and
                        // stream topics always pass: forget the stream.
                        warn!(stream = %stream, error = %e, "cannot subscribe; leaving");
                        let _ = self.core.remove(&stream);
                    } else {
                        info!(stream = %stream, "joined stream");
                    }
                }
                Output::Unsubscribe(stream) => {
                    let topic = IdentTopic::new(stream.topic());
                    ctx.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
                    info!(stream = %stream, "left stream");
                }
                Output::Validation {
                    msg_id,
                    source,
                    verdict,
                } => {
                    let (acceptance, label) = match &verdict {
                        Verdict::Accept => (MessageAcceptance::Accept, "accept"),
                        Verdict::Reject(r) => {
                            warn!(peer = %source, reason = %r, "rejected chunk header");
                            ctx.events.emit(Event::Rejected {
                                peer: source,
                                reason: RejectReason::Gossip(r.clone()),
                            });
                            (MessageAcceptance::Reject, "reject")
                        }
                        Verdict::Ignore(why) => {
                            debug!(peer = %source, reason = why.label(), "ignored chunk header");
                            (MessageAcceptance::Ignore, why.label())
                        }
                    };
                    count_verdict(ctx.metrics, "chunk", label);
                    if !report(ctx.swarm, &msg_id, &source, acceptance) {
                        // The message left gossipsub's cache before the
                        // verdict: it will not be forwarded from here.
                        Metrics::inc(&ctx.metrics.gossip, "verdict", "lost_from_cache");
                    }
                }
                Output::FetchPart { peer, request, key } => {
                    let id = ctx
                        .swarm
                        .behaviour_mut()
                        .chunks
                        .send_request(&peer, request);
                    self.part_fetches.insert(id, (key, peer));
                }
                Output::PartReady(part) => {
                    ctx.metrics.parts_ready.inc();
                    ctx.events.emit(Event::PartReady(part));
                }
                Output::PartMissing((stream, seq, index)) => {
                    ctx.metrics.parts_missing.inc();
                    debug!(stream = %stream, seq, part = index, "part unavailable; its segment comes whole");
                }
                Output::Fetch { peer, request, key } => {
                    let id = ctx
                        .swarm
                        .behaviour_mut()
                        .chunks
                        .send_request(&peer, request);
                    self.fetches.insert(id, (key, peer));
                }
                Output::Penalize { peer, reason } => {
                    warn!(%peer, %reason, "penalising peer");
                    Metrics::inc(&ctx.metrics.penalties, "reason", reason.label());
                    let score = ctx.scores.penalize(peer);
                    ctx.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer, score);
                    ctx.events.emit(Event::Rejected {
                        peer,
                        reason: RejectReason::Misbehaviour(reason),
                    });
                }
                Output::Ready(chunk) => {
                    ctx.metrics.chunks_ready.inc();
                    ctx.events.emit(Event::ChunkReady(chunk));
                }
                Output::Verified {
                    peer,
                    stream,
                    bytes,
                } => ctx.events.emit(Event::Verified {
                    peer,
                    stream,
                    bytes,
                }),
                Output::PaymentDemanded { peer, owed, paid } => {
                    debug!(%peer, owed, paid, "peer asks to be paid before serving more");
                    // Its terms never arrived (that request failed): ask
                    // again, or it can never be paid.
                    if self.core.peer_price(&peer).is_none() {
                        self.ask_terms(ctx, peer);
                    }
                    ctx.events.emit(Event::PaymentDemanded { peer, owed, paid });
                }
                Output::Missing { stream, seq } => {
                    ctx.metrics.chunks_missing.inc();
                    warn!(stream = %stream, seq, "chunk unavailable, skipping");
                    ctx.events.emit(Event::ChunkMissing { stream, seq });
                }
            }
        }
    }
}

fn report(
    swarm: &mut Swarm<Behaviour>,
    msg_id: &gossipsub::MessageId,
    source: &PeerId,
    acceptance: MessageAcceptance,
) -> bool {
    swarm
        .behaviour_mut()
        .gossipsub
        .report_message_validation_result(msg_id, source, acceptance)
}

/// Gives gossipsub an actor's verdict on a message (shared by the
/// protocol actors).
pub(crate) fn report_to(
    ctx: &mut Ctx<'_>,
    msg_id: &gossipsub::MessageId,
    source: &PeerId,
    acceptance: MessageAcceptance,
) {
    report(ctx.swarm, msg_id, source, acceptance);
}

/// Counts a gossip verdict by kind (shared by the protocol actors).
pub(crate) fn count_verdict(metrics: &Metrics, kind: &'static str, verdict: &'static str) {
    metrics
        .gossip
        .get_or_create(&vec![
            ("kind", kind.to_string()),
            ("verdict", verdict.to_string()),
        ])
        .inc();
}
