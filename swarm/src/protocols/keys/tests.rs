//! Wire and frame tests of the key protocol: round trips, limits,
//! malformed bytes.

use super::paywall::{seal_key, StreamSecret};
use super::session::{read_frame, write_frame, FrameError};
use super::wire::*;
use crate::protocols::live::wire::{Sig, StreamId, WireError};
use ed25519_dalek::SigningKey;
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
        holder: payment.then_some([9; 32]),
    }
}

fn granted() -> KeyResponse {
    let s = StreamId::new([1; 32], "paid").unwrap();
    let key = StreamSecret::from_bytes([2; 32]).epoch_key(&s, 42);
    let viewer = SigningKey::from_bytes(&[3; 32]).verifying_key();
    KeyResponse::Granted {
        epoch: 42,
        key: seal_key(&key, &viewer, &s, 42, [4; 32]).into(),
        // The largest pass: a stream name of the longest length.
        pass: {
            let creator = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
            let stream = StreamId::new(
                creator.verifying_key().to_bytes(),
                "n".repeat(crate::protocols::live::wire::MAX_STREAM_NAME),
            )
            .unwrap();
            crate::protocols::chat::wire::ViewerPass {
                stream,
                holder: [9; 32],
                until_ms: u64::MAX,
            }
            .sign(&creator)
            .ok()
        },
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
async fn frames_round_trip_and_are_capped_before_reading() {
    let mut out = futures::io::Cursor::new(Vec::new());
    let req = encode_request(&request(true)).unwrap();
    write_frame(&mut out, &req).await.unwrap();
    write_frame(&mut out, &req).await.unwrap();
    let mut input = futures::io::Cursor::new(out.into_inner());
    for _ in 0..2 {
        let f = read_frame(&mut input, MAX_KEY_REQUEST)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(decode_request(&f).unwrap(), request(true));
    }
    // A clean end between frames is the end of the session.
    assert!(read_frame(&mut input, MAX_KEY_REQUEST)
        .await
        .unwrap()
        .is_none());
    // A length over the limit is refused from its prefix.
    let mut big = futures::io::Cursor::new(vec![0xff, 0xff]);
    let err = read_frame(&mut big, MAX_KEY_RESPONSE).await.unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::TooLarge {
                len: 65535,
                limit: MAX_KEY_RESPONSE
            }
        ),
        "{err}"
    );
    // The end of the stream inside a prefix or a body.
    for cut in [vec![0], vec![0, 5, 1, 2]] {
        let mut short = futures::io::Cursor::new(cut);
        let err = read_frame(&mut short, MAX_KEY_REQUEST).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }
    // Nothing longer than a u16 length can be written.
    let mut out = futures::io::Cursor::new(Vec::new());
    assert!(write_frame(&mut out, &vec![0; 70_000]).await.is_err());
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

    /// Any bytes read as frames either end cleanly, give frames within the
    /// limit, or fail with a reason: never a panic or an allocation past
    /// the limit.
    #[test]
    fn arbitrary_bytes_read_as_frames_stay_within_the_limit(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut input = futures::io::Cursor::new(b);
        futures::executor::block_on(async {
            while let Ok(Some(f)) = read_frame(&mut input, MAX_KEY_REQUEST).await {
                assert!(f.len() <= MAX_KEY_REQUEST);
            }
        });
    }
}
