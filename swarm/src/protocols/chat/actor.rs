//! The chat actor: runs [`ChatCore`] on the swarm. It subscribes to chat
//! topics, checks every signature before the core sees a message, reports
//! gossipsub's verdict (relay, drop, or reject and penalise the peer), asks
//! peers for the history when it joins a chat, and answers their asks.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use lru::LruCache;
use tracing::{debug, info, warn};

use super::core::{ChatConfig, ChatCore, ChatOutput, Drop};
use super::wire::{
    chat_topic, stream_of_chat_topic, ChatGossip, HistoryRequest, HistoryResponse,
    SignedChatMessage, SignedModAction, MAX_HISTORY,
};
use crate::behaviour::topic_peers;
use crate::network::{Event, RejectReason, SwarmError};
use crate::protocols::live::actor::{count_verdict, report_to, unix_ms, Ctx};
use crate::protocols::live::core::Rejection;
use crate::protocols::live::wire::StreamId;
use crate::scoring::topic_score_params;

/// How often one peer may ask this node for one chat's history.
const HISTORY_ASK_INTERVAL: Duration = Duration::from_secs(5);
/// Peers asked for a chat's history when joining it.
const HISTORY_PEERS: usize = 2;
/// Peers whose last ask is remembered.
const HISTORY_ASKERS: usize = 1024;

/// The chat protocol's actor (owned by the event loop).
pub struct ChatActor {
    core: ChatCore,
    /// Chats whose history is still to be asked for (no peer in them yet).
    want_history: HashSet<StreamId>,
    /// History asks in flight.
    asks: HashMap<OutboundRequestId, (StreamId, PeerId)>,
    /// When each peer last asked us about each chat.
    askers: LruCache<(PeerId, StreamId), Instant>,
}

fn drop_label(d: &Drop) -> &'static str {
    match d {
        Drop::NotJoined => "not_joined",
        Drop::Duplicate => "duplicate",
        Drop::Stale(_) => "stale",
        Drop::Future(_) => "future",
        Drop::Banned => "banned",
        Drop::TimedOut { .. } => "timed_out",
        Drop::Deleted => "deleted",
        Drop::RateLimited { .. } => "rate_limited",
        Drop::SlowMode(_) => "slow_mode",
        Drop::FollowersOnly(_) => "followers_only",
        Drop::PaidOnly => "paid_only",
        Drop::NewKeyBudget => "new_key_budget",
        Drop::NotAllowed(_) => "not_allowed",
        Drop::Superseded => "superseded",
        Drop::Full => "full",
    }
}

