//! Building the swarm: transports (TCP and QUIC with noise and yamux), the
//! composed behaviour, listen addresses, the announce topic and the
//! bootstrap dials.

use libp2p::gossipsub::IdentTopic;
use libp2p::multiaddr::Protocol;
use libp2p::{identity, noise, tcp, yamux, Swarm};
use prometheus_client::registry::Registry;
use tracing::warn;

use crate::behaviour::Behaviour;
use crate::network::{Config, SwarmError};
use crate::protocols::live::wire::ANNOUNCE_TOPIC;

/// Builds a raw swarm with the node's transports and [`Behaviour`],
/// listening and dialing as `config` says and subscribed to the announce
/// topic. [`crate::new`] wraps it in an [`crate::EventLoop`]; tests use it
/// directly to drive misbehaving peers.
pub fn build_swarm(
    keypair: identity::Keypair,
    config: &Config,
    registry: &mut Registry,
) -> Result<Swarm<Behaviour>, SwarmError> {
    let mut bcfg = config.behaviour.clone();
    bcfg.discovery = config.discovery;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| SwarmError::Build(e.to_string()))?
        .with_quic()
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key| {
            Behaviour::new(key, &bcfg).map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| SwarmError::Build(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| SwarmError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    }
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&IdentTopic::new(ANNOUNCE_TOPIC))
        .map_err(|e| SwarmError::Subscribe {
            topic: ANNOUNCE_TOPIC.into(),
            reason: e.to_string(),
        })?;
    let social = IdentTopic::new(crate::protocols::social::SOCIAL_TOPIC);
    let g = &mut swarm.behaviour_mut().gossipsub;
    g.set_topic_params(social.clone(), crate::scoring::topic_score_params())
        .map_err(|e| SwarmError::Subscribe {
            topic: social.to_string(),
            reason: e.to_string(),
        })?;
    g.subscribe(&social).map_err(|e| SwarmError::Subscribe {
        topic: social.to_string(),
        reason: e.to_string(),
    })?;
    for addr in &config.bootstrap {
        if let (true, Some(Protocol::P2p(peer))) = (config.discovery, addr.iter().last()) {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "bootstrap dial failed");
        }
    }
    Ok(swarm)
}
