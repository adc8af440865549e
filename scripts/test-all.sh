#!/usr/bin/env bash
# Runs every check and test of the workspace (the node, its libraries and
# the FRAME runtime). Installs what the tests need when it is missing:
# ffmpeg/ffprobe and chromium (apt), the wasm32v1-none target and clippy
# (rustup), chopsticks on Node 22, playwright-core and hls.js (npm, pinned
# in scripts/tools/). Safe to run
# repeatedly; build caches live outside the clone ($CARGO_TARGET_DIR,
# default ~/.cache/vilokanam-target; $VILOKANAM_TOOLS).
#
# One build serves every check: the workspace is compiled once for the
# tests with clippy-driver as the workspace wrapper (`-D warnings`), one
# feature set and one profile; the runtime's wasm is built inside it by
# runtime/wasm. Each step's duration is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log=$(mktemp)
times=$(mktemp)
trap 'rm -f "$log" "$times"' EXIT
status=0
# Runs a named step, keeps its output for the totals, times it, remembers a
# failure and goes on.
step() {
  local name=$1
  shift
  local t0=$SECONDS
  echo "== $name"
  set +e
  ( set -e; "$@" ) 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  printf '| %s | %d s |\n' "$name" $((SECONDS - t0)) >>"$times"
  if [ "$rc" != 0 ]; then status=$rc; echo "FAILED ($rc): $name" | tee -a "$log"; fi
  return 0
}

tools() {
  ensure_ffmpeg
  ensure_chromium
  ensure_rust_components
  ensure_chopsticks
  ensure_kubo
  ensure_js_ipfs
}

fmt_check() {
  cargo fmt --all -- --check
  cargo fmt --all --manifest-path runtime/bench/Cargo.toml -- --check
}

# The natively built genesis must equal what the wasm's GenesisBuilder
# builds, and the checked-in metadata and the shipped raw spec (which the
# binary embeds for `vilokanam testnet`) must be what this build makes.
chain_spec() {
  write_chain_spec "$CARGO_TARGET_DIR/debug/vilokanam-chain-spec"
  "$VILOKANAM_NODE" scripts/tools/check-genesis.cjs "$VILOKANAM_TOOLS" target/chain/vilokanam_dev.raw.json
  if ! cmp -s target/chain/metadata.scale chain/metadata/vilokanam.scale; then
    echo "chain/metadata/vilokanam.scale is stale: run scripts/chain-spec.sh --update"
    return 1
  fi
  if ! cmp -s target/chain/vilokanam_dev.raw.json chain/spec/vilokanam_dev.raw.json; then
    echo "chain/spec/vilokanam_dev.raw.json is stale (or the wasm build is not reproducible here): run scripts/chain-spec.sh --update"
    return 1
  fi
}

# The test build, plus the binaries no test builds (vilokanam-chain-spec,
# mesh-bench): same features and wrapper, so nothing is compiled twice.
# `--tests` keeps the dev-dependencies' features (tokio's test-util) in
# the second build's feature resolution; without it every crate above
# tokio was compiled a second time (2 min 41 s of a cold run).
build() {
  cargo test --workspace --all-targets --no-run --locked --features "$CI_FEATURES"
  cargo build --workspace --bins --tests --locked --features "$CI_FEATURES"
}

started=$SECONDS
step "tools (ffmpeg, chromium, rustup target, npm tools)" tools
step "cargo fmt --check" fmt_check
clippy_env
step "build + clippy -D warnings (one build, all targets)" build
step "chain spec, genesis and metadata checks" chain_spec
# Missing optional parts (dev chain, ffmpeg, browser) fail here instead of skipping.
export VILOKANAM_REQUIRE=1
export VILOKANAM_DEV_CHAIN_SPEC="$PWD/target/chain/vilokanam_dev.raw.json"
step "tests" cargo test --workspace --locked --features "$CI_FEATURES"

echo
echo "| step | duration |"
echo "|---|---|"
cat "$times"
printf '| total | %d s |\n' $((SECONDS - started))
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
