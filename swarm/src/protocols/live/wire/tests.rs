//! Tests of the wire format: round trips, limits, signatures, and
//! decoders that never panic.

use super::*;
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn header(key: &SigningKey, seq: u64, payload: &[u8]) -> ChunkHeader {
    ChunkHeader {
        stream: StreamId::new(key.verifying_key().to_bytes(), "live").unwrap(),
        seq,
        duration_us: 1_000_000,
        cid: ChunkCid::of(payload),
        size: payload.len() as u32,
        published_at_ms: 1,
        discontinuity: false,
    }
}

#[test]
fn signed_header_round_trips_and_verifies() {
    let k = key(1);
    let signed = header(&k, 7, b"hello").sign(&k).unwrap();
    let bytes = GossipMessage::Chunk(signed.clone()).encode();
    assert!(
        bytes.len() < 250,
        "header is compact: {} bytes",
        bytes.len()
    );
    let GossipMessage::Chunk(back) = GossipMessage::decode(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!(back, signed);
    back.verify().unwrap();
    back.check_payload(b"hello").unwrap();
    assert!(back.check_payload(b"hellO").is_err());
}

#[test]
fn forged_signature_is_rejected() {
    let creator = key(1);
    let rogue = key(2);
    let mut signed = header(&rogue, 1, b"x").sign(&rogue).unwrap();
    signed.header.stream.creator = creator.verifying_key().to_bytes();
    assert_eq!(signed.verify(), Err(WireError::BadSignature));
    // Tampering with any field breaks the signature.
    let mut ok = header(&creator, 1, b"x").sign(&creator).unwrap();
    ok.header.seq = 2;
    assert_eq!(ok.verify(), Err(WireError::BadSignature));
}

#[test]
fn signing_with_wrong_key_is_refused() {
    let h = header(&key(1), 1, b"x");
    assert!(matches!(h.sign(&key(2)), Err(WireError::Field { .. })));
}

#[test]
fn oversized_and_bad_version_are_rejected() {
    let big = vec![WIRE_VERSION; MAX_GOSSIP_MESSAGE + 1];
    assert!(matches!(
        GossipMessage::decode(&big),
        Err(WireError::TooLarge { .. })
    ));
    assert_eq!(GossipMessage::decode(&[9, 0]), Err(WireError::Version(9)));
    assert_eq!(GossipMessage::decode(&[]), Err(WireError::Empty));
    let mut bytes = GossipMessage::Chunk(header(&key(1), 1, b"x").sign(&key(1)).unwrap()).encode();
    bytes.push(0);
    assert_eq!(GossipMessage::decode(&bytes), Err(WireError::Trailing(1)));
}

#[test]
fn header_claiming_oversized_payload_is_rejected() {
    let k = key(1);
    let mut h = header(&k, 1, b"x");
    h.size = MAX_CHUNK_PAYLOAD + 1;
    assert!(matches!(
        h.sign(&k),
        Err(WireError::Field { field: "size", .. })
    ));
}

#[test]
fn stream_topic_round_trips() {
    let id = StreamId::new([7; 32], "live").unwrap();
    assert_eq!(StreamId::from_topic(&id.topic()), Some(id));
    assert_eq!(StreamId::from_topic(ANNOUNCE_TOPIC), None);
    assert_eq!(StreamId::from_topic("/vilokanam/stream/1/nothex-x"), None);
}

#[test]
fn stream_id_text_form_round_trips() {
    let id = StreamId::new([0xab; 32], "my-stream_1.0").unwrap();
    let s = id.to_string();
    assert_eq!(s.parse::<StreamId>().unwrap(), id);
    assert!("nothex-x".parse::<StreamId>().is_err());
    assert!(StreamId::new([0; 32], "bad name").is_err());
    assert!(StreamId::new([0; 32], "").is_err());
    assert!(StreamId::new([0; 32], "x".repeat(65)).is_err());
}

#[test]
fn cid_is_cidv1_raw_sha256() {
    let c = ChunkCid::of(b"abc");
    let s = c.to_string();
    assert!(s.starts_with("bafkrei"), "{s}");
    assert_eq!(s.parse::<ChunkCid>().unwrap(), c);
    // A dag-pb CIDv0 is refused.
    assert!("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
        .parse::<ChunkCid>()
        .is_err());
}

#[test]
fn response_round_trips() {
    let k = key(3);
    let payload = Bytes::from_static(b"payload bytes");
    let header = header(&k, 4, &payload).sign(&k).unwrap();
    let r = ChunkResponse::Found {
        header,
        payload: payload.clone(),
    };
    assert_eq!(ChunkResponse::decode(Bytes::from(r.encode())).unwrap(), r);
    assert_eq!(
        ChunkResponse::decode(Bytes::from(ChunkResponse::NotFound.encode())).unwrap(),
        ChunkResponse::NotFound
    );
}

fn arb_stream() -> impl Strategy<Value = StreamId> {
    (any::<[u8; 32]>(), "[A-Za-z0-9_.-]{1,64}")
        .prop_map(|(creator, name)| StreamId { creator, name })
}

fn arb_header() -> impl Strategy<Value = ChunkHeader> {
    (
        arb_stream(),
        any::<u64>(),
        1u32..=30_000_000,
        any::<[u8; 32]>(),
        1u32..=MAX_CHUNK_PAYLOAD,
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(stream, seq, duration_us, d, size, published_at_ms, discontinuity)| ChunkHeader {
                stream,
                seq,
                duration_us,
                cid: ChunkCid(d),
                size,
                published_at_ms,
                discontinuity,
            },
        )
}

proptest! {
    #[test]
    fn gossip_chunk_round_trips(h in arb_header(), sig in any::<[u8; 32]>()) {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&sig);
        let msg = GossipMessage::Chunk(SignedHeader { header: h, signature: Sig(s) });
        let bytes = msg.encode();
        prop_assert!(bytes.len() <= MAX_GOSSIP_MESSAGE);
        prop_assert_eq!(GossipMessage::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn request_round_trips(stream in arb_stream(), seq in any::<u64>(), d in any::<[u8; 32]>()) {
        for r in [ChunkRequest::ByCid(ChunkCid(d)), ChunkRequest::BySeq { stream: stream.clone(), seq }, ChunkRequest::Latest(stream.clone())] {
            prop_assert_eq!(ChunkRequest::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn response_round_trips_any_payload(h in arb_header(), payload in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let r = ChunkResponse::Found { header: SignedHeader { header: h, signature: Sig([7; 64]) }, payload: Bytes::from(payload) };
        prop_assert_eq!(ChunkResponse::decode(Bytes::from(r.encode())).unwrap(), r);
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_decode_all(&data);
    }

    #[test]
    fn decoders_never_panic_on_mutated_messages(h in arb_header(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = GossipMessage::Chunk(SignedHeader { header: h, signature: Sig([1; 64]) }).encode();
        for (i, b) in flips { let i = i.index(bytes.len()); bytes[i] ^= b; }
        fuzz_decode_all(&bytes);
    }
}
