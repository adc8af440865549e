//! Tests of the relay core: verdicts, fetch order, fallbacks, windows and
//! every bound.

use super::*;
use crate::protocols::live::wire::{Sig, WireError};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use std::time::Duration;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn stream() -> StreamId {
    stream_named("s")
}

fn stream_named(name: &str) -> StreamId {
    StreamId::new(key().verifying_key().to_bytes(), name).unwrap()
}

fn chunk_with(stream: &StreamId, seq: u64, payload: Bytes) -> Chunk {
    crate::test_utils::signed_chunk(&key(), stream, seq, payload)
}

fn chunk(seq: u64) -> Chunk {
    chunk_with(&stream(), seq, Bytes::from(format!("payload {seq}")))
}

fn msg(n: u64) -> MessageId {
    MessageId::new(&n.to_be_bytes())
}

fn found(c: &Chunk) -> Result<ChunkResponse, FetchError> {
    Ok(ChunkResponse::Found {
        header: c.header.clone(),
        payload: c.payload.clone(),
    })
}

fn core_with(config: RelayConfig, now: Instant, peers: &[PeerId]) -> RelayCore {
    let mut core = RelayCore::new(config);
    // A start of 0: no Latest request in these tests.
    core.join(
        now,
        stream(),
        JoinReason::Watch,
        Some(0),
        peers.iter().copied(),
    )
    .unwrap();
    core
}

fn joined(now: Instant, peers: &[PeerId]) -> RelayCore {
    core_with(RelayConfig::default(), now, peers)
}

fn fetches(out: &[Output]) -> Vec<(PeerId, ChunkRequest)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Fetch { peer, request, .. } => Some((*peer, request.clone())),
            _ => None,
        })
        .collect()
}

fn verdicts(out: &[Output]) -> Vec<Verdict> {
    out.iter()
        .filter_map(|o| match o {
            Output::Validation { verdict, .. } => Some(verdict.clone()),
            _ => None,
        })
        .collect()
}

fn penalties(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Penalize { .. }))
        .count()
}

fn ready(out: &[Output]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Output::Ready(c) => Some(c.seq()),
            _ => None,
        })
        .collect()
}

#[test]
fn header_is_accepted_only_after_payload_matches() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[b]);
    let c = chunk(0);
    let out = core.on_gossip_header(now, msg(1), a, &stream(), c.header.clone());
    assert!(verdicts(&out).is_empty(), "no verdict before the payload");
    assert_eq!(
        fetches(&out),
        vec![(a, ChunkRequest::ByCid(c.header.header.cid))],
        "ask the sender first"
    );
    let out = core.on_fetch_result(now, (stream(), 0), a, found(&c));
    assert_eq!(verdicts(&out), vec![Verdict::Accept]);
    assert_eq!(ready(&out), vec![0]);
    assert!(matches!(
        core.serve(&ChunkRequest::ByCid(c.header.header.cid)),
        ChunkResponse::Found { .. }
    ));
}

#[test]
fn forged_header_is_rejected_without_fetching() {
    let now = Instant::now();
    let mut core = joined(now, &[]);
    let mut h = chunk(0).header;
    h.signature = Sig([1; 64]);
    let out = core.on_gossip_header(now, msg(1), PeerId::random(), &stream(), h);
    assert!(fetches(&out).is_empty());
    assert!(matches!(
        verdicts(&out)[..],
        [Verdict::Reject(Rejection::Invalid(WireError::BadSignature))]
    ));
}

#[test]
fn header_on_wrong_topic_is_rejected() {
    let now = Instant::now();
    let mut core = joined(now, &[]);
    let other = StreamId::new([1; 32], "other").unwrap();
    core.join(now, other.clone(), JoinReason::Watch, Some(0), [])
        .unwrap();
    let out = core.on_gossip_header(now, msg(1), PeerId::random(), &other, chunk(0).header);
    assert!(matches!(
        verdicts(&out)[..],
        [Verdict::Reject(Rejection::WrongTopic { .. })]
    ));
}

