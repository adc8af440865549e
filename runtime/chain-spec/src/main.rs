//! `vilokanam-chain-spec`: writes what a chain node, chopsticks, a light
//! client and the subxt codegen need from our runtime, all from one build:
//!
//! - `<id>.raw.json`: a raw chain spec (genesis storage including `:code`,
//!   the runtime's compressed wasm);
//! - `vilokanam_runtime.compact.compressed.wasm`: that wasm;
//! - `genesis-hash`: the genesis block hash a full node (or smoldot)
//!   computes from this spec (hex), to check clients against;
//!
//! The metadata (`metadata.scale`, V16) is read from the wasm itself by
//! `scripts/tools/wasm-metadata.cjs` (chopsticks' executor), not from the
//! native runtime: the native build may carry test-only features
//! (`runtime-benchmarks`) whose runtime APIs the chain's wasm lacks.
//!
//! Genesis storage is built natively from the same preset code the wasm's
//! `GenesisBuilder` API runs, so the spec needs no node binary to produce.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use polkadot_sdk::polkadot_sdk_frame::deps::sp_core::{bytes::to_hex, storage::well_known_keys};
use polkadot_sdk::sp_genesis_builder::PresetId;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Writes the raw chain spec and runtime wasm of the Vilokanam chain")]
struct Args {
    /// Genesis preset: `development` or `local_testnet`.
    #[arg(long, default_value = "development")]
    preset: String,
    /// Boot node multiaddrs written into the spec (for light clients).
    #[arg(long = "bootnode")]
    bootnodes: Vec<String>,
    /// Directory the files are written to (created if missing).
    #[arg(long, default_value = "target/chain")]
    out: PathBuf,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let wasm = vilokanam_runtime_wasm::WASM_BINARY
        .ok_or("this build has no runtime wasm (SKIP_WASM_BUILD was set); rebuild without it")?;
    let preset = PresetId::from(args.preset.as_str());
    let mut storage = vilokanam_runtime::genesis::build_storage(&preset)?;
    storage
        .top
        .insert(well_known_keys::CODE.to_vec(), wasm.to_vec());
    if !storage.children_default.is_empty() {
        return Err("genesis has child tries; this writer does not support them".into());
    }
    let genesis_hash = genesis_hash(&storage);
    let top: BTreeMap<String, String> = storage
        .top
        .iter()
        .map(|(k, v)| (to_hex(k, false), to_hex(v, false)))
        .collect();
    let (name, id, chain_type) = match args.preset.as_str() {
        "development" => ("Vilokanam Development", "vilokanam_dev", "Development"),
        _ => ("Vilokanam Local Testnet", "vilokanam_local", "Local"),
    };
    let spec = json!({
        "name": name,
        "id": id,
        "chainType": chain_type,
        "bootNodes": args.bootnodes,
        "telemetryEndpoints": null,
        "protocolId": "vilokanam",
        "properties": { "tokenSymbol": "TICK", "tokenDecimals": 12, "ss58Format": 42 },
        "codeSubstitutes": {},
        "genesis": { "raw": { "top": top, "childrenDefault": {} } },
    });

    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let write = |file: &str, bytes: &[u8]| -> Result<(), String> {
        let path = args.out.join(file);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}", path.display());
        Ok(())
    };
    let spec = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
    write(&format!("{id}.raw.json"), &spec)?;
    write("vilokanam_runtime.compact.compressed.wasm", wasm)?;
    write("genesis-hash", format!("{genesis_hash}\n").as_bytes())?;
    Ok(())
}

/// Hash of the genesis block, as `sc-chain-spec` builds it: number 0, zero
/// parent, the storage's trie root and the empty extrinsics root, both with
/// the runtime's state version.
fn genesis_hash(
    storage: &polkadot_sdk::polkadot_sdk_frame::deps::sp_core::storage::Storage,
) -> String {
    use polkadot_sdk::polkadot_sdk_frame::deps::sp_runtime::{
        generic::Header,
        traits::{BlakeTwo256, Hash, Header as _},
    };
    let version = vilokanam_runtime::VERSION.state_version();
    let state_root = BlakeTwo256::trie_root(
        storage
            .top
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        version,
    );
    let extrinsics_root = BlakeTwo256::trie_root(Vec::new(), version);
    let header = Header::<u32, BlakeTwo256>::new(
        0,
        extrinsics_root,
        state_root,
        Default::default(),
        Default::default(),
    );
    to_hex(header.hash().as_ref(), false)
}
