#!/usr/bin/env bash
# Import throughput and memory on this machine, against wrk in the same run.
#
#   scripts/import-bench.sh [--quick]
#
# 1. Embedded server: `scimload import` of a generated 100,000-row Workday export with
#    its groups, memberships and managers, `--lookup never`, REPS runs, median wall time
#    (/usr/bin/time). Target: >= 15,000 users/s end to end.
# 2. Against one external `scimload serve` at 64 connections: wrk -t2 -c64 creating users
#    (POST /Users, distinct userNames), then the importer on a fresh server, with /Bulk
#    (--bulk always: the default, auto, first measures both ways for 1.5 s each) and with
#    --bulk never (one POST per user).
#    Targets: /Bulk >= 0.9x wrk's creates/s, --bulk never >= 0.6x. Also, as a second
#    reference, wrk POSTing the very bodies the import sends (from --dry-run --emit): the
#    Workday users cost the server more than wrk's minimal ones, so this row says how much
#    of the gap is the client's.
# 2b. The /Bulk import again into a fresh `scimload serve --tls-cert` (a CA made here
#    with openssl, trusted with --ca-cert), right before or after the plain one (the order
#    alternates by round). Target: HTTPS >= 0.85x the plain-HTTP figure.
# 3. A 1,000,000-row import into an external `scimload serve`, with the defaults (--bulk
#    auto's trial, --verify 1%): the importer's peak RSS. Target: < 300 MB. (Skipped by
#    --quick.)
# The ratios are taken pair by pair (each import against the wrk run of the same round,
# on the same fresh server) and their median judged: the machine's speed drifts between
# rounds (wrk alone read 28,000-39,000 creates/s within one hour), and a pair shares it.
# Exits 1 if a target is missed. --quick (CI): one embedded run, the three rounds, no 1M
# import, and the throughput targets relaxed to 60% of their value for a busy machine (a
# CI run of one round read 0.35x). wrk runs 8 s in both modes: the server's create rate
# falls as its store grows, and 4 s runs read 54,600 creates/s beside 8 s ones at 39,000.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${1:-}
REPS=${REPS:-3}
EMB_REPS=$REPS; WRK_DUR=8
SLACK=1.0
[ "$QUICK" = "--quick" ] && { EMB_REPS=1; SLACK=0.6; }
PORT=${PORT:-18501}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
# BIN=/path/to/scimload measures another build (an A/B against an older commit).
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; BIN=$PWD/target/release/scimload; fi
WORK=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
"$BIN" gen --rows 100000 --seed 7 -o "$WORK/wd100k.csv"
"$BIN" import "$WORK/wd100k.csv" --dry-run --quiet --emit "$WORK/payloads.ndjson" >/dev/null
python3 -c "
import json, sys
with open(sys.argv[2], 'w') as out:
    for line in open(sys.argv[1]):
        out.write(json.dumps(json.loads(line)['user'], separators=(',', ':'), ensure_ascii=False) + '\n')
" "$WORK/payloads.ndjson" "$WORK/bodies.ndjson"
bash scripts/make-test-ca.sh "$WORK"   # ca.pem, srv.pem, srv.key

wall() { # file with /usr/bin/time -v output -> seconds
  awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"
}
rss_mb() { awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# 1. embedded
emb=()
for r in $(seq "$EMB_REPS"); do
  /usr/bin/time -v "$BIN" import "$WORK/wd100k.csv" --lookup never --concurrency 64 --quiet --json \
    >"$WORK/emb-$r.json" 2>"$WORK/emb-$r.time"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s['created']==100000 and s['failed']==0 else 1)" "$WORK/emb-$r.json" \
    || { echo "embedded import incomplete" >&2; exit 1; }
  emb+=("$(python3 -c "print(100000/$(wall "$WORK/emb-$r.time"))")")
done
EMB=$(median "${emb[@]}")

SCHEME=http
start_server() {
  [ -n "$SERVER" ] && { kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; }
  if [ "$SCHEME" = https ]; then
    "$BIN" serve --listen 127.0.0.1:$PORT --tls-cert "$WORK/srv.pem" --tls-key "$WORK/srv.key" >/dev/null 2>&1 &
  else
    "$BIN" serve --listen 127.0.0.1:$PORT >/dev/null 2>&1 &
  fi
  SERVER=$!
  for _ in $(seq 50); do curl -sf --cacert "$WORK/ca.pem" "$SCHEME://127.0.0.1:$PORT/ServiceProviderConfig" >/dev/null && break; sleep 0.1; done
}
external() { # extra flags -> RESULT: users/s (wall clock) of a 100k import into a fresh server
  # (not called in $(...): the server must be started by this shell to be stopped by it)
  start_server
  rm -f "$WORK/state.sqlite"
  # --verify off: wrk reads nothing back either (read-back is measured by the 1M run).
  /usr/bin/time -v "$BIN" import "$WORK/wd100k.csv" --target "$SCHEME://127.0.0.1:$PORT" --ca-cert "$WORK/ca.pem" --lookup never \
    --concurrency 64 --quiet --json --state "$WORK/state.sqlite" --verify off "$@" >"$WORK/ext.json" 2>"$WORK/ext.time"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s['created']==100000 else 1)" "$WORK/ext.json" \
    || { echo "external import incomplete" >&2; exit 1; }
  RESULT=$(python3 -c "print(100000/$(wall "$WORK/ext.time"))")
}

