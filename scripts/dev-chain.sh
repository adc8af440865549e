#!/usr/bin/env bash
# One command for a local dev chain executing our runtime's wasm: the raw
# chain spec shipped in chain/spec/ (or, with --build as the first arg, one
# built from this tree by scripts/chain-spec.sh), chopsticks installed if
# missing, run on 127.0.0.1:${PORT:-9944} in memory. Alice..Ferdie are
# funded; Ctrl-C stops it. Extra args go to chopsticks.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
spec=chain/spec/vilokanam_dev.raw.json
if [ "${1:-}" = --build ]; then
  shift
  scripts/chain-spec.sh
  spec=target/chain/vilokanam_dev.raw.json
fi
ensure_chopsticks
exec "$VILOKANAM_NODE" "$VILOKANAM_CHOPSTICKS" \
  --genesis "$spec" \
  --host 127.0.0.1 --port "${PORT:-9944}" --build-block-mode Instant "$@"
