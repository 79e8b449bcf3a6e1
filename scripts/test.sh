#!/usr/bin/env bash
# Installs what is needed, builds with the CI preset (warnings are errors) and runs every test.
# Usage: scripts/test.sh [preset]   (ci by default; asan runs the same tests under sanitizers)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
preset="${1:-ci}"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$preset"
cd "$root"
ctest --preset "$preset"
