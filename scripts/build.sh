#!/usr/bin/env bash
# Configures and builds one CMake preset (default: dev), optionally only some targets.
# Usage: scripts/build.sh [preset [target...]]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-dev}"
shift || true
# Let ccache reuse objects across clones in different directories.
export CCACHE_BASEDIR="$PWD"
cmake --preset "$preset" >/dev/null
if [ $# -gt 0 ]; then
  cmake --build --preset "$preset" --target "$@"
else
  cmake --build --preset "$preset"
fi
