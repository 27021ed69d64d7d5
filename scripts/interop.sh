#!/usr/bin/env bash
# Imports a sample into a SCIM server nobody on this team wrote — the PyPI package
# scim2-server, in a virtualenv, on loopback — and verifies the result by listing it:
# users, groups and memberships must equal what `import --dry-run` says the export holds,
# and the import's own read-back (--verify all) must find every user as it was sent and
# every group with its members, with no attribute of the mapping undeclared.
# Then `scimload cleanup --state` deletes what the import recorded, and the listing must
# be empty.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/scimload}
VENV=${VENV:-.venv}
PORT=${PORT:-18301}
SAMPLE=${SAMPLE:-datasets/workday-1k.csv}
[ -x "$BIN" ] || cargo build --release --quiet
if [ ! -x "$VENV/bin/scim2-server" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'scim2-server==0.8.*'
fi
LOG=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$LOG"' EXIT
"$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$PORT" >"$LOG/server.txt" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ServiceProviderConfig" >/dev/null && break; sleep 0.1; done

# What the target can do, checked in a sandbox that probe deletes again.
"$BIN" probe "http://127.0.0.1:$PORT" --timeout 10s | sed 's/^/interop: /'
"$BIN" probe "http://127.0.0.1:$PORT" --json >"$LOG/probe.json"
"$VENV/bin/python" - "$PORT" "$LOG/probe.json" <<'PY'
import json, sys, urllib.request
port, p = sys.argv[1], json.load(open(sys.argv[2]))
outcome = {c["name"]: c["outcome"] for c in p["checks"]}
# What the generic dialect's import relies on must hold on this server.
needed = ["create: 201 with id and Location", "filter: userName eq (case-insensitive)",
          "patch: path and value (RFC 7644)", "put: full replace", "group: member add by PATCH",
          "group: members removed by members[value eq \"id\"]", "bulk: POST /Bulk with bulkId references",
          "round trip: mapped attributes kept"]
bad = {n: outcome.get(n) for n in needed if outcome.get(n) != "yes"}
def total(what):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{what}?count=0") as r:
        return json.load(r)["totalResults"]
left = (total("Users"), total("Groups"))
if bad or p["left_behind"] or left != (0, 0):
    sys.exit(f"interop: probe MISMATCH {bad}, left behind {p['left_behind']}, on the server {left}")
print(f"interop: probe {len(needed)} needed behaviours present, sandbox removed")
PY

"$BIN" import "$SAMPLE" --dry-run --json >"$LOG/expected.json" 2>/dev/null || true
start=$(date +%s)
"$BIN" import "$SAMPLE" --target "http://127.0.0.1:$PORT" --concurrency 8 --quiet --json \
  --verify all --state "$LOG/state.sqlite" >"$LOG/import.json" || {
  echo "interop: the import exited $?:" >&2
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(json.dumps({k: s.get(k) for k in ('failed','managers_failed','schema','verification')}, indent=1))" "$LOG/import.json" >&2 || true
  exit 1
}
echo "interop: import took $(( $(date +%s) - start )) s"

"$VENV/bin/python" - "$PORT" "$LOG/expected.json" "$LOG/import.json" <<'PY'
import json, sys, urllib.request
port, expected, imported = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
def listing(what):
    out, start = [], 1
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{what}?startIndex={start}&count=500") as r:
            page = json.load(r).get("Resources", [])
        if not page:
            return out
        out += page
        start += len(page)
users, groups = listing("Users"), listing("Groups")
names = [u["userName"].lower() for u in users]
members = sum(len(g.get("members", [])) for g in groups)
checks = {
    "users": (len(users), expected["users"]),
    "distinct userNames": (len(set(names)), expected["users"]),
    "groups": (len(groups), expected["groups"]),
    "memberships": (members, expected["memberships"]),
    "import failed": (imported["failed"], 0),
    "attributes not in the target's schemas": (len(imported["schema"]["undeclared"]), 0),
    "users read back": (imported["verification"]["users_checked"], expected["users"]),
    "users read back as sent": (imported["verification"]["users_matching"], expected["users"]),
    "groups read back": (imported["verification"]["groups_checked"], expected["groups"]),
    "groups lacking members": (imported["verification"]["groups_differing"], 0),
}
bad = {k: v for k, v in checks.items() if v[0] != v[1]}
for k, (got, want) in checks.items():
    print(f"interop: {k}: {got} (expected {want})")
if bad:
    sys.exit(f"interop: MISMATCH {bad}")
print(f"interop: {len(checks)} passed, 0 failed")
PY

start=$(date +%s)
"$BIN" cleanup --state "$LOG/state.sqlite" --json >"$LOG/cleanup.json"
echo "interop: cleanup took $(( $(date +%s) - start )) s"
"$VENV/bin/python" - "$PORT" "$LOG/cleanup.json" <<'PY'
import json, sys, urllib.request
port, c = sys.argv[1], json.load(open(sys.argv[2]))
def total(what):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{what}?count=0") as r:
        return json.load(r)["totalResults"]
checks = {
    "users left": (total("Users"), 0),
    "groups left": (total("Groups"), 0),
    "cleanup failures": (c["users_failed"] + c["groups_failed"], 0),
}
for k, (got, want) in checks.items():
    print(f"interop: {k}: {got} (expected {want}); deleted {c['users_deleted']} users, {c['groups_deleted']} groups")
bad = {k: v for k, v in checks.items() if v[0] != v[1]}
if bad:
    sys.exit(f"interop: MISMATCH after cleanup {bad}")
print("interop: cleanup 3 passed, 0 failed")
PY
