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
        epoch: None,
        parts: vec![],
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

fn part(key: &SigningKey, seq: u64, index: u16, payload: &[u8]) -> PartHeader {
    PartHeader {
        stream: StreamId::new(key.verifying_key().to_bytes(), "live").unwrap(),
        seq,
        index,
        independent: index == 0,
        duration_us: 300_000,
        target_us: 300_000,
        cid: ChunkCid::of(payload),
        size: payload.len() as u32,
        published_at_ms: 1_000,
        discontinuity: false,
        epoch: None,
    }
}

#[test]
fn part_header_round_trips_verifies_and_is_served() {
    let k = key(1);
    let signed = part(&k, 7, 2, b"part").sign(&k).unwrap();
    let bytes = GossipMessage::Part(signed.clone()).encode();
    assert!(
        bytes.len() < 250,
        "part header is compact: {} bytes",
        bytes.len()
    );
    let GossipMessage::Part(back) = GossipMessage::decode(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!(back, signed);
    back.verify().unwrap();
    back.check_payload(b"part").unwrap();
    assert!(back.check_payload(b"parT").is_err());
    assert_eq!(back.header.program_date_ms(), 700);
    // Domain separation: the same header bytes signed under the chunk
    // domain do not verify as a part.
    let other_domain = Sig(k
        .sign(&signing_bytes(DOMAIN_CHUNK, &signed.header))
        .to_bytes());
    let forged = SignedPartHeader {
        header: signed.header.clone(),
        signature: other_domain,
    };
    assert_eq!(forged.verify(), Err(WireError::BadSignature));
    // Served with its payload.
    let r = ChunkResponse::Part {
        header: signed.clone(),
        payload: Bytes::from_static(b"part"),
    };
    assert_eq!(ChunkResponse::decode(Bytes::from(r.encode())).unwrap(), r);
}

#[test]
fn part_fields_are_checked() {
    let k = key(1);
    let mut p = part(&k, 1, 0, b"x");
    p.independent = false;
    assert!(matches!(
        p.sign(&k),
        Err(WireError::Field {
            field: "independent",
            ..
        })
    ));
    let p = part(&k, 1, MAX_PARTS as u16, b"x");
    assert!(matches!(
        p.sign(&k),
        Err(WireError::Field { field: "index", .. })
    ));
    let mut p = part(&k, 1, 1, b"x");
    p.duration_us = 0;
    assert!(p.sign(&k).is_err());
    // A segment header's parts must add up to its payload and start
    // independent.
    let mut h = header(&k, 1, b"abcd");
    h.parts = vec![
        PartInfo {
            size: 2,
            duration_us: 1,
            independent: true,
        },
        PartInfo {
            size: 1,
            duration_us: 1,
            independent: false,
        },
    ];
    assert!(matches!(
        h.clone().sign(&k),
        Err(WireError::Field { field: "parts", .. })
    ));
    h.parts[1].size = 2;
    h.clone().sign(&k).unwrap();
    h.parts[0].independent = false;
    assert!(h.clone().sign(&k).is_err());
    h.parts = vec![
        PartInfo {
            size: 1,
            duration_us: 1,
            independent: true
        };
        MAX_PARTS + 1
    ];
    h.size = MAX_PARTS as u32 + 1;
    match h.sign(&k) {
        Err(WireError::Field {
            field: "parts",
            reason,
        }) => assert!(reason.contains("at most"), "{reason}"),
        other => panic!("{other:?}"),
    }
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
    assert_eq!(StreamId::from_topic("/vilokanam/stream/4/nothex-x"), None);
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
                epoch: (seq % 2 == 0).then_some(published_at_ms / 7),
                parts: vec![],
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

fn announcement(key: &SigningKey, offer: Option<Offer>) -> Announcement {
    Announcement {
        stream: StreamId::new(key.verifying_key().to_bytes(), "paid").unwrap(),
        title: "t".into(),
        tags: vec![],
        codec: "h264/aac mpegts".into(),
        started_at_ms: 1,
        updated_at_ms: 2,
        last_seq: None,
        ended: false,
        offer,
    }
}

fn offer(price_per_sec: u128) -> Offer {
    Offer {
        price_per_sec,
        payee: [5; 32],
        genesis: [9; 32],
        epoch_secs: 6,
        key_servers: vec![KeyServerAddr {
            peer_id: vec![7; 38],
            addrs: vec!["/ip4/127.0.0.1/tcp/4001".into(); MAX_KEY_SERVER_ADDRS],
        }],
    }
}

#[test]
fn a_paid_announcement_carries_its_offer_under_the_signature() {
    let k = key(3);
    let signed = announcement(&k, Some(offer(2_000_000))).sign(&k).unwrap();
    let bytes = GossipMessage::Announce(signed.clone()).encode();
    let GossipMessage::Announce(back) = GossipMessage::decode(&bytes).unwrap() else {
        panic!("not an announcement");
    };
    back.verify().unwrap();
    assert_eq!(back, signed);
    // The price, the payee and the chain are all signed: changing any of
    // them breaks the signature.
    for tamper in [
        |o: &mut Offer| o.price_per_sec = 1,
        |o: &mut Offer| o.payee[0] ^= 1,
        |o: &mut Offer| o.genesis[31] ^= 1,
        |o: &mut Offer| o.epoch_secs += 1,
        |o: &mut Offer| o.key_servers[0].peer_id[0] ^= 1,
    ] {
        let mut forged = signed.clone();
        tamper(forged.announcement.offer.as_mut().unwrap());
        assert_eq!(forged.verify(), Err(WireError::BadSignature));
    }
    // Dropping the offer (a paid stream passed off as free) too.
    let mut forged = signed;
    forged.announcement.offer = None;
    assert_eq!(forged.verify(), Err(WireError::BadSignature));
}

#[test]
fn offers_out_of_range_are_refused_with_their_reason() {
    let k = key(4);
    for (price, why) in [(0, "zero"), (MAX_PRICE_PER_SEC + 1, "limit")] {
        let err = announcement(&k, Some(offer(price))).sign(&k).unwrap_err();
        assert!(
            matches!(&err, WireError::Field { field: "offer.price_per_sec", reason } if reason.contains(why)),
            "{err:?}"
        );
    }
    announcement(&k, Some(offer(MAX_PRICE_PER_SEC)))
        .sign(&k)
        .unwrap();
    type Tamper = fn(&mut Offer);
    let bad: [(Tamper, &str); 5] = [
        (|o| o.epoch_secs = 0, "offer.epoch_secs"),
        (|o| o.epoch_secs = MAX_EPOCH_SECS + 1, "offer.epoch_secs"),
        (|o| o.key_servers.clear(), "offer.key_servers"),
        (
            |o| o.key_servers[0].peer_id.clear(),
            "offer.key_servers.peer_id",
        ),
        (
            |o| o.key_servers[0].addrs[0] = "x".repeat(MAX_ADDR + 1),
            "offer.key_servers.addrs",
        ),
    ];
    for (tamper, name) in bad {
        let mut o = offer(1);
        tamper(&mut o);
        let err = announcement(&k, Some(o)).sign(&k).unwrap_err();
        assert!(
            matches!(&err, WireError::Field { field, .. } if *field == name),
            "{err:?}"
        );
    }
    announcement(&k, None).sign(&k).unwrap();
}

proptest! {
    #[test]
    fn announcements_with_any_offer_round_trip(price in 1..=MAX_PRICE_PER_SEC, payee in any::<[u8; 32]>(), genesis in any::<[u8; 32]>(), paid in any::<bool>()) {
        let k = key(6);
        let o = paid.then_some(Offer { price_per_sec: price, payee, genesis, ..offer(1) });
        let signed = announcement(&k, o).sign(&k).unwrap();
        let msg = GossipMessage::Announce(signed);
        let bytes = msg.encode();
        prop_assert!(bytes.len() <= MAX_GOSSIP_MESSAGE);
        prop_assert_eq!(GossipMessage::decode(&bytes).unwrap(), msg);
    }
}

#[test]
fn bandwidth_messages_round_trip_and_bad_terms_are_refused() {
    let terms = BandwidthTerms {
        fee_per_mib: 50_000_000,
        payee: [3; 32],
        chain: [4; 32],
        credit_bytes: 4 << 20,
    };
    let pay = BandwidthPayment {
        channel: 7,
        cumulative: 123_456,
        signature: Sig([9; 64]),
    };
    for req in [ChunkRequest::Terms, ChunkRequest::Pay(pay)] {
        assert_eq!(ChunkRequest::decode(&req.encode()).unwrap(), req);
    }
    assert!(ChunkRequest::Pay(pay).encode().len() < MAX_REQUEST);
    for resp in [
        ChunkResponse::Terms(terms),
        ChunkResponse::Terms(BandwidthTerms::free()),
        ChunkResponse::PaymentRequired {
            owed: 10,
            paid: 3,
            credit_bytes: 99,
        },
        ChunkResponse::PayReceived,
    ] {
        let bytes = Bytes::from(resp.encode());
        assert_eq!(ChunkResponse::decode(bytes).unwrap(), resp);
    }
    // A fee with no payee, an absurd fee, trailing bytes: refused.
    let no_payee = ChunkResponse::Terms(BandwidthTerms {
        payee: [0; 32],
        ..terms
    });
    let err = ChunkResponse::decode(Bytes::from(no_payee.encode())).unwrap_err();
    assert!(err.to_string().contains("payee"), "{err}");
    let dear = ChunkResponse::Terms(BandwidthTerms {
        fee_per_mib: u64::MAX,
        ..terms
    });
    assert!(ChunkResponse::decode(Bytes::from(dear.encode())).is_err());
    let mut trailing = ChunkResponse::PayReceived.encode();
    trailing.push(0);
    assert!(matches!(
        ChunkResponse::decode(Bytes::from(trailing)),
        Err(WireError::Trailing(1))
    ));
    let mut trailing = ChunkResponse::Terms(terms).encode();
    trailing.push(0);
    assert!(ChunkResponse::decode(Bytes::from(trailing)).is_err());
}

proptest! {
    /// Every bandwidth message round-trips, stays within the request
    /// limit, and any byte string decodes to a value or an error (never
    /// a panic); terms that decode are always in range.
    #[test]
    fn bandwidth_messages_round_trip(
        fee in 0..=crate::protocols::bandwidth::MAX_FEE_PER_MIB,
        credit in 0..=crate::protocols::bandwidth::MAX_CREDIT_BYTES,
        payee in any::<[u8; 32]>(),
        chain in any::<[u8; 32]>(),
        channel in any::<u64>(),
        cumulative in any::<u128>(),
        owed in any::<u128>(),
        paid in any::<u128>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let terms = BandwidthTerms { fee_per_mib: fee, payee: [1; 32], chain: [2; 32], credit_bytes: credit };
        let terms = if fee == 0 { BandwidthTerms { payee, chain, ..terms } } else { terms };
        let resp = [
            ChunkResponse::Terms(terms),
            ChunkResponse::PaymentRequired { owed, paid, credit_bytes: credit },
            ChunkResponse::PayReceived,
        ];
        for r in resp {
            prop_assert_eq!(ChunkResponse::decode(Bytes::from(r.encode())).unwrap(), r);
        }
        let req = ChunkRequest::Pay(BandwidthPayment { channel, cumulative, signature: Sig([7; 64]) });
        let bytes = req.encode();
        prop_assert!(bytes.len() <= MAX_REQUEST);
        prop_assert_eq!(ChunkRequest::decode(&bytes).unwrap(), req);
        let mut tagged = vec![WIRE_VERSION, 2];
        tagged.extend(&garbage);
        if let Ok(ChunkResponse::Terms(t)) = ChunkResponse::decode(Bytes::from(tagged)) {
            prop_assert!(t.validate().is_ok());
        }
        let _ = ChunkRequest::decode(&garbage);
    }
}