#[test]
fn bad_payload_penalises_the_server_and_falls_back() {
    let now = Instant::now();
    let (rogue, honest) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[honest]);
    let c = chunk(3);
    core.on_gossip_header(now, msg(1), rogue, &stream(), c.header.clone());
    let garbage = Ok(ChunkResponse::Found {
        header: c.header.clone(),
        payload: Bytes::from_static(b"garbage"),
    });
    let out = core.on_fetch_result(now, (stream(), 3), rogue, garbage);
    assert!(out.iter().any(|o| matches!(o, Output::Penalize { peer, reason: Misbehaviour::BadPayload(_) } if *peer == rogue)));
    assert!(
        verdicts(&out).is_empty(),
        "the header itself is genuine: no verdict yet"
    );
    assert_eq!(
        fetches(&out),
        vec![(honest, ChunkRequest::ByCid(c.header.header.cid))]
    );
    let out = core.on_fetch_result(now, (stream(), 3), honest, found(&c));
    assert_eq!(verdicts(&out), vec![Verdict::Accept]);
    assert_eq!(core.get(&stream(), 3).unwrap().chunk.payload, c.payload);
}

#[test]
fn unavailable_payload_is_retried_then_given_up() {
    let t0 = Instant::now();
    let a = PeerId::random();
    let mut core = joined(t0, &[]);
    let c = chunk(1);
    core.on_gossip_header(t0, msg(1), a, &stream(), c.header.clone());
    let out = core.on_fetch_result(t0, (stream(), 1), a, Ok(ChunkResponse::NotFound));
    assert!(fetches(&out).is_empty(), "wait before asking again");
    let t1 = t0 + core.config().retry_backoff;
    assert_eq!(
        fetches(&core.tick(t1)).len(),
        1,
        "second round after the backoff"
    );
    core.on_fetch_result(t1, (stream(), 1), a, Err(FetchError::Timeout));
    let late = t0 + core.config().give_up_after;
    let out = core.tick(late);
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Ignore(IgnoreReason::PayloadUnavailable)]
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Missing { seq: 1, .. })));
    let out = core.on_gossip_header(late, msg(2), a, &stream(), c.header);
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Ignore(IgnoreReason::PayloadUnavailable)]
    );
}

#[test]
fn request_timeout_moves_to_the_next_peer() {
    let t0 = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut core = joined(t0, &[b]);
    core.on_gossip_header(t0, msg(1), a, &stream(), chunk(0).header);
    let out = core.tick(t0 + core.config().fetch_timeout);
    assert_eq!(fetches(&out).first().map(|f| f.0), Some(b));
}

#[test]
fn stale_and_far_ahead_headers_are_ignored() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = joined(now, &[]);
    core.publish_local(now, chunk(100));
    let out = core.on_gossip_header(now, msg(1), a, &stream(), chunk(10).header);
    assert_eq!(verdicts(&out), vec![Verdict::Ignore(IgnoreReason::Stale)]);
    // Far ahead: the node fell behind; it re-anchors and fetches it.
    let out = core.on_gossip_header(now, msg(2), a, &stream(), chunk(1000).header);
    assert!(verdicts(&out).is_empty());
    assert_eq!(fetches(&out).len(), 1);
    let out = core.on_fetch_result(now, (stream(), 1000), a, found(&chunk(1000)));
    assert_eq!(verdicts(&out), vec![Verdict::Accept]);
    assert!(fetches(&out).is_empty(), "no gap fill below the new anchor");
    let out = core.on_gossip_header(now, msg(3), a, &stream(), chunk(99).header);
    assert_eq!(verdicts(&out), vec![Verdict::Ignore(IgnoreReason::Stale)]);
}

#[test]
fn not_joined_stream_is_ignored() {
    let now = Instant::now();
    let mut core = RelayCore::new(RelayConfig::default());
    let out = core.on_gossip_header(now, msg(1), PeerId::random(), &stream(), chunk(0).header);
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Ignore(IgnoreReason::NotJoined)]
    );
}

#[test]
fn gap_behind_a_new_chunk_is_filled_by_sequence() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = RelayCore::new(RelayConfig::default());
    core.join(now, stream(), JoinReason::Watch, Some(3), [a])
        .unwrap();
    core.on_gossip_header(now, msg(1), a, &stream(), chunk(5).header);
    let out = core.on_fetch_result(now, (stream(), 5), a, found(&chunk(5)));
    let asked: Vec<ChunkRequest> = fetches(&out).into_iter().map(|f| f.1).collect();
    for seq in [3, 4] {
        assert!(asked.contains(&ChunkRequest::BySeq {
            stream: stream(),
            seq
        }));
    }
    let out = core.on_fetch_result(now, (stream(), 4), a, found(&chunk(4)));
    assert_eq!(ready(&out), vec![4]);
}

