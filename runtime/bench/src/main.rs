//! `vilokanam-bench`: runs the tick-stream benchmarks on the runtime's
//! wasm and writes `weights.rs`. It does what `frame-omni-bencher v1
//! benchmark pallet` does, with the same parts (the runtime's
//! `Benchmark_dispatch_benchmark` API executed by wasmtime over
//! `sc_client_db::BenchmarkingState`, `frame_benchmarking::Analysis`),
//! without that tool's node-sized build (rocksdb, libp2p, cumulus).
//!
//! For each benchmark: one verify pass, one pass on a tracking state for
//! storage reads, writes and the measured proof size, and one timed pass
//! of `--repeat` runs; the weight is the median time (the analysis'
//! base, no components here) plus the database weights of the counted
//! reads and writes.
//!
//! Built and run by `scripts/bench-weights.sh`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use codec::{Decode, Encode};
use polkadot_sdk::frame_benchmarking::{
    Analysis, BenchmarkBatch, BenchmarkConfig, BenchmarkList, BenchmarkResult, BenchmarkSelector,
};
use polkadot_sdk::frame_support::traits::StorageInfo;
use polkadot_sdk::sc_client_db::BenchmarkingState;
use polkadot_sdk::sc_executor::WasmExecutor;
use polkadot_sdk::sp_core::storage::well_known_keys;
use polkadot_sdk::sp_core::traits::{CallContext, RuntimeCode, WrappedRuntimeCode};
use polkadot_sdk::sp_externalities::Extensions;
use polkadot_sdk::sp_runtime::traits::BlakeTwo256;
use polkadot_sdk::sp_state_machine::{OverlayedChanges, StateMachine};

type HostFunctions = (
    polkadot_sdk::sp_io::SubstrateHostFunctions,
    polkadot_sdk::frame_benchmarking::benchmarking::HostFunctions,
);
type State = BenchmarkingState<BlakeTwo256>;

#[derive(Parser)]
#[command(about = "Benchmarks pallet-tick-stream on the runtime wasm and writes weights.rs")]
struct Args {
    /// Timed runs per benchmark.
    #[arg(long, default_value_t = 50)]
    repeat: u32,
    /// Where to write the weights (prints to stdout if absent).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Genesis preset the state starts from.
    #[arg(long, default_value = "development")]
    preset: String,
}

struct Runner {
    exec: WasmExecutor<HostFunctions>,
    wasm: &'static [u8],
    hash: Vec<u8>,
}

impl Runner {
    fn call(&self, state: &State, method: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        let fetcher = WrappedRuntimeCode(self.wasm.into());
        let code = RuntimeCode {
            code_fetcher: &fetcher,
            heap_pages: None,
            hash: self.hash.clone(),
        };
        let mut overlay = OverlayedChanges::default();
        let mut extensions = Extensions::default();
        let result = StateMachine::new(
            state,
            &mut overlay,
            &self.exec,
            method,
            data,
            &mut extensions,
            &code,
            CallContext::Offchain,
        )
        .execute()
        .map_err(|e| format!("{method}: {e}"));
        result
    }

    fn dispatch(
        &self,
        state: &State,
        instance: &[u8],
        benchmark: &[u8],
        verify: bool,
        repeats: u32,
    ) -> Result<Vec<BenchmarkResult>, String> {
        let config = BenchmarkConfig {
            pallet: b"pallet_tick_stream".to_vec(),
            instance: instance.to_vec(),
            benchmark: benchmark.to_vec(),
            selected_components: vec![],
            verify,
            internal_repeats: repeats,
        };
        let out = self.call(state, "Benchmark_dispatch_benchmark", &config.encode())?;
        let batches = <Result<Vec<BenchmarkBatch>, String>>::decode(&mut &out[..])
            .map_err(|e| format!("decoding benchmark results: {e}"))??;
        Ok(batches.into_iter().flat_map(|b| b.results).collect())
    }
}

struct Measured {
    name: String,
    time_ps: u128,
    reads: u32,
    writes: u32,
    proof_size: u32,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let wasm = vilokanam_runtime_wasm::WASM_BINARY
        .ok_or("runtime built without wasm (SKIP_WASM_BUILD)")?;
    let mut genesis = vilokanam_runtime::genesis::build_storage(&args.preset.as_str().into())?;
    genesis
        .top
        .insert(well_known_keys::CODE.to_vec(), wasm.to_vec());
    let runner = Runner {
        exec: WasmExecutor::<HostFunctions>::builder()
            .with_max_runtime_instances(2)
            .with_runtime_cache_size(2)
            .build(),
        wasm,
        hash: polkadot_sdk::sp_io::hashing::blake2_256(wasm).to_vec(),
    };
    // One state tracks keys (reads/writes, proof size); the other only
    // times, without proof recording (the CLI's advice for solo chains).
    let tracking = State::new(genesis.clone(), None, true, true)?;
    let timing = State::new(genesis, None, false, false)?;

