#!/usr/bin/env bash
# What one generator core sustains: the figure the Kubernetes manifests' CPU requests are
# sized from (README "Running on Kubernetes"). `scimload serve` on CPU 0, the generator on
# CPU 1 (taskset); GET /Users/{id}, open model, 64 connections, rising rates (STEPS, DUR
# seconds each): the highest rate a run keeps — no errors, at least 99% of the plan
# achieved, send-lag p99 <= 1 ms — is what one core sends. Its peak RSS (/usr/bin/time)
# gives the memory request. wrk -t1 -c64 on the same core, as fast as it is answered, is
# the reference ceiling. Medians of REPS rounds.
#
#   scripts/generator-sizing.sh        STEPS="10000 20000 30000 40000 50000 60000" DUR=5 REPS=3
#
# Exits 1 if no rate was kept in a round (then the figure is not a figure).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-10000 20000 30000 40000 50000 60000}; DUR=${DUR:-5}; REPS=${REPS:-3}
PORT=${PORT:-18231}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux >/dev/null; }
cargo build --release --quiet
BIN=$PWD/target/release/scimload
WORK=$(mktemp -d)
trap 'kill $SRV 2>/dev/null || true; rm -rf "$WORK"' EXIT
SCIM_TOKEN=sizing taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 & SRV=$!
for _ in $(seq 50); do curl -fs -o /dev/null -H 'Authorization: Bearer sizing' "http://127.0.0.1:$PORT/ServiceProviderConfig" && break; sleep 0.1; done
printf 'wrk.headers["Authorization"] = "Bearer sizing"\n' > "$WORK/auth.lua"
for i in $(seq "$REPS"); do
  for rate in $STEPS; do
    SCIM_TOKEN=sizing /usr/bin/time -f '%M' -o "$WORK/rss-$i-$rate" taskset -c 1 "$BIN" bench get \
      --target "http://127.0.0.1:$PORT" --rate "$rate" --duration "${DUR}s" --users 1000 \
      --connections 64 --cleanup --quiet --report "$WORK/run-$i-$rate" --json > "$WORK/run-$i-$rate.json" || true
    python3 - "$WORK/run-$i-$rate.json" "$rate" <<'PY' || break
import json, sys
s, rate = json.load(open(sys.argv[1])), float(sys.argv[2])
sys.exit(0 if s["errors"] == 0 and s["achieved_rate"] >= 0.99 * rate and s["send_lag_p99_ms"] <= 1.0 else 1)
PY
    echo "$rate" > "$WORK/kept-$i"
  done
  taskset -c 1 wrk -t1 -c64 -d"${DUR}s" -s "$WORK/auth.lua" "http://127.0.0.1:$PORT/ServiceProviderConfig" > "$WORK/wrk-$i.txt"
done
python3 - "$WORK" "$REPS" "$STEPS" <<'PY'
import json, os, re, statistics, sys
work, reps, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
kept, rss, wrk, rows = [], [], [], []
for i in range(1, reps + 1):
    k = os.path.exists(f"{work}/kept-{i}") and int(open(f"{work}/kept-{i}").read()) or 0
    kept.append(k)
    runs = []
    for r in steps:
        p = f"{work}/run-{i}-{r}.json"
        if os.path.exists(p) and os.path.getsize(p):
            s = json.load(open(p))
            runs.append(f"{int(r)//1000}k: lag p99 {s['send_lag_p99_ms']} ms")
            if int(r) == k:
                rss.append(int(open(f"{work}/rss-{i}-{r}").read()) / 1024)
    rows.append(f"round {i}: " + ", ".join(runs))
    wrk.append(float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{work}/wrk-{i}.txt").read()).group(1)))
med = statistics.median
print(f"| one generator core (CPU 1), server on CPU 0, median of {reps} rounds | figure |")
print("|---|---:|")
print(f"| highest open-model rate kept (send-lag p99 <= 1 ms, >= 99% achieved, no errors) | {med(kept):,.0f}/s (rounds: {', '.join(f'{k:,}' for k in kept)}) |")
print(f"| reference: wrk -t1 -c64 on the same core, closed, as fast as answered | {med(wrk):,.0f}/s |")
print(f"| generator peak RSS at that rate | {med(rss) if rss else 0:.0f} MiB |")
print("\n" + "\n".join(rows))
if 0 in kept:
    print("FAIL: a round kept no rate")
    sys.exit(1)
PY