#[test]
fn joining_viewer_asks_for_the_latest_chunk() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = RelayCore::new(RelayConfig::default());
    let out = core
        .join(now, stream(), JoinReason::Watch, None, [])
        .unwrap();
    assert!(fetches(&out).is_empty(), "no peers yet");
    assert!(matches!(out[..], [Output::Subscribe(_)]));
    let out = core.peer_joined(now, &stream(), a);
    assert_eq!(fetches(&out), vec![(a, ChunkRequest::Latest(stream()))]);
    let out = core.on_fetch_result(now, (stream(), LATEST), a, found(&chunk(42)));
    assert_eq!(ready(&out), vec![42]);
    // It starts there: no gap fill for earlier chunks.
    assert!(fetches(&out).is_empty());
}

#[test]
fn window_is_bounded_and_evicted_chunks_are_not_served() {
    let now = Instant::now();
    let mut core = core_with(RelayConfig::default().with_window(3), now, &[]);
    for s in 0..5 {
        core.publish_local(now, chunk(s));
    }
    assert!(matches!(
        core.serve(&ChunkRequest::BySeq {
            stream: stream(),
            seq: 1
        }),
        ChunkResponse::NotFound
    ));
    assert!(matches!(
        core.serve(&ChunkRequest::ByCid(chunk(0).header.header.cid)),
        ChunkResponse::NotFound
    ));
    match core.serve(&ChunkRequest::Latest(stream())) {
        ChunkResponse::Found { header, .. } => assert_eq!(header.header.seq, 4),
        other => panic!("latest missing: {other:?}"),
    }
    assert_eq!(core.stats().chunks, 3);
}

#[test]
fn equivocating_creator_is_ignored_not_penalised() {
    let now = Instant::now();
    let mut core = joined(now, &[]);
    core.publish_local(now, chunk(0));
    let other = chunk_with(&stream(), 0, Bytes::from_static(b"different"));
    let out = core.on_gossip_header(now, msg(9), PeerId::random(), &stream(), other.header);
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Ignore(IgnoreReason::Equivocation)],
        "not the forwarding relay's fault"
    );
    assert_eq!(
        core.get(&stream(), 0).unwrap().chunk.payload,
        chunk(0).payload
    );
}

/// The bug behind "the testnet without ffmpeg stops after 30 s": a looped
/// clip repeats payloads, so chunks share CIDs. Evicting an old chunk must
/// not hide a newer one with the same payload, and a server that answers a
/// CID request with another chunk carrying the same payload is honest.
#[test]
fn repeating_payloads_play_for_many_windows_without_penalty() {
    let mut now = Instant::now();
    let creator = PeerId::random();
    let config = RelayConfig::default().with_window(5);
    // The relay next to the creator, and the viewer behind it.
    let mut relay = core_with(config.clone(), now, &[creator]);
    let mut viewer = core_with(config, now, &[]);
    let relay_peer = PeerId::random();
    // Six distinct payloads, looped: chunk n carries payload n % 6.
    let payloads: Vec<Bytes> = (0..6).map(|i| Bytes::from(format!("gop {i}"))).collect();
    let mut id = 0;
    for seq in 0..40u64 {
        now += Duration::from_secs(1);
        let c = chunk_with(&stream(), seq, payloads[(seq % 6) as usize].clone());
        // The relay pulls from the creator (which serves it by CID).
        id += 1;
        let out = relay.on_gossip_header(now, msg(id), creator, &stream(), c.header.clone());
        assert_eq!(fetches(&out).len(), 1, "relay fetches #{seq}");
        let out = relay.on_fetch_result(now, (stream(), seq), creator, found(&c));
        assert_eq!(
            verdicts(&out),
            vec![Verdict::Accept],
            "relay accepts #{seq}"
        );
        // The viewer hears the header from the relay and asks it by CID;
        // the relay answers with whichever chunk of its window has that
        // payload — possibly an older sequence.
        id += 1;
        let out = viewer.on_gossip_header(now, msg(id), relay_peer, &stream(), c.header.clone());
        let [(peer, request)] = &fetches(&out)[..] else {
            panic!("viewer must fetch #{seq}: {out:?}");
        };
        assert_eq!(*peer, relay_peer);
        let response = relay.serve(request);
        assert!(
            matches!(response, ChunkResponse::Found { .. }),
            "relay serves #{seq} by CID"
        );
        let out = viewer.on_fetch_result(now, (stream(), seq), relay_peer, Ok(response));
        assert_eq!(penalties(&out), 0, "no penalty for #{seq}");
        assert_eq!(ready(&out), vec![seq], "viewer plays #{seq}");
        assert_eq!(
            viewer.get(&stream(), seq).unwrap().chunk.header.header.seq,
            seq,
            "the viewer keeps the header it was announced, not the served one"
        );
    }
}

