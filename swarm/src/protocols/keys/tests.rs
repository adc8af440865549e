//! Codec tests of the key protocol: round trips, limits, malformed bytes.

use super::codec::{KeyCodec, KEYS_PROTOCOL};
use super::paywall::{seal_key, StreamSecret};
use super::wire::*;
use crate::protocols::live::wire::{Sig, StreamId, WireError};
use ed25519_dalek::SigningKey;
use libp2p::request_response::Codec;
use proptest::prelude::*;

fn request(payment: bool) -> KeyRequest {
    KeyRequest {
        stream: StreamId::new([1; 32], "paid").unwrap(),
        epoch: 42,
        channel: 7,
        payment: payment.then_some(Payment {
            cumulative: 12_000_000,
            signature: Sig([5; 64]),
        }),
    }
}

fn granted() -> KeyResponse {
    let s = StreamId::new([1; 32], "paid").unwrap();
    let key = StreamSecret::from_bytes([2; 32]).epoch_key(&s, 42);
    let viewer = SigningKey::from_bytes(&[3; 32]).verifying_key();
    KeyResponse::Granted {
        epoch: 42,
        key: seal_key(&key, &viewer, &s, 42, [4; 32]).into(),
    }
}

#[test]
fn requests_and_responses_round_trip_within_their_limits() {
    for r in [request(false), request(true)] {
        let b = encode_request(&r).unwrap();
        assert!(b.len() <= MAX_KEY_REQUEST);
        assert_eq!(decode_request(&b).unwrap(), r);
    }
    for r in [
        granted(),
        KeyResponse::Refused(KeyRefusal::Unpaid {
            required: u128::MAX,
            paid: 0,
        }),
        KeyResponse::Refused(KeyRefusal::bad_voucher("é".repeat(300))),
    ] {
        let b = encode_response(&r).unwrap();
        assert!(b.len() <= MAX_KEY_RESPONSE);
        assert_eq!(decode_response(&b).unwrap(), r);
    }
}

#[test]
fn malformed_oversized_and_invalid_messages_are_refused_with_their_reason() {
    assert_eq!(decode_request(&[]), Err(WireError::Empty));
    assert!(matches!(
        decode_request(&vec![0; MAX_KEY_REQUEST + 1]),
        Err(WireError::TooLarge { .. })
    ));
    let mut b = encode_request(&request(true)).unwrap();
    b.push(0);
    assert_eq!(decode_request(&b), Err(WireError::Trailing(1)));
    assert!(matches!(
        decode_request(&[0xff; 40]),
        Err(WireError::Malformed(_))
    ));
    // A stream id that does not validate (empty name).
    let mut bad = request(false);
    bad.stream.name.clear();
    let b = encode_request(&bad).unwrap();
    assert!(matches!(decode_request(&b), Err(WireError::Field { .. })));
    // A refusal reason longer than allowed, built by a hostile peer.
    let long = KeyResponse::Refused(KeyRefusal::BadVoucher("x".repeat(MAX_REASON + 1)));
    let b = postcard::to_stdvec(&long).unwrap();
    assert!(matches!(decode_response(&b), Err(WireError::Field { .. })));
}

#[tokio::test]
async fn the_codec_caps_reads_and_round_trips() {
    let mut out = futures::io::Cursor::new(Vec::new());
    KeyCodec
        .write_request(&KEYS_PROTOCOL, &mut out, request(true))
        .await
        .unwrap();
    let mut input = futures::io::Cursor::new(out.into_inner());
    assert_eq!(
        KeyCodec
            .read_request(&KEYS_PROTOCOL, &mut input)
            .await
            .unwrap(),
        request(true)
    );
    let mut big = futures::io::Cursor::new(vec![1u8; MAX_KEY_RESPONSE + 1]);
    let err = KeyCodec
        .read_response(&KEYS_PROTOCOL, &mut big)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

proptest! {
    /// No input makes the decoders panic; whatever decodes survives a
    /// round trip.
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(r) = decode_request(&b) {
            prop_assert_eq!(decode_request(&encode_request(&r).unwrap()).unwrap(), r);
        }
        if let Ok(r) = decode_response(&b) {
            prop_assert_eq!(decode_response(&encode_response(&r).unwrap()).unwrap(), r);
        }
    }
}
