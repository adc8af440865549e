#!/usr/bin/env bash
# Builds the runtime (native + wasm) and writes, into target/chain/:
#   vilokanam_dev.raw.json   raw chain spec (development preset, :code = our wasm)
#   vilokanam_runtime.compact.compressed.wasm
#   genesis-hash
#   metadata.scale           runtime metadata V16 read from the wasm (what chain/ generates its types from)
# Usage: scripts/chain-spec.sh [--preset development|local_testnet] [--bootnode ADDR]... [--update]
# --update also copies metadata.scale to chain/metadata/vilokanam.scale and
# the raw spec to chain/spec/vilokanam_dev.raw.json (the dev chain the
# binary ships; CI fails when either is stale). --update-metadata is the
# same.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_rust_components
ensure_chopsticks
update=0
args=()
for a in "$@"; do
  if [ "$a" = --update ] || [ "$a" = --update-metadata ]; then update=1; else args+=("$a"); fi
done
cargo build --locked -p vilokanam-chain-spec
write_chain_spec "$CARGO_TARGET_DIR/debug/vilokanam-chain-spec" "${args[@]+"${args[@]}"}"
if [ "$update" = 1 ]; then
  cp target/chain/metadata.scale chain/metadata/vilokanam.scale
  mkdir -p chain/spec
  cp target/chain/vilokanam_dev.raw.json chain/spec/vilokanam_dev.raw.json
  echo "updated chain/metadata/vilokanam.scale and chain/spec/vilokanam_dev.raw.json"
fi
