//! Parts (LL-HLS) in the relay core: pulled and forwarded like chunks,
//! segments assembled from them, and every bad input.

use super::*;
use crate::protocols::live::wire::PartInfo;

fn parts_of(seq: u64) -> (Vec<Part>, Chunk) {
    let pieces: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("seg {seq} part {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
    crate::test_utils::signed_parts(&key(), &stream(), seq, &refs)
}

fn part_found(p: &Part) -> Result<ChunkResponse, FetchError> {
    Ok(ChunkResponse::Part {
        header: p.header.clone(),
        payload: p.payload.clone(),
    })
}

fn part_fetches(out: &[Output]) -> Vec<(PeerId, PartKey)> {
    out.iter()
        .filter_map(|o| match o {
            Output::FetchPart { peer, key, .. } => Some((*peer, key.clone())),
            _ => None,
        })
        .collect()
}

fn parts_ready(out: &[Output]) -> Vec<(u64, u16)> {
    out.iter()
        .filter_map(|o| match o {
            Output::PartReady(p) => Some((p.seq(), p.index())),
            _ => None,
        })
        .collect()
}

fn verified_bytes(out: &[Output]) -> u64 {
    out.iter()
        .filter_map(|o| match o {
            Output::Verified { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .sum()
}

/// Gossips every part from `peer` and answers each fetch from it.
fn pull_parts(core: &mut RelayCore, now: Instant, peer: PeerId, parts: &[Part]) -> Vec<Output> {
    let mut all = vec![];
    for (i, p) in parts.iter().enumerate() {
        let out = core.on_gossip_part(now, msg(100 + i as u64), peer, &stream(), p.header.clone());
        assert_eq!(part_fetches(&out).len(), 1, "{out:?}");
        let key = (stream(), p.seq(), p.index());
        let out2 = core.on_part_result(now, key, peer, part_found(p));
        all.extend(out);
        all.extend(out2);
    }
    all
}

#[test]
fn parts_are_pulled_verified_forwarded_and_assemble_the_segment() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = joined(now, &[a]);
    let (parts, seg) = parts_of(0);
    let out = pull_parts(&mut core, now, a, &parts);
    assert_eq!(parts_ready(&out), vec![(0, 0), (0, 1), (0, 2)]);
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Accept; 3],
        "forwarded after the payload checked"
    );
    assert_eq!(verified_bytes(&out), seg.payload.len() as u64);
    // Served to others by CID.
    assert!(matches!(
        core.serve(&ChunkRequest::ByCid(parts[1].header.header.cid)),
        ChunkResponse::Part { .. }
    ));
    // The segment header: assembled from the parts, nothing pulled.
    let out = core.on_gossip_header(now, msg(1), a, &stream(), seg.header.clone());
    assert!(fetches(&out).is_empty(), "no second download: {out:?}");
    assert_eq!(ready(&out), vec![0]);
    assert_eq!(verdicts(&out), vec![Verdict::Accept]);
    assert_eq!(verified_bytes(&out), 0, "nothing more to pay for");
    assert!(matches!(
        core.serve(&ChunkRequest::ByCid(seg.header.header.cid)),
        ChunkResponse::Found { .. }
    ));
}

#[test]
fn a_segment_header_waits_for_parts_in_flight_then_assembles() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = joined(now, &[a]);
    let (parts, seg) = parts_of(0);
    pull_parts(&mut core, now, a, &parts[..2]);
    // Part 2 announced and being fetched when the segment header comes.
    let out = core.on_gossip_part(now, msg(50), a, &stream(), parts[2].header.clone());
    assert_eq!(part_fetches(&out).len(), 1);
    let out = core.on_gossip_header(now, msg(1), a, &stream(), seg.header.clone());
    assert!(fetches(&out).is_empty(), "waits for the part: {out:?}");
    assert!(verdicts(&out).is_empty());
    // Ticks while waiting pull nothing.
    let out = core.tick(now + Duration::from_millis(500));
    assert!(fetches(&out).is_empty());
    let out = core.on_part_result(now, (stream(), 0, 2), a, part_found(&parts[2]));
    assert_eq!(ready(&out), vec![0], "assembled: {out:?}");
    assert_eq!(
        verdicts(&out).len(),
        2,
        "the part's and the segment's headers"
    );
}

