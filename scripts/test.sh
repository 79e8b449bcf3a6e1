#!/usr/bin/env bash
# Installs what is needed, builds with the CI preset (warnings are errors) and runs every test,
# then a short libFuzzer smoke of every decoder (scripts/fuzz-smoke.sh; skipped without clang,
# or with THRUM_SKIP_FUZZ=1).
# Usage: scripts/test.sh [preset]   (ci by default; asan runs the same tests under sanitizers)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
preset="${1:-ci}"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$preset"
cd "$root"
ctest --preset "$preset"
if [ "${THRUM_SKIP_FUZZ:-0}" = "1" ]; then
  echo "fuzz smoke: SKIPPED (THRUM_SKIP_FUZZ=1)"
else
  "$root/scripts/fuzz-smoke.sh" 20
fi
