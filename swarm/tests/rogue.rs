//! A rogue peer on a stream's topic: forged headers, corrupt payloads and
//! oversized messages. Honest in-process nodes on loopback must reject all
//! of it, never forward it, keep delivering the real stream, and score the
//! rogue down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, request_response, Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use vilokanam_swarm::behaviour::BehaviourEvent;
use vilokanam_swarm::protocols::live::core::{Misbehaviour, Rejection};
use vilokanam_swarm::test_utils::signed_chunk;
use vilokanam_swarm::wire::{ChunkRequest, ChunkResponse, GossipMessage, Sig, WireError};
use vilokanam_swarm::{Chunk, ChunkCid, ChunkHeader, Event, JoinReason, RejectReason, StreamId};

mod common;
use common::{forger, honest, local_config, Events, Honest};

/// A rogue that relays real headers instantly (without checking them), so
/// that honest peers ask it for payloads, and then serves garbage.
async fn rogue(
    stream: StreamId,
    dial: Vec<Multiaddr>,
) -> Result<(PeerId, mpsc::Sender<()>, Arc<Mutex<u64>>)> {
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let mut swarm = vilokanam_swarm::build_swarm(key, &local_config(), &mut Registry::default())?;
    let topic = IdentTopic::new(stream.topic());
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;
    for a in dial {
        swarm.dial(a)?;
    }
    // The rogue runs until its sender is dropped.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let served = Arc::new(Mutex::new(0u64));
    let served2 = served.clone();
    tokio::spawn(async move {
        let mut headers: HashMap<ChunkCid, vilokanam_swarm::SignedHeader> = HashMap::new();
        loop {
            tokio::select! {
                cmd = rx.recv() => if cmd.is_none() { return },
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(libp2p::gossipsub::Event::Message { propagation_source, message_id, message })) => {
                        if let Ok(GossipMessage::Chunk(h)) = GossipMessage::decode(&message.data) {
                            headers.insert(h.header.cid, h);
                        }
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Chunks(request_response::Event::Message { message: request_response::Message::Request { request, channel, .. }, .. })) => {
                        let resp = match request {
                            ChunkRequest::ByCid(cid) => match headers.get(&cid) {
                                Some(h) => {
                                    *served2.lock().expect("lock") += 1;
                                    ChunkResponse::Found { header: h.clone(), payload: Bytes::from(vec![0x47u8; h.header.size as usize]) }
                                }
                                None => ChunkResponse::NotFound,
                            },
                            _ => ChunkResponse::NotFound,
                        };
                        let _ = swarm.behaviour_mut().chunks.send_response(channel, resp);
                    }
                    _ => {}
                },
            }
        }
    });
    Ok((peer, tx, served))
}

