#!/usr/bin/env bash
# The demo itself: two agents in a temporary repo talk through a real daemon.
# Usage: scripts/demo-run.sh PATH/TO/thrum
set -euo pipefail
thrum="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
work="$(mktemp -d /tmp/thrum-demo-XXXXXX)"
cleanup() {
  (cd "$work/main-repo" 2>/dev/null && "$thrum" daemon stop >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }

mkdir -p "$work/main-repo"
cd "$work/main-repo"
git init -q . 2>/dev/null || true

run "$thrum" init
run "$thrum" daemon start
run "$thrum" quickstart --name coordinator_main --role coordinator --intent "Shipping the auth module"
run "$thrum" quickstart --name reviewer_main --role reviewer

export THRUM_NAME=coordinator_main
step "THRUM_NAME=coordinator_main thrum send \"Auth module ready for review\" --to @reviewer_main"
"$thrum" send "Auth module ready for review" --to @reviewer_main

export THRUM_NAME=reviewer_main
run "$thrum" inbox
msg_id="$("$thrum" inbox --json --limit 1 | sed -n 's/.*"message_id": "\(msg_[0-9A-Z]*\)".*/\1/p' | head -1)"
step "THRUM_NAME=reviewer_main thrum reply $msg_id \"Reviewed: approve with one nit in token refresh\""
"$thrum" reply "$msg_id" "Reviewed: approve with one nit in token refresh"

export THRUM_NAME=coordinator_main
run "$thrum" inbox
run "$thrum" sent
unset THRUM_NAME
run "$thrum" team
run "$thrum" daemon status
run "$thrum" daemon stop
printf '\nDemo finished: two agents exchanged a message and a threaded reply through a real daemon.\n'
