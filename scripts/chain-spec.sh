#!/usr/bin/env bash
# Builds the runtime (native + wasm) and writes, into target/chain/:
#   vilokanam_dev.raw.json   raw chain spec (development preset, :code = our wasm)
#   vilokanam_runtime.compact.compressed.wasm
#   genesis-hash
#   metadata.scale           runtime metadata V16 read from the wasm (what chain/ generates its types from)
# Usage: scripts/chain-spec.sh [--preset development|local_testnet] [--bootnode ADDR]... [--update-metadata]
# --update-metadata also copies metadata.scale to chain/metadata/vilokanam.scale.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_rust_components
ensure_chopsticks
update=0
args=()
for a in "$@"; do
  if [ "$a" = --update-metadata ]; then update=1; else args+=("$a"); fi
done
cargo build --locked -p vilokanam-chain-spec
write_chain_spec "$CARGO_TARGET_DIR/debug/vilokanam-chain-spec" "${args[@]+"${args[@]}"}"
if [ "$update" = 1 ]; then
  cp target/chain/metadata.scale chain/metadata/vilokanam.scale
  echo "updated chain/metadata/vilokanam.scale"
fi