# 2. wrk and the importer against the same server, alternated; 2b. the same over HTTPS
wrk_v=(); same_v=(); bulk_v=(); single_v=(); tls_v=(); bulk_r=(); single_r=(); same_r=(); tls_r=()
ratio() { python3 -c "print($1/$2)"; }
for r in $(seq "$REPS"); do
  SCHEME=http
  start_server
  out=$(RUN="imp-$r-$$" wrk -t2 -c64 -d${WRK_DUR}s -s scripts/wrk/create-users.lua "http://127.0.0.1:$PORT")
  wrk_v+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
  start_server
  out=$(BODIES="$WORK/bodies.ndjson" wrk -t2 -c64 -d${WRK_DUR}s -s scripts/wrk/post-bodies.lua "http://127.0.0.1:$PORT")
  if echo "$out" | grep -q Non-2xx; then echo "wrk (import bodies) got errors:" >&2; echo "$out" >&2; exit 1; fi
  same_v+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
  external --bulk never; single_v+=("$RESULT")
  # The two /Bulk imports side by side, HTTPS first in even rounds: the run after a big
  # one was often the slow one of a round (here 19k then 50k users/s, the same import), and
  # with plain HTTP always first the HTTPS ratio read that order, not TLS.
  if [ $((r % 2)) = 1 ]; then
    external --bulk always; bulk_v+=("$RESULT")
    SCHEME=https; external --bulk always; tls_v+=("$RESULT")
  else
    SCHEME=https; external --bulk always; tls_v+=("$RESULT")
    SCHEME=http; external --bulk always; bulk_v+=("$RESULT")
  fi
  w=${wrk_v[-1]}
  bulk_r+=("$(ratio "${bulk_v[-1]}" "$w")"); single_r+=("$(ratio "${single_v[-1]}" "$w")")
  same_r+=("$(ratio "${single_v[-1]}" "${same_v[-1]}")"); tls_r+=("$(ratio "${tls_v[-1]}" "${bulk_v[-1]}")")
done
SCHEME=http
WRK=$(median "${wrk_v[@]}"); SAME=$(median "${same_v[@]}"); BULK=$(median "${bulk_v[@]}"); SINGLE=$(median "${single_v[@]}"); TLS=$(median "${tls_v[@]}")
BULK_R=$(median "${bulk_r[@]}"); SINGLE_R=$(median "${single_r[@]}"); SAME_R=$(median "${same_r[@]}"); TLS_R=$(median "${tls_r[@]}")

# 3. 1M-row import, importer RSS
RSS="skipped"; RSS1M_S="skipped"
if [ "$QUICK" != "--quick" ]; then
  "$BIN" gen --rows 1000000 --seed 9 -o "$WORK/wd1m.csv"
  start_server
  /usr/bin/time -v "$BIN" import "$WORK/wd1m.csv" --target "http://127.0.0.1:$PORT" --lookup never \
    --concurrency 64 --quiet --json --state "$WORK/state1m.sqlite" >"$WORK/1m.json" 2>"$WORK/1m.time" \
    || { echo "1M import incomplete:" >&2; tail -5 "$WORK/1m.time" >&2; exit 1; }
  RSS=$(rss_mb "$WORK/1m.time")
  RSS1M_S=$(python3 -c "print(round(1000000/$(wall "$WORK/1m.time")))")
fi

printf '| measurement (median of %s; ratios: median of the rounds'"'"' own ratios) | figure | target |\n|---|---:|---:|\n' "$REPS"
printf '| 100k Workday rows into the embedded server, wall clock | %.0f users/s | >= 15,000 |\n' "$EMB"
printf '| wrk -t2 -c64 POST /Users on scimload serve | %.0f creates/s | |\n' "$WRK"
printf '| import into scimload serve, 64 connections, /Bulk | %.0f users/s (%.2fx wrk) | >= 0.9x |\n' "$BULK" "$BULK_R"
printf '| import into scimload serve, 64 connections, --bulk never | %.0f users/s (%.2fx wrk) | >= 0.6x |\n' "$SINGLE" "$SINGLE_R"
printf '| reference: wrk -t2 -c64 POSTing the import'"'"'s own user bodies | %.0f creates/s (--bulk never: %.2fx) | |\n' "$SAME" "$SAME_R"
printf '| the /Bulk import over HTTPS (--ca-cert) | %.0f users/s (%.2fx plain HTTP) | >= 0.85x |\n' "$TLS" "$TLS_R"
printf '| 1M rows into scimload serve: importer peak RSS | %s MB (%s users/s) | < 300 MB |\n' "$RSS" "$RSS1M_S"

fail=0
ok() { python3 -c "import sys; sys.exit(0 if $1 else 1)"; }
ok "$EMB >= 15000 * $SLACK" || { echo "MISSED: embedded import below 15,000 users/s"; fail=1; }
ok "$BULK_R >= 0.9 * $SLACK" || { echo "MISSED: /Bulk import below 0.9x wrk"; fail=1; }
ok "$SINGLE_R >= 0.6 * $SLACK" || { echo "MISSED: --bulk never import below 0.6x wrk"; fail=1; }
ok "$TLS_R >= 0.85 * $SLACK" || { echo "MISSED: HTTPS import below 0.85x plain HTTP"; fail=1; }
[ "$RSS" = skipped ] || ok "$RSS < 300" || { echo "MISSED: importer RSS not below 300 MB"; fail=1; }
exit $fail
