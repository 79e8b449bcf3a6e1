#!/usr/bin/env bash
# The main job: install what is needed, build, and run a real demo of Thrum.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
# The demo needs the CLI, the daemon and the local transport plugin, not the test suite.
"$root/scripts/build.sh" dev thrum thrum-daemon thrum_transport_local
exec "$root/scripts/demo-run.sh" "$root/build/dev/cli/thrum"
