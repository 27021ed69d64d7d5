#!/usr/bin/env bash
# Runs the independent SCIM compliance checker scim2-tester (through scim2-cli) against
# `scimload serve`, once without and once with a bearer token, and fails on any check
# that is not a success, on a tester that exits non-zero, and on fewer checks than the
# tester runs against a full server. Usage: scripts/conformance.sh [path/to/scimload]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/scimload}
VENV=${VENV:-.venv}
[ -x "$BIN" ] || cargo build --release --quiet
if [ ! -x "$VENV/bin/scim2" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'scim2-cli==0.6.*' 'scim2-tester==0.5.*'
fi
PORT=${PORT:-18181}
TOKEN=conformance-$RANDOM$RANDOM
LOG=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$LOG"' EXIT

# scim2-tester 0.5 runs 135 checks against this server; fewer means checks were skipped
# or the run stopped early, which is not a pass.
EXPECTED=${EXPECTED:-135}

run() { # $1: label, rest: extra scim2 args
  local label=$1; shift
  local rc=0
  timeout 300 "$VENV/bin/scim2" --url "http://127.0.0.1:$PORT" "$@" test --check-status-code --check-content-type > "$LOG/$label.txt" 2>&1 || rc=$?
  local ok bad
  ok=$(grep -cE '^SUCCESS' "$LOG/$label.txt" || true)
  # Every status the tester prints that is not SUCCESS (ERROR, CRITICAL, WARNING, SKIPPED, …).
  bad=$(grep -E '^[A-Z]{4,}\b' "$LOG/$label.txt" | grep -cvE '^SUCCESS' || true)
  echo "conformance ($label): $ok passed, $bad not passed, tester exit $rc (expected $EXPECTED checks)"
  if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ] || [ "$ok" -lt "$EXPECTED" ]; then
    { grep -E -A2 '^[A-Z]{4,}\b' "$LOG/$label.txt" | grep -vE '^SUCCESS' | head -40; } || true
    tail -5 "$LOG/$label.txt"
    return 1
  fi
}

"$BIN" serve --listen 127.0.0.1:$PORT >"$LOG/server.txt" 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ServiceProviderConfig" >/dev/null && break; sleep 0.1; done
run open
kill $SERVER; wait $SERVER 2>/dev/null || true

SCIM_TOKEN=$TOKEN "$BIN" serve --listen 127.0.0.1:$PORT >"$LOG/server.txt" 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ServiceProviderConfig" >/dev/null && break; sleep 0.1; done
SCIM_CLI_HEADERS="Authorization: Bearer $TOKEN" run token
