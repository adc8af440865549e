//! The event loop on its own: precise dial errors, and a node whose
//! consumer lags keeps serving the network and loses no critical event.

use std::time::Duration;

use anyhow::{bail, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use libp2p::{identity, Multiaddr};
use prometheus_client::registry::Registry;
use vilokanam_swarm::test_utils::signed_chunk;
use vilokanam_swarm::{Chunk, Config, Event, JoinReason, RelayConfig, StreamId, SwarmError};

fn local_config() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        discovery: false,
        ..Config::default()
    }
}

/// A failed dial used to be reported with an empty multiaddr.
#[tokio::test]
async fn a_failed_dial_names_its_address() -> Result<()> {
    let (client, _events, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        local_config(),
        &mut Registry::default(),
    )?;
    tokio::spawn(event_loop.run());
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse()?;
    match client.dial(addr.clone()).await {
        Err(SwarmError::Dial { addr: a, reason }) => {
            assert_eq!(a, addr);
            assert!(!reason.is_empty());
            assert!(SwarmError::Dial { addr: a, reason }
                .to_string()
                .contains(&port.to_string()));
        }
        other => bail!("expected a dial error, got {other:?}"),
    }
    client.shutdown().await?;
    Ok(())
}

fn chunk(key: &SigningKey, stream: &StreamId, seq: u64) -> Chunk {
    signed_chunk(key, stream, seq, Bytes::from(format!("chunk {seq}")))
}

/// `emit().await` used to block all networking once the event channel was
/// full. Now a node whose consumer does not read keeps answering, and
/// every critical event (here 3,000 verified chunks, three times the
/// channel) is delivered, in order, once the consumer reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_consumer_stalls_nothing_and_loses_no_chunk() -> Result<()> {
    let config = Config {
        relay: RelayConfig::default().with_window(4),
        ..local_config()
    };
    let (client, mut events, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        config,
        &mut Registry::default(),
    )?;
    tokio::spawn(event_loop.run());
    let key = SigningKey::from_bytes(&[11; 32]);
    let stream = StreamId::new(key.verifying_key().to_bytes(), "lag")?;
    client
        .join(stream.clone(), JoinReason::Publish, None)
        .await?;
    // Nobody reads `events` while the node publishes 3,000 chunks.
    for seq in 0..3_000 {
        tokio::time::timeout(
            Duration::from_secs(5),
            client.publish(chunk(&key, &stream, seq)),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the event loop stalled at chunk {seq}"))??;
    }
    // It still serves other commands at once.
    let stats = tokio::time::timeout(Duration::from_secs(5), client.stats()).await??;
    assert_eq!(stats.core.chunks, 4, "the window");
    // Every ChunkReady arrives, in order.
    let mut next = 0u64;
    while next < 3_000 {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await? {
            Some(Event::ChunkReady(c)) => {
                assert_eq!(c.seq(), next, "in order, none lost");
                next += 1;
            }
            Some(_) => {}
            None => bail!("event stream ended at {next}"),
        }
    }
    client.shutdown().await?;
    Ok(())
}
