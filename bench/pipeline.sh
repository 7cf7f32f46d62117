#!/usr/bin/env bash
# Runs the criterion pipeline benchmarks RUNS times (default 3) and prints the
# median table for BENCHMARKS.md. Usage: bench/pipeline.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp -d)
for i in $(seq 1 "$runs"); do
  rm -rf target/criterion/burst32
  cargo bench -q -p sluice-core --bench pipeline >/dev/null 2>&1
  cp -r target/criterion/burst32 "$out/run$i"
  echo "bench: run $i of $runs done" >&2
done
python3 bench/criterion-medians.py burst32 touch_only 32 "$out"/run*
rm -rf "$out"