#[test]
fn two_streams_with_identical_payloads_do_not_shadow_each_other() {
    let now = Instant::now();
    let mut core = RelayCore::new(RelayConfig::default().with_window(2));
    let (a, b) = (stream_named("a"), stream_named("b"));
    for s in [&a, &b] {
        core.join(now, s.clone(), JoinReason::Watch, Some(0), [])
            .unwrap();
    }
    let same = Bytes::from_static(b"slate");
    core.publish_local(now, chunk_with(&a, 0, same.clone()));
    core.publish_local(now, chunk_with(&b, 0, same.clone()));
    // Stream a moves on and evicts its slate; b's must still be served.
    for seq in 1..4 {
        core.publish_local(now, chunk_with(&a, seq, Bytes::from(format!("a{seq}"))));
    }
    let cid = ChunkCid::of(&same);
    match core.serve(&ChunkRequest::ByCid(cid)) {
        ChunkResponse::Found { header, .. } => assert_eq!(header.header.stream, b),
        other => panic!("b's slate was hidden by a's eviction: {other:?}"),
    }
    // Leaving b drops the last holder of the CID.
    core.leave(&b, JoinReason::Watch);
    assert!(matches!(
        core.serve(&ChunkRequest::ByCid(cid)),
        ChunkResponse::NotFound
    ));
    assert!(!core.by_cid.contains_key(&cid), "index entry removed");
}

#[test]
fn wrong_chunk_for_a_sequence_request_is_penalised() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = RelayCore::new(RelayConfig::default());
    core.join(now, stream(), JoinReason::Watch, Some(3), [a])
        .unwrap();
    core.on_gossip_header(now, msg(1), a, &stream(), chunk(4).header);
    core.on_fetch_result(now, (stream(), 4), a, found(&chunk(4)));
    // Asked for #3 by sequence, served #2.
    let out = core.on_fetch_result(now, (stream(), 3), a, found(&chunk(2)));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Penalize {
            reason: Misbehaviour::WrongChunk {
                asked_seq: 3,
                got_seq: 2,
                ..
            },
            ..
        }
    )));
}

#[test]
fn byte_bounds_hold_per_stream_and_in_total() {
    let now = Instant::now();
    let config = RelayConfig {
        max_stream_bytes: 3 * 1000,
        max_total_bytes: 5 * 1000,
        ..RelayConfig::default()
    };
    let mut core = RelayCore::new(config);
    let (a, b) = (stream_named("a"), stream_named("b"));
    for s in [&a, &b] {
        core.join(now, s.clone(), JoinReason::Watch, Some(0), [])
            .unwrap();
    }
    for seq in 0..10 {
        core.publish_local(now, chunk_with(&a, seq, Bytes::from(vec![seq as u8; 1000])));
        assert!(core.stats().bytes <= 5000);
    }
    assert_eq!(core.chunks(&a).len(), 3, "per-stream bytes bound");
    for seq in 0..10 {
        core.publish_local(
            now,
            chunk_with(&b, seq, Bytes::from(vec![100 + seq as u8; 1000])),
        );
        assert!(core.stats().bytes <= 5000, "total bound");
    }
    // The total is shared fairly: neither stream is pushed to nothing.
    assert!(!core.chunks(&a).is_empty() && !core.chunks(&b).is_empty());
    assert_eq!(core.get(&b, 9).unwrap().chunk.seq(), 9, "newest kept");
}

#[test]
fn stream_caps_refuse_new_joins_with_a_reason() {
    let now = Instant::now();
    let config = RelayConfig::default()
        .with_max_streams(3)
        .with_max_relayed(2);
    let mut core = RelayCore::new(config);
    let s = |i: usize| stream_named(&format!("s{i}"));
    core.join(now, s(0), JoinReason::Relay, None, []).unwrap();
    core.join(now, s(1), JoinReason::Relay, None, []).unwrap();
    assert_eq!(
        core.join(now, s(2), JoinReason::Relay, None, []).err(),
        Some(JoinError::RelayCapReached { cap: 2 })
    );
    // A user's stream still fits; relaying a followed stream is free.
    core.join(now, s(2), JoinReason::Watch, None, []).unwrap();
    core.join(now, s(2), JoinReason::Relay, None, []).unwrap();
    assert_eq!(
        core.join(now, s(3), JoinReason::Watch, None, []).err(),
        Some(JoinError::TooManyStreams { cap: 3 })
    );
    assert_eq!(core.stats().streams, 3);
}

