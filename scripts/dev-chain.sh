#!/usr/bin/env bash
# One command for a local dev chain executing our runtime's wasm:
# builds the runtime and its raw chain spec (scripts/chain-spec.sh), installs
# chopsticks if missing, and runs it on 127.0.0.1:${PORT:-9944} in memory.
# Alice..Ferdie are funded; Ctrl-C stops it. Extra args go to chopsticks.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
scripts/chain-spec.sh
ensure_chopsticks
exec "$VILOKANAM_NODE" "$VILOKANAM_CHOPSTICKS" \
  --genesis target/chain/vilokanam_dev.raw.json \
  --host 127.0.0.1 --port "${PORT:-9944}" --build-block-mode Instant "$@"