    let meta = runner.call(&timing, "Benchmark_benchmark_metadata", &false.encode())?;
    let (lists, _storage): (Vec<BenchmarkList>, Vec<StorageInfo>) =
        Decode::decode(&mut &meta[..]).map_err(|e| format!("decoding metadata: {e}"))?;
    let list = lists
        .into_iter()
        .find(|l| l.pallet == b"pallet_tick_stream")
        .ok_or(
            "the wasm has no pallet_tick_stream benchmarks (built without runtime-benchmarks?)",
        )?;

    let mut measured = Vec::new();
    for b in &list.benchmarks {
        let name = String::from_utf8_lossy(&b.name).into_owned();
        if !b.components.is_empty() {
            return Err(format!(
                "{name} has components; this runner only writes constant weights"
            ));
        }
        let instance = &list.instance;
        runner.dispatch(&timing, instance, &b.name, true, 1)?;
        let db = runner.dispatch(&tracking, instance, &b.name, false, 1)?;
        let time = runner.dispatch(&timing, instance, &b.name, false, args.repeat)?;
        let t = Analysis::min_squares_iqr(&time, BenchmarkSelector::ExtrinsicTime)
            .map_err(|e| format!("{name}: {e}"))?;
        let db0 = db.first().ok_or(format!("{name}: no db result"))?;
        let mut times: Vec<u128> = time.iter().map(|r| r.extrinsic_time).collect();
        times.sort();
        eprintln!(
            "{name}: median {:.1} µs (min {:.1}, max {:.1}, {} runs), reads {}, writes {}, proof {} B",
            t.base as f64 / 1e6,
            times.first().copied().unwrap_or_default() as f64 / 1e3,
            times.last().copied().unwrap_or_default() as f64 / 1e3,
            times.len(),
            db0.reads,
            db0.writes,
            db0.proof_size
        );
        measured.push(Measured {
            name,
            time_ps: t.base,
            reads: db0.reads,
            writes: db0.writes,
            proof_size: db0.proof_size,
        });
    }

    let text = render(&measured, &args);
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

fn render(measured: &[Measured], args: &Args) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "//! Weights of the tick-stream calls.
//!
//! GENERATED by `scripts/bench-weights.sh` (runtime/bench: the pallet's
//! benchmarks run on the runtime's wasm with wasmtime over a benchmarking
//! state, as frame-omni-bencher does), `--repeat {}`, preset `{}`.
//! Time: the median of the timed runs on the machine that generated it
//! (see docs/BENCHMARKS.md); proof size: measured, not the worst-case
//! estimate; reads and writes: counted, whitelisted keys excluded.
//! Do not edit by hand; re-run the script.

use core::marker::PhantomData;
use polkadot_sdk::frame_support::traits::Get;
use polkadot_sdk::frame_support::weights::{{constants::RocksDbWeight, Weight}};
use polkadot_sdk::frame_system;

/// Weight functions needed by the pallet.
pub trait WeightInfo {{",
        args.repeat, args.preset
    );
    for m in measured {
        let _ = writeln!(s, "    /// `{}`\n    fn {}() -> Weight;", m.name, m.name);
    }
    let _ = writeln!(
        s,
        "}}

/// Weights from the benchmark run, with the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);

impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {{"
    );
    weight_fns(&mut s, measured, "T::DbWeight");
    let _ = writeln!(
        s,
        "}}\n\n/// For tests: the same figures with RocksDB weights.\nimpl WeightInfo for () {{"
    );
    weight_fns(&mut s, measured, "RocksDbWeight");
    let _ = writeln!(s, "}}");
    s
}

/// One weight function per benchmark, database weights from `db`.
fn weight_fns(s: &mut String, measured: &[Measured], db: &str) {
    for m in measured {
        let _ = writeln!(
            s,
            "    fn {name}() -> Weight {{
        Weight::from_parts({time}, {proof})
            .saturating_add({db}::get().reads({reads}))
            .saturating_add({db}::get().writes({writes}))
    }}",
            name = m.name,
            time = group(m.time_ps),
            proof = group(u128::from(m.proof_size)),
            reads = m.reads,
            writes = m.writes,
        );
    }
}

/// `1234567` as `1_234_567`.
fn group(v: u128) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}