impl ChatActor {
    /// An actor with no chats.
    pub fn new(config: ChatConfig) -> Self {
        ChatActor {
            core: ChatCore::new(config),
            want_history: HashSet::new(),
            asks: HashMap::new(),
            askers: LruCache::new(NonZeroUsize::new(HISTORY_ASKERS).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// The core (read-only).
    pub fn core(&self) -> &ChatCore {
        &self.core
    }

    /// Joins `stream`'s chat: subscribes, and asks a peer already in it
    /// for the recent history. `Ok(false)`: it was in it already.
    pub fn join(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        stream: StreamId,
    ) -> Result<bool, SwarmError> {
        match self.core.join(now, stream.clone()) {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(max) => {
                return Err(SwarmError::Chat(format!(
                    "this node is in {max} chats already (its maximum)"
                )))
            }
        }
        let topic = IdentTopic::new(chat_topic(&stream));
        let g = &mut ctx.swarm.behaviour_mut().gossipsub;
        let _ = g.set_topic_params(topic.clone(), topic_score_params());
        if let Err(e) = g.subscribe(&topic) {
            self.core.leave(&stream);
            return Err(SwarmError::Chat(format!(
                "cannot subscribe to the chat: {e}"
            )));
        }
        info!(%stream, "joined chat");
        // Two peers, when there are: one that leaves an action out of its
        // answer (a ban, say) is made up for by the other (the rules merge
        // both; what both send is taken once).
        let mut peers = topic_peers(&ctx.swarm.behaviour().gossipsub, &chat_topic(&stream));
        peers.truncate(HISTORY_PEERS);
        if peers.is_empty() {
            self.want_history.insert(stream);
            return Ok(true);
        }
        for p in peers {
            self.ask_history(ctx, stream.clone(), p);
        }
        Ok(true)
    }

    /// Leaves `stream`'s chat.
    pub fn leave(&mut self, ctx: &mut Ctx<'_>, stream: &StreamId) {
        if self.core.leave(stream) {
            let topic = IdentTopic::new(chat_topic(stream));
            ctx.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
            info!(%stream, "left chat");
        }
        self.want_history.remove(stream);
    }

    fn ask_history(&mut self, ctx: &mut Ctx<'_>, stream: StreamId, peer: PeerId) {
        let req = HistoryRequest {
            stream: stream.clone(),
            limit: MAX_HISTORY as u16,
        };
        let id = ctx
            .swarm
            .behaviour_mut()
            .chat_history
            .send_request(&peer, req);
        debug!(%stream, %peer, "asking for chat history");
        self.asks.insert(id, (stream, peer));
    }

    /// Publishes this node's own message (signed by the caller) after the
    /// same checks its peers will apply; it is shown here at once.
    pub fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        m: SignedChatMessage,
    ) -> Result<(), SwarmError> {
        m.verify().map_err(|e| SwarmError::Chat(e.to_string()))?;
        let out = self
            .core
            .on_message(now, unix_ms(), m.clone())
            .map_err(SwarmError::ChatRefused)?;
        self.publish(ctx, &m.message.stream, ChatGossip::Message(m.clone()));
        self.emit(ctx, out);
        Ok(())
    }

    /// Publishes a moderation action (signed by the caller) after checking
    /// that it takes effect here.
    pub fn moderate(&mut self, ctx: &mut Ctx<'_>, a: SignedModAction) -> Result<(), SwarmError> {
        a.verify().map_err(|e| SwarmError::Chat(e.to_string()))?;
        let out = self
            .core
            .on_own_action(unix_ms(), a.clone())
            .map_err(SwarmError::ChatRefused)?;
        self.publish(ctx, &a.action.stream, ChatGossip::Mod(a.clone()));
        self.emit(ctx, out);
        Ok(())
    }

    fn publish(&mut self, ctx: &mut Ctx<'_>, stream: &StreamId, g: ChatGossip) {
        let topic = IdentTopic::new(chat_topic(stream));
        match ctx
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, g.encode())
        {
            Ok(_) => count_verdict(ctx.metrics, "chat_out", "published"),
            // Alone in the chat: it is held here and reaches late joiners
            // through the history.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                count_verdict(ctx.metrics, "chat_out", "no_peers")
            }
            Err(e) => {
                warn!(%stream, error = %e, "cannot publish to the chat");
                count_verdict(ctx.metrics, "chat_out", "failed")
            }
        }
    }

    fn emit(&mut self, ctx: &mut Ctx<'_>, out: Vec<ChatOutput>) {
        for o in out {
            match o {
                ChatOutput::Deliver {
                    message,
                    from_history,
                } => ctx.events.emit(Event::ChatMessage {
                    message: Box::new(message),
                    from_history,
                }),
                ChatOutput::Applied(a) => ctx.events.emit(Event::ChatModeration {
                    action: Box::new(a),
                }),
            }
        }
    }

    /// A message on a chat topic: decoded, its signature checked, then the
    /// core's rules; the verdict goes back to gossipsub.
    pub fn on_gossip(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        source: PeerId,
        msg_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let topic = message.topic.as_str().to_owned();
        let decoded = ChatGossip::decode(&message.data).and_then(|g| {
            match &g {
                ChatGossip::Message(m) => m.verify()?,
                ChatGossip::Mod(a) => a.verify()?,
            }
            Ok(g)
        });
        let g = match decoded {
            Ok(g) => g,
            Err(e) => return self.reject(ctx, &msg_id, source, Rejection::Invalid(e)),
        };
        if stream_of_chat_topic(&topic).as_ref() != Some(g.stream()) {
            let r = Rejection::WrongTopic {
                header: g.stream().to_string(),
                topic,
            };
            return self.reject(ctx, &msg_id, source, r);
        }
        let (kind, result) = match g {
            ChatGossip::Message(m) => (
                "chat",
                self.core.on_gossip_message(now, unix_ms(), source, m),
            ),
            ChatGossip::Mod(a) => ("chat_mod", self.core.on_action(unix_ms(), a)),
        };
        match result {
            Ok(out) => {
                count_verdict(ctx.metrics, kind, "accept");
                report_to(ctx, &msg_id, &source, MessageAcceptance::Accept);
                self.emit(ctx, out);
            }
            Err(d) => {
                debug!(peer = %source, reason = %d, "chat gossip not relayed");
                count_verdict(ctx.metrics, kind, drop_label(&d));
                report_to(ctx, &msg_id, &source, MessageAcceptance::Ignore);
                ctx.events.emit(Event::ChatDropped {
                    peer: source,
                    reason: d,
                });
            }
        }
    }

