//! What the event loop reports to the node, and how it reports it without
//! letting a slow consumer stall the network.
//!
//! The event channel is bounded. Events that the node cannot rebuild
//! ([`Event::is_critical`]: verified chunks, given-up chunks, listen
//! addresses, stream state changes) are never dropped: when the channel is
//! full they wait in a backlog that the event loop drains whenever the
//! channel has room, while it keeps serving the network. Only if the
//! backlog itself reaches its cap does the loop wait for the consumer
//! (back-pressure, never loss). Everything else (periodic announcement
//! repeats, rejections, connections) is dropped when the channel is full
//! and counted in `vilokanam_swarm_events_dropped`.

use std::collections::VecDeque;
use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::protocols::bandwidth::{BandwidthPayment, BandwidthTerms};
use crate::protocols::live::core::{Chunk, Misbehaviour, Part, Rejection};
use crate::protocols::live::wire::{SignedAnnouncement, StreamId};

/// Why something from a peer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// A gossip message failed validation (its sender got a P4 penalty).
    #[error("gossip message rejected: {0}")]
    Gossip(#[from] Rejection),
    /// A payload response was wrong (its sender lost application score).
    #[error("peer misbehaved: {0}")]
    Misbehaviour(#[from] Misbehaviour),
}

/// What the event loop reports to the node.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A verified chunk is available (published locally or fetched).
    ChunkReady(Arc<Chunk>),
    /// A verified part (LL-HLS) is available (published locally or
    /// fetched).
    PartReady(Arc<Part>),
    /// A chunk could not be obtained and is skipped.
    ChunkMissing {
        /// Stream.
        stream: StreamId,
        /// Sequence number.
        seq: u64,
    },
    /// A valid announcement passed the announcement policy.
    Announcement {
        /// The announcement (boxed: it is the largest event).
        announcement: Box<SignedAnnouncement>,
        /// Its stream is new here, or ended, or started again (not a
        /// periodic repeat).
        changed: bool,
    },
    /// A valid VOD announcement passed the announcement policy (new here,
    /// or a creator's periodic repeat).
    VodAnnounced {
        /// The creator's signed record (boxed: it is large).
        vod: Box<crate::protocols::live::wire::SignedVodAnnouncement>,
        /// The peer that forwarded it.
        source: PeerId,
    },
    /// Something from a peer was refused.
    Rejected {
        /// Who sent it.
        peer: PeerId,
        /// Why it was refused.
        reason: RejectReason,
    },
    /// A connection was established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: Multiaddr,
    },
    /// A new listen address.
    Listening(Multiaddr),
    /// A peer told its bandwidth terms (the node decides whether it pays
    /// them and says so with [`crate::Client::set_peer_price`]).
    Terms {
        /// The peer.
        peer: PeerId,
        /// Its terms (range-checked).
        terms: BandwidthTerms,
    },
    /// A payload pulled from `peer` verified: what the node owes it for,
    /// if it charges.
    Verified {
        /// Who served it.
        peer: PeerId,
        /// Its stream.
        stream: StreamId,
        /// Payload bytes.
        bytes: u64,
    },
    /// `peer` refuses to serve more until paid.
    PaymentDemanded {
        /// Who.
        peer: PeerId,
        /// What it says is owed (planck).
        owed: u128,
        /// What it says was paid.
        paid: u128,
    },
    /// `peer` sent a voucher for bandwidth it was served: the node checks
    /// it and credits the peer with what it raised
    /// ([`crate::Client::credit`]).
    PaymentReceived {
        /// Who sent it.
        peer: PeerId,
        /// The voucher.
        payment: BandwidthPayment,
    },
    /// A chat message to show (checked, in its sender's order, once).
    ChatMessage {
        /// The message as its sender signed it.
        message: Box<crate::protocols::chat::wire::SignedChatMessage>,
        /// From a peer's history answer (sent before this node joined).
        from_history: bool,
    },
    /// A well-signed chat message or action was not relayed, and why
    /// (banned, rate limit, not a moderator, ...; for diagnostics and
    /// tests, dropped when the node lags).
    ChatDropped {
        /// The peer it came from.
        peer: PeerId,
        /// Why.
        reason: crate::protocols::chat::Drop,
    },
    /// A social record changed what this node holds (from the topic, a DHT
    /// put or a lookup; dropped when the node lags: the store has it).
    SocialRecord {
        /// The record as now held (merged).
        record: Box<crate::protocols::social::SocialRecord>,
        /// The peer it came from (`None`: this node).
        from: Option<PeerId>,
    },
    /// A social record was refused, and why (for diagnostics and tests).
    SocialRefused {
        /// The peer it came from.
        from: Option<PeerId>,
        /// Its key, when it decoded.
        key: Option<crate::protocols::social::RecordKey>,
        /// Why.
        reason: crate::protocols::social::RecordError,
    },
    /// A peer entered the DHT routing table (discovery on).
    DhtPeer(PeerId),
    /// A social record was held back by a rate limit (not forwarded).
    SocialRateLimited {
        /// The forwarding peer.
        from: PeerId,
        /// The record's key.
        key: crate::protocols::social::RecordKey,
    },
    /// A moderation action took effect in a chat.
    ChatModeration {
        /// The action as its issuer signed it.
        action: Box<crate::protocols::chat::wire::SignedModAction>,
    },
    /// A remote peer subscribed to a Vilokanam topic (for tests and
    /// diagnostics; dropped when the node lags).
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
}

