#!/usr/bin/env bash
# The demo: two repos on one machine, each with its own daemon, paired over the local transport.
# coordinator_main (repo "main") asks reviewer_api (repo "api") for a review; the reply threads
# back. Usage: scripts/demo-run.sh PATH/TO/thrum
set -euo pipefail
thrum="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
work="$(mktemp -d /tmp/thrum-demo-XXXXXX)"
main="$work/main"
api="$work/api"
add_pid=""
cleanup() {
  [ -n "$add_pid" ] && kill "$add_pid" 2>/dev/null || true
  for r in "$main" "$api"; do (cd "$r" 2>/dev/null && "$thrum" daemon stop >/dev/null 2>&1) || true; done
  rm -rf "$work"
}
trap cleanup EXIT

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
in_repo() { # in_repo DIR [VAR=value...] thrum args...
  local dir="$1"; shift
  local envs=()
  while [[ "${1:-}" == *=* ]]; do envs+=("$1"); shift; done
  printf '\033[2m[%s]\033[0m $ %sthrum' "$(basename "$dir")" "${envs[*]:+${envs[*]} }"
  printf ' %q' "$@"
  printf '\n'
  (cd "$dir" && env "${envs[@]}" "$thrum" "$@")
}

mkdir -p "$main" "$api"
(cd "$main" && git init -q . 2>/dev/null || true)
(cd "$api" && git init -q . 2>/dev/null || true)

bold "1. One daemon per repo"
in_repo "$main" init -q
in_repo "$main" daemon start
in_repo "$main" quickstart --name coordinator_main --role coordinator --intent "Shipping the auth module"
in_repo "$api" init -q
in_repo "$api" daemon start
in_repo "$api" quickstart --name reviewer_api --role reviewer

bold "2. Pair them once (api listens, main joins)"
printf '\033[2m[api]\033[0m $ thrum peer add --type local\n'
(cd "$api" && "$thrum" peer add --type local >"$work/add.out" 2>&1) &
add_pid=$!
for _ in $(seq 1 100); do grep -q -- '--peercode' "$work/add.out" 2>/dev/null && break; sleep 0.05; done
peercode="$(sed -n 's/.*--peercode \([^ ]*\).*/\1/p' "$work/add.out")"
in_repo "$main" peer join --type local --peercode "$peercode" --repo-path "$api"
wait "$add_pid"; add_pid=""
sed 's/^/    /' "$work/add.out"

bold "3. Register the remote agent as a proxy and send across"
in_repo "$main" peer configure api add-agent reviewer_api
in_repo "$main" THRUM_NAME=coordinator_main send "Auth module ready for review" --to @api:reviewer_api
in_repo "$main" team

bold "4. The reviewer reads and replies in the other repo"
for _ in $(seq 1 100); do
  (cd "$api" && THRUM_NAME=reviewer_api "$thrum" inbox --unread --json | grep -q message_id) && break; sleep 0.05
done
in_repo "$api" THRUM_NAME=reviewer_api inbox
msg_id="$(cd "$api" && THRUM_NAME=reviewer_api "$thrum" inbox --json --limit 1 | sed -n 's/.*"message_id": "\(msg_[0-9A-Z]*\)".*/\1/p' | head -1)"
in_repo "$api" THRUM_NAME=reviewer_api reply "$msg_id" "Reviewed: approve, one nit in token refresh"

bold "5. The reply is back in main, in the same thread"
for _ in $(seq 1 100); do
  (cd "$main" && THRUM_NAME=coordinator_main "$thrum" inbox --unread --json | grep -q message_id) && break; sleep 0.05
done
in_repo "$main" THRUM_NAME=coordinator_main inbox
in_repo "$main" THRUM_NAME=coordinator_main sent
in_repo "$main" peer list
in_repo "$api" peer status

bold "6. Stop both daemons"
in_repo "$main" daemon stop
in_repo "$api" daemon stop
printf '\nDemo finished: two repos, two daemons, one thread across them.\n'