    fn reject(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg_id: &gossipsub::MessageId,
        source: PeerId,
        reason: Rejection,
    ) {
        warn!(peer = %source, %reason, "rejected chat gossip");
        count_verdict(ctx.metrics, "chat", "reject");
        report_to(ctx, msg_id, &source, MessageAcceptance::Reject);
        ctx.events.emit(Event::Rejected {
            peer: source,
            reason: RejectReason::Gossip(reason),
        });
    }

    /// A peer subscribed to a topic: if it is a chat whose history this
    /// node still wants, ask it.
    pub fn on_subscribed(&mut self, ctx: &mut Ctx<'_>, peer: PeerId, topic: &str) {
        if let Some(stream) = stream_of_chat_topic(topic) {
            if self.want_history.remove(&stream) {
                self.ask_history(ctx, stream, peer);
            }
        }
    }

    /// A history ask or answer.
    pub fn on_history_event(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        ev: request_response::Event<HistoryRequest, HistoryResponse>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.answer(ctx, now, peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.on_answer(ctx, now, request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((stream, peer)) = self.asks.remove(&request_id) {
                    debug!(%stream, %peer, %error, "chat history ask failed");
                    if self.core.joined(&stream) {
                        // Another peer in the chat, or the next to join it.
                        let other =
                            topic_peers(&ctx.swarm.behaviour().gossipsub, &chat_topic(&stream))
                                .into_iter()
                                .find(|p| *p != peer);
                        match other {
                            Some(p) => self.ask_history(ctx, stream, p),
                            None => {
                                self.want_history.insert(stream);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        peer: PeerId,
        req: HistoryRequest,
        channel: ResponseChannel<HistoryResponse>,
    ) {
        let key = (peer, req.stream.clone());
        let too_soon = self
            .askers
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(*at) < HISTORY_ASK_INTERVAL);
        // Asked too often, or about a chat this node is not in: no answer
        // (the channel is dropped), so the asker tries another peer rather
        // than taking an empty history for the whole one.
        if too_soon || !self.core.joined(&req.stream) {
            count_verdict(
                ctx.metrics,
                "chat_history_in",
                if too_soon {
                    "too_frequent"
                } else {
                    "not_joined"
                },
            );
            drop(channel);
            return;
        }
        self.askers.put(key, now);
        count_verdict(ctx.metrics, "chat_history_in", "answered");
        let resp = self.core.history(&req.stream, usize::from(req.limit));
        let _ = ctx
            .swarm
            .behaviour_mut()
            .chat_history
            .send_response(channel, resp);
    }

    fn on_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        now: Instant,
        id: OutboundRequestId,
        mut resp: HistoryResponse,
    ) {
        let Some((stream, peer)) = self.asks.remove(&id) else {
            return;
        };
        // A forged entry is dropped (and counted), the rest kept: the
        // answering peer may have been fed it.
        let before = resp.messages.len() + resp.actions.len();
        resp.messages.retain(|m| m.verify().is_ok());
        resp.actions.retain(|a| a.verify().is_ok());
        let forged = before - resp.messages.len() - resp.actions.len();
        if forged > 0 {
            warn!(%stream, %peer, forged, "chat history held forged entries; dropped them");
            for _ in 0..forged {
                count_verdict(ctx.metrics, "chat_history_out", "forged");
            }
        }
        let out = self.core.on_history(now, unix_ms(), &stream, resp);
        count_verdict(ctx.metrics, "chat_history_out", "received");
        self.emit(ctx, out);
    }

    /// Releases messages that waited too long for an earlier one.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        let out = self.core.tick(now, unix_ms());
        self.emit(ctx, out);
    }
}
