#!/usr/bin/env python3
"""Summarises criterion runs of one benchmark group as a markdown table.

Each RUN_DIR is a copy of target/criterion/GROUP from one `cargo bench` run.
For every bench: the median of the per-run medians (ns per iteration), ns per
packet, the spread over runs, and the ratio to BASELINE in the same run
(median of the per-run ratios).

Usage: bench/criterion-medians.py GROUP BASELINE PACKETS_PER_ITER RUN_DIR...
"""
import json, pathlib, statistics, sys

group, baseline, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [pathlib.Path(d) for d in sys.argv[4:]] or [pathlib.Path("target/criterion") / group]
medians = []  # one dict per run: bench -> median ns
for run in runs:
    m = {}
    for est in sorted(run.glob("*/new/estimates.json")):
        m[est.parent.parent.name] = json.loads(est.read_text())["median"]["point_estimate"]
    medians.append(m)
names = sorted(set().union(*medians), key=lambda n: (n == baseline, n))
print(f"| bench | median ns/burst | ns/packet | min..max over {len(runs)} runs | x {baseline} (same run) |")
print("|---|---:|---:|---:|---:|")
for n in names:
    vals = [m[n] for m in medians if n in m]
    ratios = [m[n] / m[baseline] for m in medians if n in m and baseline in m]
    med = statistics.median(vals)
    print(f"| {group}/{n} | {med:.0f} | {med / per:.1f} | {min(vals):.0f}..{max(vals):.0f} | {statistics.median(ratios):.1f} |")