#[test]
fn out_of_order_and_duplicate_part_headers() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[a, b]);
    let (parts, seg) = parts_of(0);
    // Part 2 first, then 0 and 1; the same header again from b.
    let order = [2usize, 0, 1];
    for &i in &order {
        let out = core.on_gossip_part(now, msg(i as u64), a, &stream(), parts[i].header.clone());
        assert_eq!(part_fetches(&out).len(), 1);
        let dup = core.on_gossip_part(
            now,
            msg(10 + i as u64),
            b,
            &stream(),
            parts[i].header.clone(),
        );
        assert!(part_fetches(&dup).is_empty(), "one fetch per part");
        assert!(verdicts(&dup).is_empty(), "decided with the first");
    }
    let mut out = vec![];
    for &i in &order {
        out.extend(core.on_part_result(now, (stream(), 0, i as u16), a, part_found(&parts[i])));
    }
    assert_eq!(
        verdicts(&out).len(),
        6,
        "both copies of each header accepted"
    );
    let out = core.on_gossip_header(now, msg(99), a, &stream(), seg.header);
    assert_eq!(ready(&out), vec![0]);
}

#[test]
fn forged_misplaced_equivocating_and_stale_parts() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = joined(now, &[a]);
    let (parts, seg) = parts_of(0);
    // Forged signature.
    let mut forged = parts[0].header.clone();
    forged.signature = Sig([7; 64]);
    let out = core.on_gossip_part(now, msg(1), a, &stream(), forged);
    assert!(matches!(
        verdicts(&out)[..],
        [Verdict::Reject(Rejection::Invalid(WireError::BadSignature))]
    ));
    assert!(part_fetches(&out).is_empty());
    // On another stream's topic.
    let other = stream_named("other");
    core.join(now, other.clone(), JoinReason::Watch, Some(0), [])
        .unwrap();
    let out = core.on_gossip_part(now, msg(2), a, &other, parts[0].header.clone());
    assert!(matches!(
        verdicts(&out)[..],
        [Verdict::Reject(Rejection::WrongTopic { .. })]
    ));
    // The creator signs two payloads for one part: the first stays.
    pull_parts(&mut core, now, a, &parts[..1]);
    let (twin, _) = crate::test_utils::signed_parts(&key(), &stream(), 0, &[b"another"]);
    let out = core.on_gossip_part(now, msg(3), a, &stream(), twin[0].header.clone());
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Ignore(IgnoreReason::Equivocation)]
    );
    // Once the segment is here, its parts are stale. Parts 1 and 2 were
    // never announced: the segment is pulled whole at once.
    let out = core.on_gossip_header(now, msg(4), a, &stream(), seg.header.clone());
    assert!(ready(&out).is_empty());
    assert_eq!(
        fetches(&out),
        vec![(a, ChunkRequest::ByCid(seg.header.header.cid))]
    );
    let out = core.on_fetch_result(now, (stream(), 0), a, found(&seg));
    assert_eq!(ready(&out), vec![0]);
    let out = core.on_gossip_part(now, msg(5), a, &stream(), parts[2].header.clone());
    assert_eq!(verdicts(&out), vec![Verdict::Ignore(IgnoreReason::Stale)]);
    // A part of an old segment after newer segments arrived.
    let (_, seg1) = parts_of(1);
    let _ = core.on_gossip_header(now, msg(6), a, &stream(), seg1.header.clone());
    let (old, _) = parts_of(0);
    let out = core.on_gossip_part(now, msg(7), a, &stream(), old[1].header.clone());
    assert_eq!(verdicts(&out), vec![Verdict::Ignore(IgnoreReason::Stale)]);
}

