#!/usr/bin/env bash
# Runs every check and test of the workspace. Installs what the tests need
# (ffmpeg/ffprobe from Debian) when it is missing. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vilokanam-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v ffprobe >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
  echo "== installing ffmpeg (tests decode real video with ffprobe)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --all --manifest-path runtime/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The runtime is checked natively; its wasm build is not part of CI yet.
SKIP_WASM_BUILD=1 cargo clippy --manifest-path runtime/Cargo.toml --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The FRAME runtime is its own workspace (the node never builds it).
SKIP_WASM_BUILD=1 cargo test --manifest-path runtime/Cargo.toml --workspace --locked 2>&1 | tee -a "$log"
rt=${PIPESTATUS[0]}
[ "$status" = 0 ] && status=$rt
set -e
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
