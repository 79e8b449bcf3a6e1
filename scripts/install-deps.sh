#!/usr/bin/env bash
# Installs the Debian 12 packages Thrum builds and tests with. Idempotent: packages already
# present are left alone, and apt is not touched at all when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libboost1.81-dev libboost-filesystem1.81-dev
  libssl-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libgtest-dev libgmock-dev
  clang  # the `fuzz` preset (libFuzzer) and its smoke in scripts/test.sh
  iproute2 tcpdump procps
  lintian
  zsh  # tests/e2e/help_test loads `thrum completion zsh` in a real zsh
)
# Optional: what the benchmarks compare against (tests/bench/anchors: Redis with AOF, and
# valgrind for its callgrind mode). Only with --bench; nothing in the build or ctest needs them.
if [ "${1:-}" = "--bench" ]; then
  packages+=(redis-server valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The MCP end-to-end tests (tests/mcp) drive `thrum mcp serve` with the official MCP
# TypeScript SDK, pinned by tests/mcp/package-lock.json. `npm ci` runs only when the lockfile
# changed since the last install (its hash is kept in node_modules), so the tests run offline
# once it is installed.
npm_deps() {
  local dir lock stamp want
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/mcp"
  lock="$dir/package-lock.json"
  stamp="$dir/node_modules/.thrum-lock-sha256"
  [ -f "$lock" ] || return 0
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "install-deps: tests/mcp node modules match package-lock.json"
    return 0
  fi
  echo "install-deps: npm ci in tests/mcp (package-lock.json changed)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

# node and npm for the MCP tests: any install will do (e.g. NodeSource's nodejs, which
# bundles npm and conflicts with Debian's npm package); Debian's packages otherwise.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  npm_deps
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_deps
