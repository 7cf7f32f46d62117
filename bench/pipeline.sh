#!/usr/bin/env bash
# Runs the in-process criterion benchmarks RUNS times (default 3) and prints
# the median tables for BENCHMARKS.md: the classify step (`pipeline` bench,
# group burst32) and the flow fast path (`flows` bench, group flows_burst32).
# Usage: bench/pipeline.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp -d)
for i in $(seq 1 "$runs"); do
  rm -rf target/criterion/burst32 target/criterion/flows_burst32
  cargo bench -q -p sluice-core --bench pipeline -- --warm-up-time 1 --measurement-time 2 \
    >/dev/null 2>&1
  cargo bench -q -p sluice-core --bench flows -- --warm-up-time 1 --measurement-time 3 \
    2>"$out/flows-memory$i" >/dev/null
  cp -r target/criterion/burst32 "$out/pipeline$i"
  cp -r target/criterion/flows_burst32 "$out/flowsrun$i"
  echo "bench: run $i of $runs done" >&2
done
python3 bench/criterion-medians.py burst32 touch_only 32 "$out"/pipeline*
echo
python3 bench/criterion-medians.py flows_burst32 copy_only 32 "$out"/flowsrun*
echo
grep -h '^memory' "$out"/flows-memory1
rm -rf "$out"
