#!/usr/bin/env bash
# Builds the runtime (native + wasm) and writes, into target/chain/:
#   vilokanam_dev.raw.json   raw chain spec (development preset, :code = our wasm)
#   vilokanam_runtime.compact.compressed.wasm
#   metadata.scale           runtime metadata V16 (what chain/ generates its types from)
# Usage: scripts/chain-spec.sh [--preset development|local_testnet] [--bootnode ADDR]... [--update-metadata]
# --update-metadata also copies metadata.scale to chain/metadata/vilokanam.scale.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_wasm_toolchain
update=0
args=()
for a in "$@"; do
  if [ "$a" = --update-metadata ]; then update=1; else args+=("$a"); fi
done
out="$PWD/target/chain"
runtime_cargo build --release --locked -p vilokanam-chain-spec
"$RUNTIME_TARGET_DIR/release/vilokanam-chain-spec" --out "$out" "${args[@]+"${args[@]}"}"
if [ "$update" = 1 ]; then
  cp "$out/metadata.scale" chain/metadata/vilokanam.scale
  echo "updated chain/metadata/vilokanam.scale"
fi
