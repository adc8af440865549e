//! Dispatch: commands and swarm events to the protocol actors (by protocol
//! and topic), plus what belongs to no protocol (dials, connections,
//! discovery).

use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identify, kad, mdns, request_response};
use tracing::{debug, info};

use super::{now, Command, Event, EventLoop, PeerInfo, SwarmError, SwarmStats};
use crate::behaviour::{peer_topics, BehaviourEvent, KAD_PROTOCOL};
use crate::metrics::Metrics;

impl EventLoop {
    pub(super) fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial(addr, reply) => {
                let opts = libp2p::swarm::dial_opts::DialOpts::from(addr.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.insert(id, (addr, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(SwarmError::Dial {
                            addr,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Join {
                stream,
                reason,
                start,
                reply,
            } => {
                let r = self
                    .live
                    .join(&mut ctx!(self), now(), stream, reason, start);
                if r.is_err() {
                    Metrics::inc(&self.metrics.joins_refused, "reason", "cap");
                }
                let _ = reply.send(r);
            }
            Command::Leave(stream, reason, reply) => {
                self.live.leave(&mut ctx!(self), &stream, reason);
                let _ = reply.send(());
            }
            Command::Publish(chunk, reply) => {
                let r = self.live.publish(&mut ctx!(self), now(), *chunk);
                let _ = reply.send(r);
            }
            Command::Announce(a, reply) => {
                let r = self.live.announce(&mut ctx!(self), now(), &a);
                let _ = reply.send(r);
            }
            Command::AnnounceVod(v, reply) => {
                let r = self.live.announce_vod(&mut ctx!(self), now(), &v);
                let _ = reply.send(r);
            }
            Command::ChatJoin(stream, reply) => {
                let _ = reply.send(self.chat.join(&mut ctx!(self), now(), stream));
            }
            Command::ChatLeave(stream, reply) => {
                self.followed_chats.remove(&stream);
                self.chat.leave(&mut ctx!(self), &stream);
                let _ = reply.send(());
            }
            Command::ChatSend(m, reply) => {
                let _ = reply.send(self.chat.send(&mut ctx!(self), now(), *m));
            }
            Command::ChatModerate(a, reply) => {
                let _ = reply.send(self.chat.moderate(&mut ctx!(self), *a));
            }
            Command::ChatState(stream, reply) => {
                let core = self.chat.core();
                let state = core.joined(&stream).then(|| {
                    (
                        core.history(&stream, crate::protocols::chat::wire::MAX_HISTORY),
                        core.moderators(&stream),
                    )
                });
                let _ = reply.send(state);
            }
            Command::SocialPut { record, own, reply } => {
                let _ = reply.send(self.social.put(&mut ctx!(self), *record, own));
            }
            Command::SocialGet(key, reply) => self.social.get(&mut ctx!(self), key, reply),
            Command::SocialLocal(key, reply) => {
                let _ = reply.send(self.social.held_one(&mut ctx!(self), &key));
            }
            Command::SocialHeld(kind, limit, reply) => {
                let _ = reply.send(self.social.held_records(&mut ctx!(self), kind, limit));
            }
            Command::Chunk(stream, seq, reply) => {
                let _ = reply.send(self.live.chunk(&stream, seq));
            }
            Command::PublishPart(part, reply) => {
                let r = self.live.publish_part(&mut ctx!(self), now(), *part);
                let _ = reply.send(r);
            }
            Command::Part(stream, seq, index, reply) => {
                let _ = reply.send(self.live.core().get_part(&stream, seq, index));
            }
            Command::Chunks(stream, reply) => {
                let _ = reply.send(self.live.chunks(&stream));
            }
            Command::Joined(reply) => {
                let _ = reply.send(self.live.core().joined());
            }
            Command::Peers(reply) => {
                let g = &self.swarm.behaviour().gossipsub;
                let topics: std::collections::HashMap<_, _> = peer_topics(g).into_iter().collect();
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer_id: *p,
                        score: g.peer_score(p),
                        app_score: self.scores.get(p),
                        topics: topics
                            .get(p)
                            .map(|t| t.iter().cloned().collect())
                            .unwrap_or_default(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Stats(reply) => {
                let g = &self.swarm.behaviour().gossipsub;
                let stats = SwarmStats {
                    core: self.live.core().stats(),
                    tracked_announcements: self.live.tracked_announcements(),
                    announce_sources: self.live.announce_sources(),
                    app_scores: self.scores.len(),
                    peers: self.swarm.connected_peers().count(),
                    remote_subscriptions: g.all_peers().map(|(_, ts)| ts.len()).sum(),
                    fetches_in_flight: self.live.fetches_in_flight(),
                };
                let _ = reply.send(stats);
            }
            // A price that arrives after its peer left is dropped: the core
            // forgets a peer's price when it disconnects, and must not
            // learn it again afterwards (that would grow with churn).
            Command::SetPeerPrice(peer, price) => {
                if self.swarm.is_connected(&peer) {
                    self.live.set_peer_price(peer, price)
                }
            }
            Command::Credit { peer, raised } => self.live.credit(now(), peer, raised),
            Command::Pay {
                peer,
                payment,
                reply,
            } => self.live.pay(&mut ctx!(self), peer, payment, reply),
            Command::Ledger(reply) => {
                let _ = reply.send(self.live.ledger());
            }
            Command::AddAddresses(peer, addrs, reply) => {
                for a in addrs {
                    self.swarm.add_peer_address(peer, a);
                }
                let _ = reply.send(());
            }
            Command::Shutdown(reply) => {
                // Handled in `run`; answering here keeps the match total.
                let _ = reply.send(());
            }
        }
    }

    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.events.emit(Event::Listening(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                num_established,
                ..
            } => {
                self.metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                debug!(peer = %peer_id, "connected");
                if num_established.get() == 1 {
                    self.live.ask_terms(&mut ctx!(self), peer_id);
                }
                self.events.emit(Event::PeerConnected {
                    peer: peer_id,
                    addr: endpoint.get_remote_address().clone(),
                });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some((addr, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(SwarmError::Dial {
                        addr,
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.metrics
                    .peers
                    .set(self.swarm.connected_peers().count() as i64);
                if num_established == 0 {
                    // Per-peer state lives only while the peer is connected.
                    self.scores.remove(&peer_id);
                    self.social.on_disconnected(&peer_id);
                    self.live.on_disconnected(&mut ctx!(self), now(), peer_id);
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                if message
                    .topic
                    .as_str()
                    .starts_with(crate::protocols::chat::wire::CHAT_TOPIC_PREFIX)
                {
                    self.chat.on_gossip(
                        &mut ctx!(self),
                        now(),
                        propagation_source,
                        message_id,
                        message,
                    );
                } else if message.topic.as_str() == crate::protocols::social::SOCIAL_TOPIC {
                    self.social.on_gossip(
                        &mut ctx!(self),
                        now(),
                        propagation_source,
                        message_id,
                        message,
                    );
                } else {
                    self.live.on_gossip(
                        &mut ctx!(self),
                        now(),
                        propagation_source,
                        message_id,
                        message,
                    );
                }
            }
            BehaviourEvent::ChatHistory(ev) => {
                self.chat.on_history_event(&mut ctx!(self), now(), ev);
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic, .. }) => {
                self.chat
                    .on_subscribed(&mut ctx!(self), peer_id, topic.as_str());
                self.social
                    .on_subscribed(&mut ctx!(self), peer_id, topic.as_str());
                self.live
                    .on_subscribed(&mut ctx!(self), now(), peer_id, topic.as_str());
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Unsubscribed { peer_id, topic }) => {
                self.live
                    .on_unsubscribed(&mut ctx!(self), now(), peer_id, topic.as_str());
            }
            BehaviourEvent::Chunks(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request_id,
                        request,
                        channel,
                    } => self.live.on_request(
                        &mut ctx!(self),
                        now(),
                        peer,
                        request_id,
                        request,
                        channel,
                    ),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => self
                        .live
                        .on_response(&mut ctx!(self), now(), request_id, response),
                }
            }
            BehaviourEvent::Chunks(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) => {
                self.live
                    .on_outbound_failure(&mut ctx!(self), now(), request_id, &error);
            }
            BehaviourEvent::Chunks(request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                debug!(%peer, %error, "inbound chunk request failed");
                self.live.on_inbound_failure(request_id);
            }
            BehaviourEvent::Chunks(request_response::Event::ResponseSent {
                request_id, ..
            }) => self.live.on_response_sent(request_id),
            BehaviourEvent::Keys(()) => {}
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })
                if self.config.discovery && info.protocols.contains(&KAD_PROTOCOL) =>
            {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                if !self.config.discovery {
                    return;
                }
                for (peer, addr) in list {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => {
                debug!(?result, "kad query progressed");
                self.social.on_query(&mut ctx!(self), id, result, step.last);
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. }) => {
                self.events.emit(Event::DhtPeer(peer));
            }
            BehaviourEvent::Kad(kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            }) => self
                .social
                .on_kad_put(&mut ctx!(self), now(), source, record),
            _ => {}
        }
    }
}
