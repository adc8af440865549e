//! The many-node simulation bench: prints, for 1,000 and 10,000 nodes with
//! 50 ± 20 ms links and 1 % packet loss, when 50 %, 99 % and 100 % of the
//! nodes held each chunk, and the download amplification. Asserts nothing.
//!
//! ```text
//! cargo bench -p vilokanam-swarm --bench sim --features test-utils [-- NODES...]
//! ```

use std::time::{Duration, Instant};

use vilokanam_swarm::sim::{run, SimConfig};

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| d.as_millis().to_string())
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    for n in sizes {
        let cfg = SimConfig::new(n, 2026);
        println!(
            "## {n} nodes, degree ≥ {}, links {} ± {} ms, {} % packet loss, {} Mbit/s upload, {} chunks of {} KB every {} ms",
            cfg.degree,
            cfg.latency.as_millis(),
            cfg.jitter.as_millis(),
            cfg.loss * 100.0,
            cfg.upload_bps / 1_000_000,
            cfg.chunks,
            cfg.chunk_bytes / 1000,
            cfg.chunk_interval.as_millis()
        );
        let started = Instant::now();
        let r = run(cfg);
        let wall = started.elapsed();
        println!("| chunk | holders | 50 % ms | 99 % ms | 100 % ms |");
        println!("|---|---|---|---|---|");
        for c in &r.chunks {
            println!(
                "| {} | {} | {} | {} | {} |",
                c.seq,
                c.holders,
                ms(c.t50),
                ms(c.t99),
                ms(c.t100)
            );
        }
        let col = |f: fn(&vilokanam_swarm::sim::ChunkSpread) -> Option<Duration>| {
            median(r.chunks.iter().filter_map(f).collect())
        };
        println!(
            "median over chunks: 50 % {} ms, 99 % {} ms, 100 % {} ms",
            ms(col(|c| c.t50)),
            ms(col(|c| c.t99)),
            ms(col(|c| c.t100))
        );
        println!(
            "download amplification {:.3}; {} messages, {} packets retransmitted, {} chunks given up, {} penalties; {:.1} s simulated in {:.1} s",
            r.amplification,
            r.messages,
            r.retransmitted_packets,
            r.missing,
            r.penalties,
            r.simulated.as_secs_f64(),
            wall.as_secs_f64()
        );
        println!();
    }
}
