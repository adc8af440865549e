//! Bitswap between real event loops over TCP: a block is fetched from
//! the peer that has it; a peer that sends corrupt bytes (they do not hash
//! to the CID asked for) is passed over for the next one, and the fetch
//! fails with each peer's reason when no peer sends a valid block.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use cid::Cid;
use libp2p::PeerId;
use sha2::Digest;
use vilokanam_swarm::protocols::bitswap::{BitswapConfig, BlockSource};
use vilokanam_swarm::{Config, Event};

fn raw(data: &[u8]) -> Cid {
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &sha2::Sha256::digest(data)).unwrap();
    Cid::new_v1(0x55, mh)
}

struct Map(HashMap<Cid, Vec<u8>>);
impl BlockSource for Map {
    fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.0.get(cid).cloned()
    }
    fn has(&self, cid: &Cid) -> bool {
        self.0.contains_key(cid)
    }
}

/// Claims every block and sends garbage for it (a bad disk, a liar, bytes
/// corrupted on the way).
struct Corrupt;
impl BlockSource for Corrupt {
    fn get(&self, _: &Cid) -> Option<Vec<u8>> {
        Some(b"not the block you asked for".to_vec())
    }
    fn has(&self, _: &Cid) -> bool {
        true
    }
}

fn config() -> Config {
    Config {
        bitswap: BitswapConfig {
            fetch_timeout: Duration::from_millis(800),
            ..BitswapConfig::default()
        },
        ..common::local_config()
    }
}

async fn connected(events: &common::Events, peer: PeerId) -> Result<()> {
    events
        .wait("connected", |e| {
            e.iter()
                .any(|e| matches!(e, Event::PeerConnected { peer: p, .. } if *p == peer))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blocks_are_refused_and_fetched_from_the_next_peer() -> Result<()> {
    let block = vec![42u8; 300_000];
    let cid = raw(&block);
    let honest = common::node(config(), None).await?;
    honest
        .client
        .bitswap()
        .serve(Arc::new(Map([(cid, block.clone())].into())))?;
    let rogue = common::node(config(), None).await?;
    rogue.client.bitswap().serve(Arc::new(Corrupt))?;
    let fetcher = common::node(config(), None).await?;
    fetcher
        .client
        .bitswap()
        .serve(Arc::new(Map(HashMap::new())))?;
    fetcher.client.dial(honest.addr.clone()).await?;
    fetcher.client.dial(rogue.addr.clone()).await?;
    connected(&fetcher.events, honest.client.peer_id()).await?;
    connected(&fetcher.events, rogue.client.peer_id()).await?;

    let bs = fetcher.client.bitswap();
    // The rogue first: its bytes never match, so the honest peer is asked.
    let got = bs
        .fetch(cid, &[rogue.client.peer_id(), honest.client.peer_id()])
        .await?;
    assert_eq!(got, block);
    // Only the rogue: no valid block, the reason says so.
    let err = bs.fetch(cid, &[rogue.client.peer_id()]).await.unwrap_err();
    assert!(err.to_string().contains("no valid block"), "{err}");
    // A block no one has: DONT_HAVE from the honest peer, at once.
    let t = std::time::Instant::now();
    let err = bs
        .fetch(raw(b"nobody"), &[honest.client.peer_id()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("don't have"), "{err}");
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "DONT_HAVE, not a timeout"
    );
    assert_eq!(bs.waiting(), 0, "no waiter left behind");
    Ok(())
}
