//! On-chain cost of settling: weight and fee of `claim` (from the runtime's
//! `TransactionPaymentApi`, i.e. the weights in `pallet-tick-stream`'s
//! `weights.rs`), the fee actually charged, and the client's
//! submit-to-finalized latency, on the dev chain (our runtime's wasm under
//! chopsticks, one block per transaction: latency here is client + runtime
//! execution, not a real chain's 6 s block time). Prints figures; asserts
//! nothing.
//!
//! `cargo bench -p vilokanam-chain --bench settlement` (needs
//! `scripts/chain-spec.sh` and chopsticks, see docs/CHAIN.md)

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use vilokanam_chain::account::{account_id, keypair};
use vilokanam_chain::test_utils::{DevChain, DevChainParts};
use vilokanam_chain::{Endpoint, OpenTerms, Settlement, Voucher};

const CLAIMS: u32 = 30;
const PRICE: u128 = 1_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let parts = DevChainParts::locate()?;
    let chain = DevChain::start(&parts).await?;
    let client = Settlement::connect(&Endpoint::Rpc(chain.ws_url.clone())).await?;
    let (alice, bob) = (keypair("//Alice")?, keypair("//Bob")?);
    let key = SigningKey::from_bytes(&rand::random());
    let expires_at = client.finalized_number().await? as u32 + 1_000;
    let terms = OpenTerms::single(account_id(&bob), 1_000_000 * PRICE, expires_at);
    let ch = client
        .open(&alice, key.verifying_key().to_bytes(), &terms)
        .await?;
    println!("open: fee charged {} planck", ch.fee);
    let ch = ch.outcome;
    let mut latencies = Vec::new();
    let mut fees = Vec::new();
    let mut cost = None;
    for i in 1..=CLAIMS {
        let v = Voucher::sign(
            &key,
            client.genesis(),
            ch.id,
            account_id(&bob).0,
            u128::from(i) * 60 * PRICE,
        );
        let c = client.claim_cost(&bob, &v).await?;
        cost.get_or_insert(c);
        let t = Instant::now();
        let r = client.claim(&bob, &v).await?;
        latencies.push(t.elapsed());
        fees.push(r.fee);
    }
    let c = cost.expect("at least one claim");
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "claim weight: ref_time {} ps ({:.1} µs), proof_size {} B; encoded length {} B",
        c.ref_time,
        c.ref_time as f64 / 1e6,
        c.proof_size,
        c.length
    );
    println!(
        "claim fee: estimated {} planck ({:.9} TICK); charged min {} max {} planck over {CLAIMS} claims",
        c.partial_fee,
        c.partial_fee as f64 / 1e12,
        fees.iter().min().copied().unwrap_or_default(),
        fees.iter().max().copied().unwrap_or_default()
    );
    println!(
        "claim submit→finalized on the dev chain: p50 {:?} p90 {:?} max {:?}",
        pct(50),
        pct(90),
        latencies.last().copied().unwrap_or(Duration::ZERO)
    );
    chain.stop().await?;
    Ok(())
}