#[test]
fn relayed_streams_are_left_when_silent_or_ended_but_watched_ones_stay() {
    let t0 = Instant::now();
    let config = RelayConfig::default();
    let mut core = RelayCore::new(config.clone());
    let (silent, ended, watched) = (stream_named("a"), stream_named("b"), stream_named("c"));
    for s in [&silent, &ended] {
        core.join(t0, s.clone(), JoinReason::Relay, None, [])
            .unwrap();
    }
    core.join(t0, watched.clone(), JoinReason::Watch, None, [])
        .unwrap();
    core.join(t0, watched.clone(), JoinReason::Relay, None, [])
        .unwrap();
    core.on_ended(t0, &ended);
    core.on_ended(t0, &watched);
    let out = core.tick(t0 + config.ended_linger);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Unsubscribe(s) if *s == ended)),
        "ended relayed stream left: {out:?}"
    );
    assert!(core.is_joined(&silent));
    let out = core.tick(t0 + config.silence_timeout);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Unsubscribe(s) if *s == silent)));
    assert!(core.is_joined(&watched), "the user's stream stays");
    assert_eq!(core.stats().streams, 1);
    // A stream left for silence is not relayed again at once (its next
    // announcement would only repeat the silence), but after a while.
    let t1 = t0 + config.silence_timeout;
    assert_eq!(
        core.join(t1, silent.clone(), JoinReason::Relay, None, [])
            .err(),
        Some(JoinError::RecentlySilent)
    );
    core.join(t1, ended.clone(), JoinReason::Relay, None, [])
        .expect("an ended stream may come back at once");
    core.join(t1, silent.clone(), JoinReason::Watch, None, [])
        .expect("the user may always watch it");
    core.leave(&silent, JoinReason::Watch);
    core.join(
        t1 + config.silence_timeout,
        silent.clone(),
        JoinReason::Relay,
        None,
        [],
    )
    .expect("relayed again after the cooldown");
}

#[test]
fn leaving_for_one_reason_keeps_the_others() {
    let now = Instant::now();
    let mut core = RelayCore::new(RelayConfig::default());
    core.join(now, stream(), JoinReason::Publish, None, [])
        .unwrap();
    core.join(now, stream(), JoinReason::Watch, None, [])
        .unwrap();
    assert!(core.leave(&stream(), JoinReason::Watch).is_empty());
    assert_eq!(core.reasons(&stream()), vec![JoinReason::Publish]);
    let out = core.leave(&stream(), JoinReason::Publish);
    assert!(matches!(out[..], [Output::Unsubscribe(_)]));
    assert!(!core.is_joined(&stream()));
}

#[test]
fn disconnected_peer_loses_its_bad_mark() {
    let now = Instant::now();
    let rogue = PeerId::random();
    let mut core = joined(now, &[rogue]);
    let c = chunk(1);
    core.on_gossip_header(now, msg(1), rogue, &stream(), c.header.clone());
    let bad = Ok(ChunkResponse::Found {
        header: c.header.clone(),
        payload: Bytes::from_static(b"x"),
    });
    core.on_fetch_result(now, (stream(), 1), rogue, bad);
    assert!(core.streams[&stream()].bad_peers.contains(&rogue));
    core.peer_left(now, &rogue);
    assert!(core.streams[&stream()].bad_peers.is_empty());
}

#[test]
fn copies_of_one_header_are_tracked_up_to_a_bound() {
    let now = Instant::now();
    let mut core = joined(now, &[]);
    let h = chunk(0).header;
    let mut ignored = 0;
    for i in 0..100 {
        let out = core.on_gossip_header(now, msg(i), PeerId::random(), &stream(), h.clone());
        ignored += verdicts(&out)
            .iter()
            .filter(|v| **v == Verdict::Ignore(IgnoreReason::Duplicate))
            .count();
    }
    assert_eq!(ignored, 100 - MAX_MSGS_PER_PENDING);
}

