#!/usr/bin/env bash
# Regenerates runtime/pallets/tick-stream/src/weights.rs from a benchmark
# run of the runtime's wasm (runtime/bench, its own workspace: it needs a
# benchmark-enabled wasm and wasmtime, neither of which CI builds).
# Extra args go to vilokanam-bench (e.g. --repeat 100).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_rust_components
out="$PWD/runtime/pallets/tick-stream/src/weights.rs"
(cd runtime/bench &&
  CARGO_TARGET_DIR="$HOME/.cache/vilokanam-bench-target" \
    cargo run --release -- --output "$out" "$@")
cargo fmt -p pallet-tick-stream
echo "wrote $out; now run scripts/chain-spec.sh --update if the metadata changed (and commit weights.rs)"
