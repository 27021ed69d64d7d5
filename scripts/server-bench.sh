#!/usr/bin/env bash
# Server throughput of `scimload serve`, measured with wrk on this machine.
#
#   scripts/server-bench.sh [--quick]
#
# POST /Users with distinct userNames and GET /Users?filter=userName eq "…" at 8 and 64
# connections, each run REPS times (median reported), plus GET /ServiceProviderConfig as an
# in-run reference for what the HTTP stack alone reaches. Then the criterion benchmark
# of adding 100 members to groups of 100, 10k and 100k members. Server and wrk share the
# 2 cores unless PIN=1 (server on core 0, wrk on core 1).
# Targets: >= 20,000 creates/s, >= 40,000 filtered lookups/s, and the 100k/100
# membership-PATCH ratio <= 2. A run with non-2xx answers or any of wrk's socket errors
# (connect, read, write, timeout) fails. Exits 1 if a target is missed. --quick (used by CI: one
# short runs, on a machine that may be doing other things) takes the best of three 2 s runs
# (a busy machine only ever takes throughput away) and judges it against the reference
# measured the same way in the same run — creates at least 18% and lookups at least 35% of
# the static endpoint's rate (25–37% and 42–88% in two quiet runs; a single 4 s run read
# 21–23% for creates at 64 connections as the store grows past 100k users) — which
# catches a halving without failing on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${1:-}
REPS=${REPS:-3}
DUR=${DUR:-8s}
STAT=median
[ "$QUICK" = "--quick" ] && { REPS=3; DUR=2s; STAT=best; }
PORT=${PORT:-18190}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
BIN=target/release/scimload
URL=http://127.0.0.1:$PORT
SRV_CPU=""; WRK_CPU=""
if [ "${PIN:-0}" = 1 ]; then SRV_CPU="taskset -c 0"; WRK_CPU="taskset -c 1"; fi

$SRV_CPU "$BIN" serve --listen 127.0.0.1:$PORT >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$URL/ServiceProviderConfig" >/dev/null && break; sleep 0.1; done

# Seed 10,000 users through /Bulk for the lookups.
python3 - "$URL" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
for b in range(10):
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"s{i}",
            "data": {"userName": f"seed-{i}", "externalId": f"seed-{i}", "name": {"givenName": "S", "familyName": "Eed"}}}
           for i in range(b * 1000 + 1, (b + 1) * 1000 + 1)]
    req = urllib.request.Request(url + "/Bulk", data=json.dumps({"Operations": ops}).encode(), method="POST")
    res = json.load(urllib.request.urlopen(req))
    bad = [o for o in res["Operations"] if o["status"] != "201"]
    assert not bad, bad[:1]
PY

rps() { # label conns script|path -> median (best with --quick) requests/s over REPS runs; fails on non-2xx
  local label=$1 c=$2 target=$3 out vals=() errs
  for r in $(seq "$REPS"); do
    if [[ $target == *.lua ]]; then
      out=$(RUN="$label-$c-$r-$$" SEEDED=10000 $WRK_CPU wrk -t2 -c"$c" -d"$DUR" -s "$target" "$URL")
    else
      out=$($WRK_CPU wrk -t2 -c"$c" -d"$DUR" "$URL$target")
    fi
    errs=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    if [ -n "$errs" ]; then echo "$label c=$c: $errs non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
    # "Socket errors: connect 0, read 0, write 0, timeout 12": connections that failed or
    # requests that never got an answer are not throughput; any of them fails the run.
    socket=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
    if [ -n "$socket" ] && [ "$socket" != 0 ]; then
      echo "$label c=$c: $socket socket errors" >&2; echo "$out" >&2; exit 1
    fi
    vals+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
  done
  if [ "$STAT" = best ]; then
    printf '%s\n' "${vals[@]}" | sort -n | tail -1 | awk '{printf "%.0f", $1}'
  else
    printf '%s\n' "${vals[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'
  fi
}

declare -A R
for c in 8 64; do
  R[ref$c]=$(rps reference $c /ServiceProviderConfig)
  R[create$c]=$(rps create $c scripts/wrk/create-users.lua)
  R[filter$c]=$(rps filter $c scripts/wrk/filter-users.lua)
done
kill $SERVER; wait $SERVER 2>/dev/null || true

cargo bench --quiet --bench scim_core -- patch_add_100_members --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1
med() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate']/1000)" "target/criterion/patch_add_100_members/$1/new/estimates.json"; }
P100=$(med 100); P10K=$(med 10000); P100K=$(med 100000)
RATIO=$(python3 -c "print(f'{$P100K/$P100:.2f}')")

echo "| workload (wrk -t2, ${DUR}, $STAT of $REPS) | 8 connections | 64 connections |"
echo "|---|---:|---:|"
echo "| POST /Users, distinct userNames (req/s) | ${R[create8]} | ${R[create64]} |"
echo "| GET /Users?filter=userName eq (req/s) | ${R[filter8]} | ${R[filter64]} |"
echo "| reference: GET /ServiceProviderConfig (req/s) | ${R[ref8]} | ${R[ref64]} |"
echo
echo "| add 100 members + remove them (criterion median) | group of 100 | 10,000 | 100,000 | ratio 100k/100 |"
echo "|---|---:|---:|---:|---:|"
printf '| store of 100,100 users | %.0f µs | %.0f µs | %.0f µs | %s |\n' "$P100" "$P10K" "$P100K" "$RATIO"

fail=0
at_least() { python3 -c "import sys; sys.exit(0 if $1 >= $2 else 1)"; }
if [ "$QUICK" = "--quick" ]; then
  for c in 8 64; do
    at_least "${R[create$c]}" "${R[ref$c]} * 0.18" || { echo "REGRESSION: creates at $c connections below 18% of the reference"; fail=1; }
    at_least "${R[filter$c]}" "${R[ref$c]} * 0.35" || { echo "REGRESSION: lookups at $c connections below 35% of the reference"; fail=1; }
  done
else
  at_least "${R[create8]}" 20000 && at_least "${R[create64]}" 20000 || { echo "MISSED: creates below 20,000/s"; fail=1; }
  at_least "${R[filter8]}" 40000 && at_least "${R[filter64]}" 40000 || { echo "MISSED: lookups below 40,000/s"; fail=1; }
fi
python3 -c "import sys; sys.exit(0 if $RATIO <= 2.0 else 1)" || { echo "MISSED: membership PATCH ratio above 2"; fail=1; }
exit $fail
