//! Peer scoring: gossipsub's score parameters and thresholds, and the
//! application score this node adds for misbehaviour gossipsub cannot see
//! (payloads that do not match their CID, wrong chunks).
//!
//! Application scores live only while a peer is connected: the map is
//! pruned when the peer's last connection closes, so peers coming and going
//! cannot grow it. Gossipsub keeps its own counters (P4 invalid messages)
//! for `retain_score` after a disconnect, so a rogue that reconnects does
//! not start clean there.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libp2p::{gossipsub, PeerId};

/// Application score lost per payload or header misbehaviour.
pub const PENALTY: f64 = 25.0;
/// Lowest application score (past it, more penalties change nothing).
pub const MIN_APP_SCORE: f64 = -1000.0;

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

/// Peer score parameters: the application score counts fully.
pub fn score_params() -> gossipsub::PeerScoreParams {
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

/// Application scores of connected peers.
#[derive(Debug, Default)]
pub struct AppScores {
    scores: HashMap<PeerId, f64>,
}

impl AppScores {
    /// Lowers `peer`'s score by [`PENALTY`]; returns the new score.
    pub fn penalize(&mut self, peer: PeerId) -> f64 {
        let s = self.scores.entry(peer).or_insert(0.0);
        *s = (*s - PENALTY).max(MIN_APP_SCORE);
        *s
    }

    /// `peer`'s score (0 if never penalised).
    pub fn get(&self, peer: &PeerId) -> f64 {
        self.scores.get(peer).copied().unwrap_or(0.0)
    }

    /// The peer's last connection closed.
    pub fn remove(&mut self, peer: &PeerId) {
        self.scores.remove(peer);
    }

    /// Peers with a score.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no peer has a score.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_floor_and_are_pruned() {
        let mut s = AppScores::default();
        let p = PeerId::random();
        for _ in 0..100 {
            s.penalize(p);
        }
        assert_eq!(s.get(&p), MIN_APP_SCORE);
        s.remove(&p);
        assert!(s.is_empty());
        assert_eq!(s.get(&p), 0.0);
    }
}