#[test]
fn a_bad_part_payload_is_penalised_and_fetched_elsewhere() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[a, b]);
    let (parts, _) = parts_of(0);
    let out = core.on_gossip_part(now, msg(1), a, &stream(), parts[0].header.clone());
    assert_eq!(part_fetches(&out)[0].0, a);
    let bad = Ok(ChunkResponse::Part {
        header: parts[0].header.clone(),
        payload: Bytes::from_static(b"corrupt"),
    });
    let out = core.on_part_result(now, (stream(), 0, 0), a, bad);
    assert_eq!(penalties(&out), 1);
    assert!(verdicts(&out).is_empty(), "never forwarded");
    assert!(parts_ready(&out).is_empty());
    assert_eq!(verified_bytes(&out), 0, "never paid for");
    assert_eq!(part_fetches(&out), vec![(b, (stream(), 0, 0))]);
    let out = core.on_part_result(now, (stream(), 0, 0), b, part_found(&parts[0]));
    assert_eq!(parts_ready(&out), vec![(0, 0)]);
}

#[test]
fn a_missing_part_makes_the_segment_come_whole() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = joined(now, &[a]);
    let (parts, seg) = parts_of(0);
    pull_parts(&mut core, now, a, &parts[..1]);
    let _ = core.on_gossip_part(now, msg(20), a, &stream(), parts[1].header.clone());
    // Part 1 never answers; part 2 never announced. The segment comes.
    let out = core.on_gossip_header(now, msg(1), a, &stream(), seg.header.clone());
    assert!(fetches(&out).is_empty(), "part 1 still in flight");
    let cfg = RelayConfig::default();
    let mut t = now;
    let mut pulled = false;
    let mut missing = 0;
    while t < now + cfg.part_give_up_after + Duration::from_secs(2) && !pulled {
        t += Duration::from_millis(100);
        let out = core.tick(t);
        missing += out
            .iter()
            .filter(|o| matches!(o, Output::PartMissing(_)))
            .count();
        pulled = fetches(&out)
            .iter()
            .any(|(_, r)| *r == ChunkRequest::ByCid(seg.header.header.cid));
    }
    assert_eq!(missing, 1);
    assert!(pulled, "segment pulled whole after the part was given up");
    assert!(t <= now + cfg.part_give_up_after + Duration::from_millis(100));
}

#[test]
fn parts_that_do_not_make_the_segment_are_not_trusted() {
    let now = Instant::now();
    let a = PeerId::random();
    let mut core = joined(now, &[a]);
    let (parts, seg) = parts_of(0);
    pull_parts(&mut core, now, a, &parts);
    // The creator lists these parts' sizes for a segment with another
    // payload: assembly fails the CID check and the segment is pulled.
    let payload = Bytes::from(vec![b'x'; seg.payload.len()]);
    let mut h = seg.header.header.clone();
    h.cid = crate::protocols::live::wire::ChunkCid::of(&payload);
    h.parts = parts
        .iter()
        .map(|p| PartInfo {
            size: p.payload.len() as u32,
            duration_us: 250_000,
            independent: p.index() == 0,
        })
        .collect();
    let other = h.sign(&key()).unwrap();
    let out = core.on_gossip_header(now, msg(1), a, &stream(), other.clone());
    assert!(ready(&out).is_empty());
    assert_eq!(
        fetches(&out),
        vec![(a, ChunkRequest::ByCid(other.header.cid))]
    );
}