fn verified(out: &[Output]) -> Vec<(PeerId, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Verified { peer, bytes, .. } => Some((*peer, *bytes)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_cheapest_holder_is_asked_first_and_unusable_peers_never() {
    let now = Instant::now();
    let (dear, cheap, banned, other) = (
        PeerId::random(),
        PeerId::random(),
        PeerId::random(),
        PeerId::random(),
    );
    let mut core = joined(now, &[other]);
    core.set_peer_price(dear, PeerPrice::Usable(900));
    core.set_peer_price(cheap, PeerPrice::Usable(100));
    core.set_peer_price(banned, PeerPrice::Unusable);
    core.set_peer_price(other, PeerPrice::Usable(0));
    let c = chunk(0);
    // The dear peer's header arrives first: it is asked at once (nothing
    // waits for a cheaper one to announce).
    let out = core.on_gossip_header(now, msg(1), dear, &stream(), c.header.clone());
    assert_eq!(fetches(&out)[0].0, dear);
    // The next chunk is announced by all three: the cheapest holder is
    // asked, not the first announcer, not the free peer that did not
    // announce it (it may not hold it), never the unusable one.
    let c1 = chunk(1);
    for (i, p) in [banned, dear, cheap].into_iter().enumerate() {
        let out = core.on_gossip_header(now, msg(10 + i as u64), p, &stream(), c1.header.clone());
        if i == 0 {
            // The only holder is unusable: the free topic peer is tried.
            assert_eq!(
                fetches(&out),
                vec![(other, ChunkRequest::ByCid(c1.header.header.cid))]
            );
        }
    }
    // The free peer did not have it: among holders, cheapest first.
    let out = core.on_fetch_result(now, (stream(), 1), other, Ok(ChunkResponse::NotFound));
    assert_eq!(fetches(&out)[0].0, cheap);
    let out = core.on_fetch_result(now, (stream(), 1), cheap, found(&c1));
    assert_eq!(verified(&out), vec![(cheap, c1.payload.len() as u64)]);
    assert_eq!(ready(&out), vec![1]);
}

#[test]
fn a_peer_asking_for_payment_is_skipped_until_paid() {
    let now = Instant::now();
    let (server, backup) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[backup]);
    core.set_peer_price(server, PeerPrice::Usable(10));
    core.set_peer_price(backup, PeerPrice::Usable(50));
    let c = chunk(0);
    core.on_gossip_header(now, msg(1), server, &stream(), c.header.clone());
    let demand = Ok(ChunkResponse::PaymentRequired {
        owed: 40,
        paid: 0,
        credit_bytes: 4,
    });
    let out = core.on_fetch_result(now, (stream(), 0), server, demand);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::PaymentDemanded { peer, owed: 40, .. } if *peer == server)));
    assert_eq!(fetches(&out)[0].0, backup, "falls back at once");
    assert!(penalties(&out) == 0, "asking to be paid is no misbehaviour");
    // The next chunk skips the server while it waits for payment...
    let c1 = chunk(1);
    core.on_gossip_header(now, msg(2), backup, &stream(), c1.header.clone());
    let out = core.on_gossip_header(now, msg(3), server, &stream(), c1.header.clone());
    assert!(fetches(&out).is_empty(), "already asked the backup");
    let c2 = chunk(2);
    let out = core.on_gossip_header(now, msg(4), server, &stream(), c2.header.clone());
    assert_eq!(fetches(&out)[0].0, backup);
    // ...and is asked again once paid.
    core.peer_paid(&server);
    let c3 = chunk(3);
    let out = core.on_gossip_header(now, msg(5), server, &stream(), c3.header.clone());
    assert_eq!(fetches(&out)[0].0, server);
}

#[test]
fn a_corrupt_payload_is_never_reported_verified() {
    let now = Instant::now();
    let (rogue, honest) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[honest]);
    let c = chunk(0);
    core.on_gossip_header(now, msg(1), rogue, &stream(), c.header.clone());
    let garbage = Ok(ChunkResponse::Found {
        header: c.header.clone(),
        payload: Bytes::from_static(b"garbage"),
    });
    let out = core.on_fetch_result(now, (stream(), 0), rogue, garbage);
    assert!(verified(&out).is_empty());
    assert_eq!(penalties(&out), 1);
    let out = core.on_fetch_result(now, (stream(), 0), honest, found(&c));
    assert_eq!(verified(&out), vec![(honest, c.payload.len() as u64)]);
}

mod parts;
