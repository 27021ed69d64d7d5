#!/usr/bin/env bash
# Ingestion figures on this machine: criterion one-core and two-core mapping throughput
# (with the plain csv crate as the in-run reference), then `import --dry-run` on generated
# 1,000,000- and 4,000,000-row Workday exports under /usr/bin/time -v (wall time, peak RSS).
#   scripts/ingest-bench.sh            full run (about 3 minutes, ~800 MB of temp files)
#   KEEP=1 scripts/ingest-bench.sh     keep the generated exports in $TMPDIR
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
B=target/release/scimload
T=${TMPDIR:-/tmp}/scimload-ingest-bench
mkdir -p "$T"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT

cargo bench --quiet --bench ingest -- --warm-up-time 1 --measurement-time 4 2>/dev/null \
  | awk '/^ingest\//{name=$1} /thrpt:/ && name {gsub(/\[|\]/,""); printf "%-40s %s %s (median)\n", name, $4, $5; name=""}'

for n in 1000000 4000000; do
  [ -f "$T/wd$n.csv" ] || $B gen --shape workday --rows $n --seed 1 -o "$T/wd$n.csv"
  out=$( { /usr/bin/time -v $B import "$T/wd$n.csv" --dry-run --preset workday >/dev/null; } 2>&1 )
  wall=$(echo "$out" | awk -F': ' '/Elapsed \(wall clock\)/ {print $2}')
  rss=$(echo "$out" | awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}')
  size=$(du -m "$T/wd$n.csv" | cut -f1)
  echo "dry run, $n rows ($size MB): wall $wall, peak RSS $rss MB"
done
