#!/usr/bin/env bash
# Regenerates runtime/pallets/tick-stream/src/weights.rs from a benchmark
# run of the runtime's wasm (runtime/bench). Builds a benchmark-enabled
# wasm (feature runtime-benchmarks) in the runtime target dir; afterwards
# scripts/chain-spec.sh switches the dev chain's wasm back to the normal one.
# Extra args go to vilokanam-bench (e.g. --repeat 100).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_wasm_toolchain
out="$PWD/runtime/pallets/tick-stream/src/weights.rs"
(cd runtime/bench &&
  CARGO_TARGET_DIR="$RUNTIME_TARGET_DIR" WASM_BUILD_WORKSPACE_HINT="$PWD/.." \
    cargo run --release --locked -- --output "$out" "$@")
cargo fmt --manifest-path runtime/Cargo.toml -p pallet-tick-stream
echo "wrote $out; now run scripts/chain-spec.sh (and commit weights.rs)"
