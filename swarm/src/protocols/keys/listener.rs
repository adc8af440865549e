//! A key-only listener: a second, minimal swarm under the node's own
//! identity that speaks nothing but key sessions.
//!
//! A key server's viewers connect to it directly, one connection each.
//! On the node's main swarm each of those connections is a full peer: a
//! gossipsub peer that gets every announcement flood-published to it, a
//! Kademlia, identify and ping peer, and every wake-up of its task polls
//! all of those handlers. Measured (docs/BENCHMARKS.md), those
//! connections cost a key server more than the keys. Connections to this
//! listener carry only `/vilokanam/keys/2` (and the connection limits):
//! nothing flows on them between a viewer's requests. The node puts this
//! listener's addresses in its paid streams' offers, so viewers dial it
//! for keys; a peer already connected to the main swarm may still open
//! its key session there (both serve the same [`KeyService`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{connection_limits, identity, noise, tcp, yamux, Multiaddr, Swarm};
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::session::{self, KeyService, KeySessionConfig, KEYS_PROTOCOL};
use crate::metrics::Metrics;
use crate::network::SwarmError;

/// The listener's behaviour: key sessions and connection limits, nothing
/// else.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct KeyOnly {
    limits: connection_limits::Behaviour,
    keys: libp2p_stream::Behaviour,
}

/// A running key-only listener; dropping it stops it (its connections
/// close, their sessions end).
pub struct KeyListener {
    addrs: Vec<Multiaddr>,
    _stop: oneshot::Sender<()>,
}

impl KeyListener {
    /// Where it listens (the addresses to put in offers).
    pub fn addrs(&self) -> &[Multiaddr] {
        &self.addrs
    }
}

impl std::fmt::Debug for KeyListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyListener")
            .field("addrs", &self.addrs)
            .finish()
    }
}

/// Starts a key-only listener on `listen` under `keypair` (the node's
/// identity, so the offer's key-server peer id stays the node's),
/// answering with `service`, with at most `max_connections` connections
/// (and two per peer). Returns once every address is bound.
pub async fn start(
    keypair: identity::Keypair,
    listen: &[Multiaddr],
    service: Arc<dyn KeyService>,
    cfg: KeySessionConfig,
    max_connections: u32,
    metrics: Metrics,
) -> Result<KeyListener, SwarmError> {
    let mut swarm: Swarm<KeyOnly> = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| SwarmError::Build(e.to_string()))?
        .with_quic()
        .with_behaviour(|_| KeyOnly {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(max_connections))
                    .with_max_established_per_peer(Some(2))
                    .with_max_pending_incoming(Some(64)),
            ),
            keys: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| SwarmError::Build(e.to_string()))?
        // A connection lives while its key session does (an open stream
        // keeps it), and this long after.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(10)))
        .build();
    let mut binding = std::collections::HashSet::new();
    for addr in listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| SwarmError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        binding.insert(id);
    }
    let incoming = swarm
        .behaviour()
        .keys
        .new_control()
        .accept(KEYS_PROTOCOL)
        .map_err(|_| SwarmError::Build("key sessions are already served".into()))?;
    tokio::spawn(session::serve(incoming, service, cfg, metrics));
    let mut addrs = Vec::new();
    let bind = tokio::time::timeout(Duration::from_secs(10), async {
        while !binding.is_empty() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    binding.remove(&listener_id);
                    addrs.push(address);
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(SwarmError::Build(format!("key listener: {error}")))
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    match bind {
        Ok(r) => r?,
        Err(_) => {
            return Err(SwarmError::Build(
                "timed out waiting for the key listener's addresses".into(),
            ))
        }
    }
    info!(?addrs, "key-only listener");
    let (stop, mut stopped) = oneshot::channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                ev = swarm.select_next_some() => {
                    if let SwarmEvent::IncomingConnectionError { error, .. } = ev {
                        debug!(%error, "key listener: incoming connection failed");
                    }
                }
            }
        }
    });
    Ok(KeyListener { addrs, _stop: stop })
}
