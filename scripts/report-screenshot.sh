#!/usr/bin/env bash
# Renders the HTML reports of two real benchmarks against the embedded server in headless
# Chromium (Debian package `chromium`) and checks that every chart rendered: a box of
# real size, its title drawn inside the SVG, and pixels that are not blank. Then it
# empties the charts of one report and checks that the same check fails, so it cannot
# pass a blank page. Screenshots land in scimload-results/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/scimload}
VENV=${VENV:-.venv}
OUT=${OUT:-scimload-results/screenshots}
[ -x "$BIN" ] || cargo build --release --quiet
if ! command -v chromium >/dev/null; then
  echo "report-screenshot: installing chromium"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import PIL, websocket' 2>/dev/null ||
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'pillow==11.*' 'websocket-client==1.*'
mkdir -p "$OUT"
# A benchmark whose verdict failed (exit 1: a step missed its bound, e.g. send lag on a
# busy machine) has still written its results, and the report is what is checked here;
# any other failure stops the script.
report_of() { "$@" || { local rc=$?; [ "$rc" = 1 ] || exit "$rc"; }; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Rate steps of a mixed workload with 0.5% injected 503s: percentile spectrum, latency
# and throughput over time, the knee, errors over time.
report_of "$BIN" bench mixed --steps 100,200,400 --step-duration 2s --error-budget 2% --fail-503 0.5% \
  --users 300 --connections 16 --interval 500ms --quiet --report "$WORK/mixed" >/dev/null
# A group built to 10,000 members and torn down: latency against group size.
report_of "$BIN" bench group-members --rate 200 --group-size 10000 --connections 32 --interval 500ms \
  --quiet --report "$WORK/group" >/dev/null
# README's quick start: an import of 0.2 s, one 1 s interval: no chart over time.
"$BIN" import datasets/workday-1k-dirty.csv --report "$WORK/quick" --state "$WORK/quick.sqlite" \
  --quiet >/dev/null || true
cp "$WORK/quick/report.html" "$OUT/import-quick-start.html"
cp "$WORK/mixed/report.html" "$OUT/bench-mixed.html"
cp "$WORK/group/report.html" "$OUT/bench-group-members.html"

"$VENV/bin/python" scripts/report_check.py "$OUT/bench-mixed.html" "$OUT/bench-mixed.png" --expect-charts 4
"$VENV/bin/python" scripts/report_check.py "$OUT/bench-group-members.html" "$OUT/bench-group-members.png" --expect-charts 4

"$VENV/bin/python" scripts/report_check.py "$OUT/import-quick-start.html" "$OUT/import-quick-start.png" --expect-charts 1
if grep -q "Latency and throughput over time" "$OUT/import-quick-start.html"; then
  echo "report-screenshot: the quick-start import (one interval) drew a chart over time" >&2; exit 1
fi

# The check must catch charts that did not draw: the same report with empty SVGs.
echo "report-screenshot: self-test: the same report with its charts emptied must fail the check"
"$VENV/bin/python" - "$WORK/mixed/report.html" "$WORK/blank.html" <<'PY'
import re, sys
html = open(sys.argv[1]).read()
blank, n = re.subn(r"<svg([^>]*)>.*?</svg>", r"<svg\1></svg>", html, flags=re.S)
assert n >= 4, n
open(sys.argv[2], "w").write(blank)
PY
"$VENV/bin/python" scripts/report_check.py "$WORK/blank.html" "$WORK/blank.png" --expect-charts 4 --expect-fail
# And labels that are float noise: one tick label of the same report made "0.30000000000000004".
echo "report-screenshot: self-test: a float-noise axis label must fail the check"
"$VENV/bin/python" - "$WORK/mixed/report.html" "$WORK/noisy.html" <<'PY'
import re, sys
html = open(sys.argv[1]).read()
noisy, n = re.subn(r"(<text[^>]*>)\s*0\.3\s*(</text>)|(<text[^>]*>)\s*1\s*(</text>)",
                   lambda m: (m.group(1) or m.group(3)) + "0.30000000000000004" + (m.group(2) or m.group(4)),
                   html, count=1)
assert n == 1, "no label to make noisy"
open(sys.argv[2], "w").write(noisy)
PY
"$VENV/bin/python" scripts/report_check.py "$WORK/noisy.html" "$WORK/noisy.png" --expect-charts 4 --expect-fail
echo "report-screenshot: screenshots in $OUT"
