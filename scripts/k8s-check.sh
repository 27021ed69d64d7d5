#!/usr/bin/env bash
# The Kubernetes deployment, checked without a cluster: render the example overlay with
# `kubectl kustomize`, validate every object against the Kubernetes schemas offline
# (kubernetes-validate, strict: unknown fields fail), then run the Indexed Job here: N
# processes with the generator pods' command line and environment against one
# `scimload serve`, results in one shared directory, then the merge Job's command
# (scripts/k8s_sim.py says what it checks and the three things it must change).
#   scripts/k8s-check.sh            10-second run (CI)
#   DURATION=60s scripts/k8s-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/scimload}
VENV=${VENV:-.venv-k8s}
DURATION=${DURATION:-10s}
OVERLAY=deploy/kubernetes/overlays/example
command -v kubectl >/dev/null || { echo "k8s-check: needs kubectl (it renders kustomize offline); install it and run again" >&2; exit 2; }
[ -x "$BIN" ] || cargo build --release --quiet
if [ ! -x "$VENV/bin/kubernetes-validate" ] || ! "$VENV/bin/python" -c 'import hdrh' 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.*' 'hdrhistogram==0.10.*'
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
kubectl kustomize "$OVERLAY" > "$WORK/rendered.yaml"
echo "rendered $OVERLAY: $(grep -c '^kind:' "$WORK/rendered.yaml") objects"
"$VENV/bin/kubernetes-validate" --strict --quiet "$WORK/rendered.yaml"
echo "kubernetes-validate --strict: every object valid (Kubernetes $("$VENV/bin/kubernetes-validate" --version 2>/dev/null | awk '{print $NF}') schemas)"
"$VENV/bin/python" scripts/k8s_sim.py "$BIN" "$WORK/rendered.yaml" "$OVERLAY/podmonitor.yaml" "$WORK" "$DURATION"