#[test]
fn pending_and_held_parts_are_bounded() {
    let now = Instant::now();
    let a = PeerId::random();
    let cfg = RelayConfig::default();
    let mut core = joined(now, &[a]);
    // A flood of part headers of a segment that never completes.
    let pieces: Vec<Vec<u8>> = (0..100).map(|i| format!("p{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
    let (parts, _) = crate::test_utils::signed_parts(&key(), &stream(), 0, &refs);
    let mut refused = 0;
    for (i, p) in parts.iter().enumerate() {
        let out = core.on_gossip_part(now, msg(i as u64), a, &stream(), p.header.clone());
        refused += verdicts(&out)
            .iter()
            .filter(|v| **v == Verdict::Ignore(IgnoreReason::TooManyPending))
            .count();
    }
    assert_eq!(core.stats().pending_parts, cfg.max_pending_parts);
    assert_eq!(refused, 100 - cfg.max_pending_parts);
    // Held parts: only for the newest `part_segments` segments.
    let mut core = joined(now, &[a]);
    for seq in 0..10 {
        let (parts, _) = parts_of(seq);
        pull_parts(&mut core, now, a, &parts);
    }
    assert_eq!(core.stats().parts, 3 * cfg.part_segments as usize);
    assert!(core.get_part(&stream(), 0, 0).is_none());
    assert!(core.get_part(&stream(), 9, 2).is_some());
    // Leaving the stream drops everything.
    let _ = core.leave(&stream(), JoinReason::Watch);
    assert_eq!(core.stats().parts, 0);
    assert!(matches!(
        core.serve(&ChunkRequest::ByCid(parts_of(9).0[0].header.header.cid)),
        ChunkResponse::NotFound
    ));
}

#[test]
fn a_segment_of_one_part_is_served_and_taken_either_way() {
    // One part = the whole segment: the same CID. A peer that assembled
    // the chunk answers a part request with the chunk, and the other way
    // round; both are accepted, checked against the signed header.
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut core = joined(now, &[a, b]);
    let (parts, seg) = crate::test_utils::signed_parts(&key(), &stream(), 0, &[b"whole"]);
    let out = core.on_gossip_part(now, msg(1), a, &stream(), parts[0].header.clone());
    assert_eq!(part_fetches(&out).len(), 1);
    let out = core.on_part_result(now, (stream(), 0, 0), a, found(&seg));
    assert_eq!(parts_ready(&out), vec![(0, 0)]);
    assert_eq!(verified_bytes(&out), 5);
    let out = core.on_gossip_header(now, msg(2), a, &stream(), seg.header.clone());
    assert_eq!(ready(&out), vec![0], "assembled from its one part");
    // A node that missed the part pulls the chunk and may get the part.
    let mut other = joined(now, &[b]);
    let out = other.on_gossip_header(now, msg(3), b, &stream(), seg.header.clone());
    assert_eq!(fetches(&out).len(), 1);
    let out = other.on_fetch_result(now, (stream(), 0), b, part_found(&parts[0]));
    assert_eq!(ready(&out), vec![0]);
}

#[test]
fn over_all_streams_parts_leave_the_busiest_stream_first() {
    let now = Instant::now();
    let a = PeerId::random();
    // Parts may hold 4 × 100 bytes over all streams.
    let cfg = RelayConfig::default().with_max_total_bytes(1600);
    let mut core = core_with(cfg, now, &[a]);
    let quiet = stream_named("quiet");
    core.join(now, quiet.clone(), JoinReason::Watch, Some(0), [a])
        .unwrap();
    let part_of = |stream: &StreamId, seq: u64, fill: u8| {
        let (parts, _) = crate::test_utils::signed_parts(&key(), stream, seq, &[&[fill; 100]]);
        parts.into_iter().next().unwrap()
    };
    let add = |core: &mut RelayCore, p: Part, n: u64| {
        let s = p.stream().clone();
        let key = (s.clone(), p.seq(), p.index());
        let _ = core.on_gossip_part(now, msg(n), a, &s, p.header.clone());
        let _ = core.on_part_result(now, key, a, part_found(&p));
    };
    add(&mut core, part_of(&quiet, 0, 1), 1);
    for seq in 0..3 {
        add(&mut core, part_of(&stream(), seq, 2 + seq as u8), 10 + seq);
    }
    assert_eq!(core.stats().parts, 4);
    // A fifth part (the busy stream's): the busy stream's oldest goes,
    // the quiet stream keeps its one.
    add(&mut core, part_of(&stream(), 3, 9), 20);
    assert_eq!(core.stats().parts, 4);
    assert!(core.get_part(&quiet, 0, 0).is_some());
    assert!(core.get_part(&stream(), 0, 0).is_none());
    assert!(core.get_part(&stream(), 3, 0).is_some());
}
