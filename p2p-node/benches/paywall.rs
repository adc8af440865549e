//! The creator node's paywall work for many paying viewers, IO-less (no
//! network, no chain): what it costs to check vouchers and sell epoch
//! keys. Prints figures; asserts nothing.
//!
//! ```text
//! cargo bench -p vilokanam --bench paywall [-- VIEWERS SECONDS]
//! ```
//!
//! Each simulated viewer pays 2 µTICK/s on its own channel; epochs are
//! 6 s. Per epoch and viewer the creator's node verifies the voucher that
//! comes with the key request (`chain::Payee::accept`, one ed25519
//! verification, in the pallet's order of checks) and decides and seals
//! the key (`KeyServer::grant`: HKDF, X25519, ChaCha20-Poly1305). The
//! worst case also verifies one voucher per second per viewer (if viewers
//! sent every voucher they sign). Viewer-side signing is done outside the
//! timed part.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use vilokanam_chain::{Payee, Payer, Terms, Voucher};
use vilokanam_swarm::protocols::keys::core::{Ask, KeyServer, KeyServerConfig, Pricing};
use vilokanam_swarm::protocols::keys::paywall::{epoch_at, StreamSecret};
use vilokanam_swarm::protocols::keys::wire::{
    encode_request, encode_response, KeyRequest, KeyResponse, Payment,
};
use vilokanam_swarm::wire::{Sig, StreamId};

const PRICE: u128 = 2_000_000;
const EPOCH: u32 = 6;
const CHAIN: [u8; 32] = [7; 32];
const PAYEE: [u8; 32] = [8; 32];

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Viewer {
    payer: Payer,
    payee: Payee,
    key: SigningKey,
}

fn terms(channel: u64) -> Terms {
    Terms {
        chain: CHAIN,
        channel,
        deposit: u128::MAX / 4,
        max_payees: 1,
        named: vec![PAYEE],
        payee_cap: 0,
    }
}

fn run(viewers: usize, seconds: u64, per_second: bool) -> (Duration, u64, usize, usize) {
    let creator = SigningKey::from_bytes(&[1; 32]);
    let stream = StreamId::new(creator.verifying_key().to_bytes(), "bench").expect("id");
    let before = rss_kib();
    let mut keys = KeyServer::new(KeyServerConfig::default());
    keys.add_stream(
        stream.clone(),
        StreamSecret::derive(&creator, &stream),
        Pricing {
            price_per_sec: PRICE,
            epoch_secs: EPOCH,
        },
    );
    let mut vs: Vec<Viewer> = (0..viewers)
        .map(|i| {
            let key = SigningKey::from_bytes(&rand::random());
            Viewer {
                payer: Payer::new(key.clone(), terms(i as u64)),
                payee: Payee::new(key.verifying_key(), terms(i as u64), PAYEE),
                key,
            }
        })
        .collect();
    let start_ms = 1_800_000_000_000u64;
    let mut busy = Duration::ZERO;
    let mut req_bytes = 0;
    let mut resp_bytes = 0;
    let now = Instant::now();
    for s in 0..seconds {
        let epoch = epoch_at(start_ms + s * 1000, EPOCH);
        keys.advance(&stream, epoch);
        // Viewer side (not timed): one voucher per second each.
        let signed: Vec<Voucher> = vs
            .iter_mut()
            .map(|v| v.payer.pay(PAYEE, PRICE).expect("deposit"))
            .collect();
        let boundary = s % u64::from(EPOCH) == 0;
        let t = Instant::now();
        for (v, voucher) in vs.iter_mut().zip(&signed) {
            if per_second || boundary {
                let _ = v.payee.accept(voucher.clone());
            }
            if boundary {
                let ask = Ask {
                    stream: &stream,
                    channel: voucher.channel,
                    viewer: &v.key.verifying_key(),
                    epoch,
                    paid: v.payee.owed(),
                };
                let g = keys.grant(now, ask, rand::random()).expect("paid viewer");
                if req_bytes == 0 {
                    let r = KeyRequest {
                        stream: stream.clone(),
                        epoch,
                        channel: voucher.channel,
                        payment: Some(Payment {
                            cumulative: voucher.cumulative,
                            signature: Sig(voucher.signature),
                        }),
                        holder: Some([7; 32]),
                    };
                    req_bytes = encode_request(&r).expect("encodes").len();
                    resp_bytes = encode_response(&KeyResponse::Granted {
                        epoch,
                        key: g.key.into(),
                        pass: None,
                    })
                    .expect("encodes")
                    .len();
                }
            }
        }
        busy += t.elapsed();
    }
    let grown = rss_kib().saturating_sub(before);
    drop(vs);
    (busy, grown, req_bytes, resp_bytes)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let viewers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);
    for (label, per_second) in [
        ("voucher per epoch (the protocol)", false),
        ("voucher every second (worst case)", true),
    ] {
        let (busy, grown, req, resp) = run(viewers, seconds, per_second);
        let core = busy.as_secs_f64() / seconds as f64 * 100.0;
        println!(
            "{viewers} viewers, {seconds} s, {label}: creator CPU {:.3} s = {core:.2} % of one core; state +{} KiB RSS",
            busy.as_secs_f64(),
            grown
        );
        if !per_second {
            println!(
                "  per viewer: {:.3} vouchers/s checked, key request {req} B + response {resp} B per {EPOCH} s epoch = {:.1} B/s",
                1.0 / f64::from(EPOCH),
                (req + resp) as f64 / f64::from(EPOCH)
            );
            let per_viewer = core / viewers as f64;
            println!(
                "  one core at 100 % would serve about {:.0} viewers (10 % of a core: {:.0})",
                100.0 / per_viewer,
                10.0 / per_viewer
            );
        }
    }
}
