#!/usr/bin/env bash
# Ingestion figures on this machine: criterion one-core and two-core mapping throughput
# (with the plain csv crate as the in-run reference), then `import --dry-run` on generated
# 1,000,000- and 4,000,000-row Workday exports under /usr/bin/time -v (wall time, peak RSS).
#   scripts/ingest-bench.sh            full run (about 4 minutes, ~800 MB of temp files)
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

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A RSS
for n in 1000000 4000000; do
  [ -f "$T/wd$n.csv" ] || $B gen --shape workday --rows $n --seed 1 -o "$T/wd$n.csv"
  walls=(); rsss=()
  for _ in 1 2 3; do
    out=$( { /usr/bin/time -v $B import "$T/wd$n.csv" --dry-run --preset workday >/dev/null; } 2>&1 )
    walls+=("$(echo "$out" | awk -F': ' '/Elapsed \(wall clock\)/ {split($2, t, ":"); print t[1] * 60 + t[2]}')")
    rsss+=("$(echo "$out" | awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}')")
  done
  wall=$(printf '%s\n' "${walls[@]}" | median)
  RSS[$n]=$(printf '%s\n' "${rsss[@]}" | median)
  size=$(du -m "$T/wd$n.csv" | cut -f1)
  echo "dry run, $n rows ($size MB), median of 3: wall ${wall} s, peak RSS ${RSS[$n]} MB (runs: ${walls[*]} s; ${rsss[*]} MB)"
done
awk -v a="${RSS[4000000]}" -v b="${RSS[1000000]}" 'BEGIN {printf "peak RSS, 4M rows / 1M rows: %.2fx\n", a / b}'
