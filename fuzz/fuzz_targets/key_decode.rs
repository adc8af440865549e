//! The key protocol's decoders and the paywall's payload and sealed-key
//! openers on arbitrary bytes: must never panic or over-allocate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vilokanam_swarm::protocols::keys::{paywall, wire};

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode_request(data);
    let _ = wire::decode_response(data);
    let stream = vilokanam_swarm::wire::StreamId::new([1; 32], "fuzz").expect("valid id");
    let key = paywall::StreamSecret::from_bytes([2; 32]).epoch_key(&stream, 0);
    let _ = paywall::open_payload(&key, &stream, 0, 0, data);
    if data.len() >= 80 {
        let mut ephemeral = [0u8; 32];
        ephemeral.copy_from_slice(&data[..32]);
        let mut sealed = [0u8; paywall::SEALED_KEY_LEN];
        sealed.copy_from_slice(&data[32..80]);
        let viewer = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let _ = paywall::open_key(&paywall::SealedKey { ephemeral, sealed }, &viewer, &stream, 0);
    }
});