fn chunk(key: &SigningKey, stream: &StreamId, seq: u64) -> Chunk {
    signed_chunk(
        key,
        stream,
        seq,
        Bytes::from(format!("chunk {seq} ").repeat(5000)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_peer_is_rejected_scored_down_and_never_relayed() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("vilokanam_swarm=debug")
        .with_test_writer()
        .try_init();
    let creator_key = SigningKey::from_bytes(&[42; 32]);
    let stream = StreamId::new(creator_key.verifying_key().to_bytes(), "live")?;

    let c = honest().await?;
    let h = honest().await?;
    let v = honest().await?;
    let v2 = honest().await?;
    // C — H — V — V2 is the honest path; the rogue R sits between C and V.
    h.client.dial(c.addr.clone()).await?;
    v.client.dial(h.addr.clone()).await?;
    v2.client.dial(v.addr.clone()).await?;
    // Everyone follows the stream from its first chunk (they joined before
    // it began, as a viewer who saw the announcement does).
    for n in [&c, &h, &v, &v2] {
        n.client
            .join(stream.clone(), JoinReason::Watch, Some(0))
            .await?;
    }
    let (rogue_peer, _rogue_tx, served) =
        rogue(stream.clone(), vec![c.addr.clone(), v.addr.clone()]).await?;

    // Wait until every node sees its neighbours subscribed to the topic.
    let topic = stream.topic();
    let expect: [(&Honest, Vec<PeerId>); 4] = [
        (&c, vec![h.client.peer_id(), rogue_peer]),
        (&h, vec![c.client.peer_id(), v.client.peer_id()]),
        (
            &v,
            vec![h.client.peer_id(), v2.client.peer_id(), rogue_peer],
        ),
        (&v2, vec![v.client.peer_id()]),
    ];
    for (node, want) in &expect {
        node.events
            .wait("neighbours subscribed to the topic", |_| {
                want.iter().all(|p| node.events.subscribed(*p, &topic))
            })
            .await?;
    }
    // Real chunks; the rogue relays each header at once and then serves
    // a corrupt payload for it.
    let mut published = HashMap::new();
    for seq in 0..8u64 {
        let ch = chunk(&creator_key, &stream, seq);
        published.insert(seq, ch.payload.clone());
        c.client.publish(ch).await?;
        let ready = |e: &Events| e.ready().contains_key(&seq);
        v2.events
            .wait(&format!("chunk {seq} at V2"), |_| ready(&v2.events))
            .await?;
    }

    // Three forged messages, each from its own forger peer (see `forger`):
    // a header for the creator's stream signed with another key, an
    // oversized message (10 KiB, over the 4 KiB application limit), and a
    // header with a bad signature outright.
    let rogue_key = SigningKey::from_bytes(&[7; 32]);
    let mut forged = ChunkHeader {
        stream: StreamId::new(rogue_key.verifying_key().to_bytes(), "live")?,
        seq: 8,
        duration_us: 1_000_000,
        cid: ChunkCid::of(b"evil"),
        size: 4,
        published_at_ms: 0,
        discontinuity: false,
        epoch: None,
        parts: vec![],
    }
    .sign(&rogue_key)?;
    forged.header.stream = stream.clone();
    let mut bad_sig = chunk(&creator_key, &stream, 9).header;
    bad_sig.signature = Sig([9; 64]);
    let targets = vec![
        (c.client.peer_id(), c.addr.clone()),
        (v.client.peer_id(), v.addr.clone()),
    ];
    let forged_by = forger(
        IdentTopic::new(stream.topic()),
        targets.clone(),
        GossipMessage::Chunk(forged).encode(),
    )
    .await?;
    let oversized_by = forger(
        IdentTopic::new(stream.topic()),
        targets.clone(),
        vec![1u8; 10 * 1024],
    )
    .await?;
    let bad_sig_by = forger(
        IdentTopic::new(stream.topic()),
        targets,
        GossipMessage::Chunk(bad_sig).encode(),
    )
    .await?;
    let forgers = [forged_by, oversized_by, bad_sig_by];

    // A barrier: both first hops (C and V) have received and refused all
    // three forged messages, each with its precise reason. Gossip on one
    // connection is delivered in order, so anything C or V had forwarded
    // to H or V2 would reach them before the chunks published after this
    // point; waiting for those chunks below proves H and V2 would have
    // seen a forwarded message.
    let refused_all = |n: &Honest| {
        let r = n.events.rejections();
        let by = |peer: PeerId, want: fn(&RejectReason) -> bool| {
            r.iter().any(|(p, reason)| *p == peer && want(reason))
        };
        by(forged_by, |r| {
            matches!(
                r,
                RejectReason::Gossip(Rejection::Invalid(WireError::BadSignature))
            )
        }) && by(oversized_by, |r| {
            matches!(
                r,
                RejectReason::Gossip(Rejection::Invalid(WireError::TooLarge { .. }))
            )
        }) && by(bad_sig_by, |r| {
            matches!(
                r,
                RejectReason::Gossip(Rejection::Invalid(WireError::BadSignature))
            )
        })
    };
    c.events
        .wait("C refused the three forged messages", |_| refused_all(&c))
        .await?;
    v.events
        .wait("V refused the three forged messages", |_| refused_all(&v))
        .await?;

    // More real chunks after the attack still reach everyone intact.
    for seq in 10..14u64 {
        let ch = chunk(&creator_key, &stream, seq);
        published.insert(seq, ch.payload.clone());
        c.client.publish(ch).await?;
    }
    for (name, node) in [("H", &h), ("V", &v), ("V2", &v2)] {
        let want: Vec<u64> = published.keys().copied().collect();
        let waited = node
            .events
            .wait(&format!("every chunk at {name}"), |_| {
                let got = node.events.ready();
                want.iter().all(|s| got.contains_key(s))
            })
            .await;
        if let Err(e) = waited {
            let got = node.events.ready();
            let missing: Vec<u64> = want
                .iter()
                .copied()
                .filter(|s| !got.contains_key(s))
                .collect();
            bail!(
                "{e}: missing {missing:?}; events: {:?}",
                node.events.rejections()
            );
        }
        let got = node.events.ready();
        for (seq, payload) in &published {
            assert!(
                got.get(seq) == Some(payload),
                "{name} has the real chunk {seq}"
            );
        }
        assert!(
            !got.contains_key(&8) && !got.contains_key(&9),
            "{name} accepted no forged chunk"
        );
    }
    // The rogue did serve corrupt payloads to V, and V caught every one.
    let served = *served.lock().expect("lock");
    assert!(served > 0, "the rogue was asked for payloads");
    assert!(
        v.events.rejections().iter().any(|(p, r)| *p == rogue_peer
            && matches!(r, RejectReason::Misbehaviour(Misbehaviour::BadPayload(_)))),
        "V penalised the corrupt payloads: {:?}",
        v.events.rejections()
    );
    // A corrupt payload is never reported as verified, so a node that
    // pays for bandwidth never pays the rogue for it.
    assert!(
        !v.events
            .snapshot()
            .iter()
            .any(|e| matches!(e, Event::Verified { peer, .. } if *peer == rogue_peer)),
        "V reported a payload of the rogue's as verified"
    );
    // Nothing invalid was ever forwarded: V2 (behind V) and H (behind C)
    // never even saw it.
    assert!(
        v2.events.rejections().is_empty(),
        "V2 saw {:?}",
        v2.events.rejections()
    );
    assert!(
        h.events.rejections().is_empty(),
        "H saw {:?}",
        h.events.rejections()
    );
    // The rogue's score dropped below zero where it served garbage, and
    // every forger's where it sent its forgery.
    let peers = v.client.peers().await?;
    let score = |peer: PeerId| {
        peers
            .iter()
            .find(|p| p.peer_id == peer)
            .and_then(|p| p.score)
    };
    assert!(
        score(rogue_peer).unwrap_or(0.0) < 0.0,
        "V: rogue score {:?}",
        score(rogue_peer)
    );
    for (name, node) in [("C", &c), ("V", &v)] {
        let peers = node.client.peers().await?;
        for f in forgers {
            let s = peers.iter().find(|p| p.peer_id == f).and_then(|p| p.score);
            assert!(s.unwrap_or(0.0) < 0.0, "{name}: forger {f} score {s:?}");
        }
    }
    Ok(())
}
