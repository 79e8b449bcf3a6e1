#!/usr/bin/env bash
# The main job: install what is needed, build, and run a real demo of Thrum.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" dev
exec "$root/scripts/demo-run.sh" "$root/build/dev/cli/thrum"