impl Event {
    /// Whether losing this event would leave the node wrong until restart.
    pub fn is_critical(&self) -> bool {
        match self {
            // Payments depend on these: a lost one is money not paid or
            // not credited.
            Event::ChunkReady(_)
            | Event::ChunkMissing { .. }
            | Event::Listening(_)
            | Event::Terms { .. }
            | Event::Verified { .. }
            | Event::PaymentDemanded { .. }
            | Event::PaymentReceived { .. } => true,
            Event::Announcement { changed, .. } => *changed,
            // A lost part only makes its segment listed whole.
            Event::PartReady(_)
            | Event::Rejected { .. }
            | Event::PeerConnected { .. }
            | Event::Subscribed { .. } => false,
            // Creators announce their VODs again for late joiners.
            Event::VodAnnounced { .. } => false,
            // A lost action is a ban not kept in the store (actions are
            // rate-limited per issuer). A lost message is only not shown
            // live: the chat's history still holds it, and a chat flood
            // must not hold up the video.
            Event::ChatModeration { .. } => true,
            Event::ChatMessage { .. } | Event::ChatDropped { .. } => false,
            Event::SocialRecord { .. }
            | Event::SocialRefused { .. }
            | Event::SocialRateLimited { .. }
            | Event::DhtPeer(_) => false,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Event::ChunkReady(_) => "chunk_ready",
            Event::PartReady(_) => "part_ready",
            Event::ChunkMissing { .. } => "chunk_missing",
            Event::Announcement { .. } => "announcement",
            Event::VodAnnounced { .. } => "vod_announced",
            Event::Rejected { .. } => "rejected",
            Event::PeerConnected { .. } => "peer_connected",
            Event::Listening(_) => "listening",
            Event::Subscribed { .. } => "subscribed",
            Event::Terms { .. } => "terms",
            Event::Verified { .. } => "verified",
            Event::PaymentDemanded { .. } => "payment_demanded",
            Event::PaymentReceived { .. } => "payment_received",
            Event::ChatMessage { .. } => "chat_message",
            Event::ChatDropped { .. } => "chat_dropped",
            Event::ChatModeration { .. } => "chat_moderation",
            Event::SocialRecord { .. } => "social_record",
            Event::DhtPeer(_) => "dht_peer",
            Event::SocialRefused { .. } => "social_refused",
            Event::SocialRateLimited { .. } => "social_rate_limited",
        }
    }
}

/// The event loop's side of the event channel.
pub struct Emitter {
    tx: mpsc::Sender<Event>,
    backlog: VecDeque<Event>,
    max_backlog: usize,
    metrics: Metrics,
}

impl Emitter {
    /// An emitter over `tx` with at most `max_backlog` critical events
    /// waiting.
    pub fn new(tx: mpsc::Sender<Event>, max_backlog: usize, metrics: Metrics) -> Self {
        Emitter {
            tx,
            backlog: VecDeque::new(),
            max_backlog: max_backlog.max(1),
            metrics,
        }
    }

    /// Hands `ev` to the node, keeps it for later, or drops it, as its kind
    /// says. Never waits.
    pub fn emit(&mut self, ev: Event) {
        if ev.is_critical() {
            if self.backlog.is_empty() {
                match self.tx.try_send(ev) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(ev)) => self.backlog.push_back(ev),
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            } else {
                self.backlog.push_back(ev);
            }
            self.metrics.events_backlog.set(self.backlog.len() as i64);
        } else if let Err(mpsc::error::TrySendError::Full(ev)) = self.tx.try_send(ev) {
            Metrics::inc(&self.metrics.events_dropped, "kind", ev.label());
        }
    }

    /// Whether critical events wait.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Whether the backlog is full and the loop must wait for the consumer.
    pub fn must_wait(&self) -> bool {
        self.backlog.len() >= self.max_backlog
    }

    /// Sends backlogged events while the channel has room; waits for room
    /// for the first one. Cancel-safe: an event leaves the backlog only
    /// once it is sent.
    pub async fn drain(&mut self) {
        let Ok(permit) = self.tx.reserve().await else {
            self.backlog.clear();
            return;
        };
        if let Some(ev) = self.backlog.pop_front() {
            permit.send(ev);
        }
        while let Some(ev) = self.backlog.pop_front() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.backlog.push_front(ev);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    break;
                }
            }
        }
        self.metrics.events_backlog.set(self.backlog.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[tokio::test]
    async fn critical_events_wait_and_others_are_counted_when_dropped() {
        let (tx, mut rx) = mpsc::channel(2);
        let metrics = Metrics::new(&mut Registry::default());
        let mut e = Emitter::new(tx, 100, metrics.clone());
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        for _ in 0..5 {
            e.emit(Event::Listening(addr.clone()));
            e.emit(Event::PeerConnected {
                peer: PeerId::random(),
                addr: addr.clone(),
            });
        }
        // Two fit; the other four critical ones wait; the other four
        // connection events are dropped.
        assert_eq!(e.backlog.len(), 4);
        assert!(!e.must_wait());
        let dropped = metrics
            .events_dropped
            .get_or_create(&vec![("kind", "peer_connected".to_string())])
            .get();
        assert_eq!(dropped, 4, "one connection event fitted");
        let mut got = 0;
        while got < 5 {
            tokio::select! {
                Some(ev) = rx.recv() => if matches!(ev, Event::Listening(_)) { got += 1 },
                _ = e.drain(), if e.has_backlog() => {}
            }
        }
        assert!(!e.has_backlog(), "every critical event arrived");
    }
}
