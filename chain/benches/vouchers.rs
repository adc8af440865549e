//! Off-chain voucher rates on one core: signing, single verification and
//! batch verification. Prints figures; asserts nothing.
//!
//! `cargo bench -p vilokanam-chain --bench vouchers`

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use vilokanam_chain::voucher::{verify_batch, Voucher};

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let key = SigningKey::from_bytes(&[42; 32]);
    let vk = key.verifying_key();
    let chain = [7u8; 32];
    let n = 20_000;
    let mut vouchers = Vec::with_capacity(n);
    let sign = rate(n, || {
        for s in 0..n as u128 {
            vouchers.push(Voucher::sign(&key, chain, 1, [3; 32], black_box(s * 10)));
        }
    });
    let verify = rate(n, || {
        for v in &vouchers {
            black_box(v.verify(&vk)).expect("valid");
        }
    });
    println!("ed25519 voucher sign:          {sign:>9.0} /s (one core)");
    println!("ed25519 voucher verify:        {verify:>9.0} /s (one core)");
    for batch in [16usize, 64, 256] {
        let keys = vec![vk; batch];
        let rounds = n / batch;
        let r = rate(rounds * batch, || {
            for chunk in vouchers.chunks(batch).take(rounds) {
                black_box(verify_batch(chunk, &keys)).expect("valid");
            }
        });
        println!("ed25519 batch verify ({batch:>3}):   {r:>9.0} /s (one core)");
    }
}
