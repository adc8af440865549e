//! Runs `/vilokanam/keys/1` on the swarm: outbound key requests with their
//! reply channels, inbound requests handed to the node (which checks the
//! voucher against the chain and decides with [`super::core::KeyServer`])
//! and answered by id. Both maps are bounded: past [`MAX_PENDING`]
//! inbound requests waiting for the node, a new one is answered `Busy` at
//! once; outbound ones end with the request-response timeout.

use std::collections::{HashMap, VecDeque};

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::oneshot;
use tracing::debug;

use super::wire::{KeyRefusal, KeyRequest, KeyResponse};
use crate::behaviour::Behaviour;
use crate::network::{Emitter, Event, SwarmError};

/// Inbound key requests waiting for the node's answer, at most.
pub const MAX_PENDING: usize = 256;

/// Reply to an outbound key request.
pub type KeyReply = oneshot::Sender<Result<KeyResponse, SwarmError>>;

/// The key protocol's state in the event loop.
#[derive(Default)]
pub struct KeysActor {
    outbound: HashMap<OutboundRequestId, KeyReply>,
    inbound: HashMap<u64, ResponseChannel<KeyResponse>>,
    order: VecDeque<u64>,
    next_id: u64,
}

impl KeysActor {
    /// Sends `request` to `peer` (dialing `addrs` if not connected).
    pub fn request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: KeyRequest,
        reply: KeyReply,
    ) {
        for a in addrs {
            swarm.add_peer_address(peer, a);
        }
        let id = swarm.behaviour_mut().keys.send_request(&peer, request);
        self.outbound.insert(id, reply);
    }

    /// Answers inbound request `id` (no-op if it timed out or was answered).
    pub fn respond(&mut self, swarm: &mut Swarm<Behaviour>, id: u64, response: KeyResponse) {
        if let Some(ch) = self.inbound.remove(&id) {
            self.order.retain(|x| *x != id);
            let _ = swarm.behaviour_mut().keys.send_response(ch, response);
        }
    }

    /// Handles an event of the key behaviour.
    pub fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        events: &mut Emitter,
        ev: request_response::Event<KeyRequest, KeyResponse>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.inbound.len() >= MAX_PENDING {
                        let _ = swarm
                            .behaviour_mut()
                            .keys
                            .send_response(channel, KeyResponse::Refused(KeyRefusal::Busy));
                        return;
                    }
                    let id = self.next_id;
                    self.next_id += 1;
                    self.inbound.insert(id, channel);
                    self.order.push_back(id);
                    events.emit(Event::KeyRequested {
                        id,
                        peer,
                        request: Box::new(request),
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(reply) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Err(SwarmError::Key {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound key request failed");
                // Its channel is gone; drop entries whose channel closed.
                self.inbound.retain(|_, ch| ch.is_open());
                let inbound = &self.inbound;
                self.order.retain(|id| inbound.contains_key(id));
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Inbound requests waiting for the node.
    pub fn pending(&self) -> usize {
        self.inbound.len()
    }
}
