//! Every wire decoder (gossip messages, chunk requests and responses with
//! the bandwidth terms and payments, chat messages, moderation actions
//! and history, social records (profiles, follow sets) with their whole
//! record rule, stream ids, CIDs) on arbitrary bytes:
//! must never panic or over-allocate, and decoded terms are in range.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vilokanam_swarm::wire::fuzz_decode_all(data);
});
