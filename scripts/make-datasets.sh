#!/usr/bin/env bash
# Regenerates the sample exports in datasets/ (deterministic: same seed, same bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
B=target/release/scimload
$B gen --shape workday  --rows 1000 --seed 7 -o datasets/workday-1k.csv
$B gen --shape workday  --rows 1000 --seed 8 --dirty 10% -o datasets/workday-1k-dirty.csv --manifest datasets/workday-1k-dirty.manifest.ndjson
$B gen --shape bamboohr --rows 1000 --seed 7 -o datasets/bamboohr-1k.json
$B gen --shape bamboohr --rows 1000 --seed 8 --dirty 10% -o datasets/bamboohr-1k-dirty.json --manifest datasets/bamboohr-1k-dirty.manifest.ndjson
$B gen --shape generic  --rows 1000 --seed 7 -o datasets/generic-1k.ndjson
$B gen --shape generic  --rows 1000 --seed 8 --dirty 10% -o datasets/generic-1k-dirty.ndjson --manifest datasets/generic-1k-dirty.manifest.ndjson
