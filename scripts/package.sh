#!/usr/bin/env bash
# Builds the Debian packages: thrum, thrum-transport-tailscale, thrum-sdk-dev and their -dbgsym
# packages, from the CMake install rules (cmake/ThrumPackaging.cmake), into <build dir>/packages/.
# Usage: scripts/package.sh [preset]
#   preset  `package` (default): Release with -g, so that the -dbgsym packages carry the debug
#           info (the packaged binaries are stripped); `ci` reuses the CI build (no debug info,
#           quicker: what tests/e2e/package_test does).
# Then: sudo apt install ./build/package/packages/thrum_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-package}"
./scripts/build.sh "$preset"
build_dir="build/$preset"
rm -rf "$build_dir/packages"
(cd "$build_dir" && cpack -G DEB -C Release >/dev/null)
shopt -s nullglob
# The -dbgsym packages are .ddeb (CPack's name for them; dpkg -i installs them as any .deb).
ls -1 "$build_dir"/packages/*.deb "$build_dir"/packages/*.ddeb
if command -v lintian >/dev/null; then
  for deb in "$build_dir"/packages/*.deb "$build_dir"/packages/*.ddeb; do
    lintian --tag-display-limit 0 "$deb" || true
  done
fi
