#!/usr/bin/env bash
# What probing 1,000 members every second costs the control core
# (tests/tests/bench_probes.rs): release sluiced in the namespace lab, CPU of
# its main thread over 10 s, with and without the probe, RUNS times
# (default 3); prints each run's line, then the medians.
# Usage: bench/probes.sh [RUNS]   (root: it builds network namespaces)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build -q --release --bins
out=$(mktemp)
for i in $(seq 1 "$runs"); do
  # A failed run is shown and left out of the medians (they need one).
  if o=$(SLUICED=$PWD/target/release/sluiced cargo test -q --release -p sluice-tests \
      --test bench_probes 2>&1); then
    echo "$o" | grep -E '^(control core|probes):' | tee -a "$out"
  else
    echo "probes: run $i failed:" >&2
    echo "$o" | tail -30 >&2
  fi
done
python3 - "$out" <<'PY'
import re, statistics, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("control core")]
vals = [list(map(float, re.findall(r"([0-9.]+)%", l)))[:3] for l in rows]
if not vals:
    sys.exit("bench/probes.sh: no measurement")
idle, busy, cost = (statistics.median(v[i] for v in vals) for i in range(3))
print(f"median of {len(vals)}: control core idle {idle:.1f}%, probing 1000 members/s {busy:.1f}%, cost {cost:.1f}% (target < 20%)")
PY
rm -f "$out"
