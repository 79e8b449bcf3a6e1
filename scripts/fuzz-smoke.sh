#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset, clang) and runs each over its seed corpus
# for a short smoke. A crash, leak or sanitizer report fails the script.
# Usage: scripts/fuzz-smoke.sh [seconds per target]   (default 20; the total stays under 4 min)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-20}"
if ! command -v clang++ >/dev/null; then
  echo "fuzz smoke: SKIPPED — clang++ is not installed (scripts/install-deps.sh installs it)"
  exit 0
fi
cd "$root"
"$root/scripts/build.sh" fuzz
out="$root/build/fuzz/fuzz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
for target in json_rpc peer_frame pairing peercode peers_json config_json policy json_differential; do
  # New inputs go to a scratch copy: the seeds in the tree stay as committed.
  mkdir -p "$work/$target"
  cp "$root/tests/fuzz/corpus/$target/"* "$work/$target/" 2>/dev/null || true
  log="$work/$target.log"
  if "$out/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$work/$target-" "$work/$target" >"$log" 2>&1; then
    summary="$(grep -E '^(#[0-9]+|Done)' "$log" | tail -1 || true)"
    echo "fuzz smoke: fuzz_$target ok ($summary)"
  else
    echo "fuzz smoke: fuzz_$target FAILED; last lines:"
    tail -40 "$log"
    ls "$work"/"$target"-* 2>/dev/null | sed 's/^/  artifact: /'
    failed=1
  fi
done
exit $failed
