#!/usr/bin/env bash
# Runs every check and test of both workspaces (the node and the FRAME
# runtime). Installs what the tests need when it is missing: ffmpeg/ffprobe
# (apt), rust-src + wasm32v1-none (rustup, for the runtime's wasm), and
# chopsticks on Node 22 (npm, pinned in scripts/tools/). Safe to run
# repeatedly; build caches live outside the clone:
#   $CARGO_TARGET_DIR   (default ~/.cache/vilokanam-target)       node workspace
#   $RUNTIME_TARGET_DIR (default ~/.cache/vilokanam-wasm-target)  runtime, native + wasm
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vilokanam-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

ensure_ffmpeg
ensure_wasm_toolchain
ensure_chopsticks

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --all --manifest-path runtime/Cargo.toml -- --check
cargo fmt --all --manifest-path runtime/bench/Cargo.toml -- --check

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
run() { # runs a step, keeps its output for the totals, remembers a failure, goes on
  set +e
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" != 0 ]; then status=$rc; echo "FAILED ($rc): $*" | tee -a "$log"; fi
}

# The runtime first: its wasm is what the chain tests execute.
echo "== runtime: clippy (builds the wasm), tests, chain spec"
run runtime_cargo clippy --release --workspace --all-targets --locked -- -D warnings
run runtime_cargo test --release --workspace --locked
rm -rf target/chain
run scripts/chain-spec.sh
# The natively built genesis must equal what the wasm's GenesisBuilder builds.
[ -f target/chain/vilokanam_dev.raw.json ] &&
  run "$VILOKANAM_NODE" scripts/tools/check-genesis.cjs "$VILOKANAM_TOOLS" target/chain/vilokanam_dev.raw.json
if [ -f target/chain/metadata.scale ] && ! cmp -s target/chain/metadata.scale chain/metadata/vilokanam.scale; then
  echo "FAILED: chain/metadata/vilokanam.scale is stale: run scripts/chain-spec.sh --update-metadata" | tee -a "$log"
  status=1
fi

# Benchmarks of the pallet run as tests on the mock runtime, and the
# runtime's benchmark API compiles (weights.rs comes from
# scripts/bench-weights.sh; the wasm built above has no benchmark code).
run runtime_cargo test --release -p pallet-tick-stream --features runtime-benchmarks
SKIP_WASM_BUILD=1 run runtime_cargo clippy --release -p vilokanam-runtime -p pallet-tick-stream \
  --all-targets --features runtime-benchmarks -- -D warnings

echo "== node: clippy, tests"
run cargo clippy --workspace --all-targets --locked -- -D warnings
# The chain tests must not skip here: a missing part is a failure.
VILOKANAM_REQUIRE_CHAIN=1 VILOKANAM_DEV_CHAIN_SPEC="$PWD/target/chain/vilokanam_dev.raw.json" \
  run cargo test --workspace --locked

# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
