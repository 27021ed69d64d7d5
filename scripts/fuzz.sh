#!/usr/bin/env bash
# Fuzzes every parser that takes outside input, with cargo-fuzz (libFuzzer, AddressSanitizer,
# nightly toolchain): the filter parser and evaluator, the PATCH engine on a stored user
# and group, the server's request-body reader, /Bulk, the CSV and JSON sources with their
# mappings, and the interval-log reader (fuzz/fuzz_targets/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]   each target for SECONDS (default 20), seeded
#                                         from tests/fixtures and datasets
#
# Prints runs, execs/s and corpus size per target; exits 1 if any target crashed, leaked
# or timed out (libFuzzer keeps the input in fuzz/artifacts/TARGET/; fix it and add a
# regression test named after it).
#
# Runs of up to 60 s per target build the targets unoptimised (cargo fuzz --dev, which also
# turns on overflow checks): on 2 cores that build took 1 min 58 s against 8 min 17 s for
# the optimised one, more than the whole of a CI run's fuzzing, while a few times fewer
# execs/s matter little in 10 s. Longer runs build optimised, where execs/s pay back.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
shift || true
ALL=(filter patch request_body bulk source_csv source_json interval_log)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

rustup toolchain list | grep -q '^nightly' \
  || { echo "fuzz.sh needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet

# Seed corpora from the fixtures and datasets, one input per file.
C=fuzz/corpus
mkdir -p "$C"
python3 - "$C" <<'PY'
import json, os, sys
c = sys.argv[1]
def put(target, name, data):
    os.makedirs(f"{c}/{target}", exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    open(f"{c}/{target}/seed-{name}", "wb").write(data)
n = 0
for f in ["roundtrip.txt", "eval.tsv", "invalid.tsv"]:
    for line in open(f"tests/fixtures/filters/{f}", encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            put("filter", f"{f}-{n}", line.rstrip("\n").split("\t")[0]); n += 1
put("patch", "rfc", open("tests/fixtures/rfc7643/patch-request.json", "rb").read())
for i, case in enumerate(json.load(open("tests/fixtures/patch/cases.json"))):
    put("patch", f"case-{i}", json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                          "Operations": case["operations"]}))
for f in ["user-full", "user-minimal", "user-enterprise", "group"]:
    put("request_body", f, open(f"tests/fixtures/rfc7643/{f}.json", "rb").read())
put("bulk", "rfc", open("tests/fixtures/rfc7643/bulk-request.json", "rb").read())
# Exports: the head of each dataset (small inputs mutate faster) and every fixture.
for f in ["workday-1k.csv", "workday-1k-dirty.csv"]:
    put("source_csv", f, b"".join(open(f"datasets/{f}", "rb").readlines()[:40]))
for f in os.listdir("tests/fixtures/exports"):
    p = f"tests/fixtures/exports/{f}"
    if f.endswith(".csv"):
        put("source_csv", f, open(p, "rb").read())
    elif f.endswith((".json", ".ndjson")) and "golden" not in f:
        put("source_json", f, open(p, "rb").read())
for f in ["generic-1k.ndjson", "generic-1k-dirty.ndjson"]:
    put("source_json", f, b"".join(open(f"datasets/{f}", "rb").readlines()[:40]))
# The dirty BambooHR file is broken on purpose (not JSON as a whole): its head only.
rows = json.load(open("datasets/bamboohr-1k.json"))
rows = rows if isinstance(rows, list) else next(v for v in rows.values() if isinstance(v, list))
put("source_json", "bamboohr-1k.json", json.dumps(rows[:20]))
put("source_json", "bamboohr-1k-dirty.json", open("datasets/bamboohr-1k-dirty.json", "rb").read()[:6000])
for d in os.listdir("tests/fixtures/report"):
    put("interval_log", d, open(f"tests/fixtures/report/{d}/intervals.hlog", "rb").read())
PY

PROFILE=()
[ "$SECS" -le 60 ] && PROFILE=(--dev)
cargo +nightly fuzz build "${PROFILE[@]}"
fail=0
printf '| target | seconds | runs | execs/s | corpus | result |\n|---|---:|---:|---:|---:|---|\n'
for t in "${TARGETS[@]}"; do
  log=$(mktemp)
  rc=0
  # -rss_limit_mb: a leak or a blow-up is a finding too; -timeout: one input that takes
  # more than 10 s is a hang.
  # Filters above the parser's 8,192-byte limit take another path: let inputs reach it.
  extra=()
  [ "$t" = filter ] && extra=(-max_len=10000)
  cargo +nightly fuzz run "${PROFILE[@]}" "$t" "$C/$t" -- -max_total_time="$SECS" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=10 "${extra[@]}" >"$log" 2>&1 || rc=$?
  runs=$(awk '/^stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  rate=$(awk '/^stat::average_exec_per_sec/ {print $NF}' "$log" | tail -1)
  corpus=$(find "$C/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then result=ok; else result="FAILED (exit $rc)"; fail=1; fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$SECS" "${runs:-?}" "${rate:-?}" "$corpus" "$result"
  if [ "$rc" -ne 0 ]; then
    grep -E -A25 'ERROR: |panicked at|==[0-9]+==' "$log" | head -60 >&2 || tail -40 "$log" >&2
    ls fuzz/artifacts/"$t"/ 2>/dev/null | sed "s|^|  artifact: fuzz/artifacts/$t/|" >&2 || true
  fi
  rm -f "$log"
done
exit $fail
