#!/usr/bin/env python3
"""On the wire (issue #7): sluiced between two net_memif ports, one worker
on CPU 1, against the dpdk-testpmd io-forward ceiling on the same path (its
forwarding lcore on CPU 1 too), both driven by sluice-gen, a paced generator
and sink on CPU 0. Release binaries; root.

Usage: bench/wire.py [REPS]          (default 3; WIRE_QUICK=1 for a smoke run)
       bench/wire.py [REPS] --exception   (only the exception path's pair)
       bench/wire.py [REPS] --mrr-only    (only the ceilings and the MRR table)
       WIRE_SLUICED=PATH bench/wire.py ... (another sluiced binary: an older
                                            build, measured in the same run)
       WIRE_SCENARIOS=a,b bench/wire.py ... (sluiced in these scenarios only,
                                            after the ceilings and peers)
       bench/wire.py --render FILE.json  (the tables of a saved run)

Three measurements, each trial repeated REPS times and reported as the
median:

1. MRR (maximum receive rate, as FD.io CSIT calls it): the generator is
   asked for PROBE_RATE, more than it can send, so it offers all it can
   for SECONDS (WIRE_MAX_RATE fixes a rate instead), and the Mpps that
   come back are the forwarder's capacity. What the generator offered
   through the io ceiling is its own limit for that frame size; a
   forwarder that forwards all it was offered is generator-limited, and
   the tables say so. Next to the io ceiling, two stateless testpmd forwarders on
   the same path and core: macswap (swaps the MACs) and 5tswap (swaps
   MACs, addresses and ports), which touch headers but keep no state. Per scenario: inbound
   UDP and TCP (flows created during the warm-up), inbound UDP over IPv6
   (78-byte frames), outbound SNAT, HA ports; 1k, 100k and 1M flows; 64-
   and 1500-byte frames. The ceiling is measured
   per frame size in the same run; sluiced / ceiling is the ratio.
2. NDR and PDR for inbound UDP, 1M flows, 64 bytes: a binary search over
   the offered rate (RFC 2544 / CSIT) for the highest rate with no loss
   and with at most 0.5% loss over NDR_SECONDS.
4. Whole TCP connections per second at zero failed connections: sluice-gen
   plays clients on one port and servers on the other (SYN, SYN-ACK, the
   request, the response with FIN, FIN-ACK, the last ACK), through the
   inbound rule and through SNAT; a binary search over the opening rate.
   The same search through testpmd io (no sluiced: the servers answer the
   clients directly) is the generator's own limit.
3. New flows per second: every frame a SYN of a new flow, through the
   inbound TCP rule and through SNAT: the MRR (SYNs offered at
   all the generator can, new flows forwarded per second), and a binary search for
   the highest rate at which at most 0.5% of the SYNs fail.

The searches (2 and 3) take one trial per step: three per step would not
fit the 15 minutes `make bench` has on this 2-core machine. Zero loss is
not reachable on it even for the ceiling (see BENCHMARKS.md): both
forwarders lose frames at their RX ring whenever the shared host preempts
their core for more than a ring's worth of time (4096 frames).

A trial is invalid and the run stops (exit 1) when the generator did not
offer the rate it was asked for, a sampled frame came back wrong, or
sluiced forwarded nothing. Results: a markdown table on stdout and in
target/wire-results.md, everything in target/wire-results.json.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3
QUICK = os.environ.get("WIRE_QUICK") == "1"
SECONDS = 1.0 if QUICK else 2.0
NDR_SECONDS = 1.0 if QUICK else 2.0
NDR_STEPS = 3 if QUICK else 5
SYN_STEPS = 3 if QUICK else 5
# Fixed by WIRE_MAX_RATE, else all the generator can (PROBE_RATE asked).
MAX_RATE = float(os.environ.get("WIRE_MAX_RATE", 0)) or None
# What the generator is asked for in an MRR trial: more than it sends.
PROBE_RATE = 40_000_000
# testpmd forwarding modes measured next to sluiced, on the same path.
PEERS = ("io", "macswap", "5tswap")
CAPACITY = 8388608  # flows: a SYN search trial creates up to 6M
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
SLUICED = os.environ.get("WIRE_SLUICED", os.path.join(REL, "sluiced"))
TMP = tempfile.mkdtemp(prefix="sluice-wire-")
EXT, INT = os.path.join(TMP, "ext.sock"), os.path.join(TMP, "int.sock")
MEMIF = "rsize=12"

with open(os.path.join(ROOT, "conf", "memif-bench.toml")) as f:
    SLUICED_TOML = (f.read().replace("/tmp/sluice-bench", TMP)
                    .replace("--file-prefix=sluice-bench", "--file-prefix=wbsl")
                    .replace("127.0.0.1:9101", "127.0.0.1:0")
                    .replace("capacity = 1048576", f"capacity = {CAPACITY}")
                    .replace("capacity_v6 = 1048576", f"capacity_v6 = {CAPACITY}"))
assert f"capacity = {CAPACITY}" in SLUICED_TOML, "conf/memif-bench.toml changed shape"

INBOUND = dict(tx="ext", dst_mac="02:00:00:00:00:01", src="203.0.113.100", src_count=64,
               arp="10.0.0.11")
SNAT = dict(tx="int", dst_mac="02:00:00:00:00:02", src="10.0.0.32", src_count=16,
            dst="203.0.113.200:1", dst_ports=60000, arp="203.0.113.200")
# name: generator settings. The ceiling runs the same frames.
SCENARIOS = {
    "inbound-udp-1k": dict(INBOUND, proto="udp", dst="203.0.113.10:53", flows=1000),
    "inbound-udp-100k": dict(INBOUND, proto="udp", dst="203.0.113.10:53", flows=100_000),
    "inbound-udp-1m": dict(INBOUND, proto="udp", dst="203.0.113.10:53", flows=1_000_000),
    "inbound-udp6-1m": dict(INBOUND, proto="udp", src="2001:db8:1::100", dst="[2001:db8:1::10]:53",
                            arp="2001:db8:2::11", flows=1_000_000, size=74),
    "inbound-tcp-1m": dict(INBOUND, proto="tcp", dst="203.0.113.10:80", flows=1_000_000),
    "snat-udp-1m": dict(SNAT, proto="udp", flows=1_000_000),
    "snat-tcp-1m": dict(SNAT, proto="tcp", flows=1_000_000),
    "ha-ports-udp-1m": dict(INBOUND, proto="udp", dst="10.0.0.100:1000", dst_ports=1000,
                            flows=1_000_000),
    # The generator copies 1514 bytes a frame: 1 Mpps is what it offers on
    # time next to sluiced (12 Gbit/s, above a 10G port's 0.81 Mpps).
    "inbound-udp-1m-1500": dict(INBOUND, proto="udp", dst="203.0.113.10:53",
                                flows=1_000_000, size=1514, max_rate=1_000_000),
}
ALL_SCENARIOS = dict(SCENARIOS)
# WIRE_SCENARIOS: the sluiced scenarios to run (all when unset), for A/B
# runs of the few a change is about.
ONLY = [n for n in os.environ.get("WIRE_SCENARIOS", "").split(",") if n]
assert all(n in SCENARIOS for n in ONLY), f"WIRE_SCENARIOS: one of {sorted(SCENARIOS)}"
if QUICK:
    SCENARIOS = {k: dict(v, flows=min(v["flows"], 100_000)) for k, v in SCENARIOS.items()
                 if k in ("inbound-udp-1k", "inbound-tcp-1m", "snat-udp-1m", "inbound-udp6-1m")}
# Whole connections: the --tx port plays the clients, the --rx port the
# servers (sluice-gen --proto conn).
CONN_SCENARIOS = {
    "TCP connections, inbound rule": dict(INBOUND, proto="conn", dst="203.0.113.10:80", flows=1),
    "TCP connections, SNAT": dict(SNAT, proto="conn", flows=1),
}
SYN_SCENARIOS = {
    "new TCP flows, inbound rule": dict(INBOUND, proto="syn", dst="203.0.113.10:80",
                                        src_count=255, flows=1),
    "new TCP flows, SNAT": dict(SNAT, proto="syn", flows=1),
}


def clean_prefixes():
    for d in ("wbtp", "wbsl", "wbgen"):
        shutil.rmtree(f"/var/run/dpdk/{d}", ignore_errors=True)


# The exception path's run: sluiced with a kernel interface on its external
# port, in a namespace of its own (the interface takes the port's address;
# the kernel's answers to the punted segments then have nowhere to go but
# back through sluiced), and the generator's PUNT_RATE BGP segments a
# second to the port address mixed into the inbound UDP 1M-flow scenario.
PUNT_NS = "sluice-wire-punt"
PUNT_RATE = 1000
# memif's abstract sockets are per network namespace: filesystem ones here.
KERNEL_TOML = SLUICED_TOML.replace(
    'gateway = "203.0.113.254"\n', 'gateway = "203.0.113.254"\nkernel = "wbk0"\n', 1).replace(
    "rsize=12,", "rsize=12,socket-abstract=no,")
assert 'kernel = "wbk0"' in KERNEL_TOML, "conf/memif-bench.toml changed shape"


def start_forwarder(kind):
    if kind.startswith("testpmd"):
        # "testpmd" is io forwarding; "testpmd-MODE" another mode.
        mode = kind.partition("-")[2] or "io"
        # stdin stays open: testpmd exits when it closes.
        p = subprocess.Popen(
            ["dpdk-testpmd", "--lcores=0@0,1@1", "--no-huge", "-m", "512", "--no-pci",
             "--file-prefix=wbtp", f"--vdev=net_memif0,role=server,socket={EXT},{MEMIF}",
             f"--vdev=net_memif1,role=server,socket={INT},{MEMIF}", "--", f"--forward-mode={mode}",
             "--auto-start", "--nb-cores=1", "--total-num-mbufs=16384"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        return p
    cfg = os.path.join(TMP, "sluiced.toml")
    with open(cfg, "w") as f:
        f.write(KERNEL_TOML if kind == "sluiced-kernel" else SLUICED_TOML)
    log = open(os.path.join(TMP, "sluiced.log"), "w")
    prefix = []
    if kind == "sluiced-kernel":
        subprocess.run(["ip", "netns", "add", PUNT_NS], capture_output=True)
        subprocess.run(["ip", "-n", PUNT_NS, "link", "set", "lo", "up"], capture_output=True)
        prefix = ["ip", "netns", "exec", PUNT_NS]
    p = subprocess.Popen(prefix + [SLUICED, "--config", cfg],
                         stdout=subprocess.PIPE, stderr=log, env=dict(os.environ, NO_COLOR="1"))
    deadline = time.time() + 20
    while time.time() < deadline:
        with open(os.path.join(TMP, "sluiced.log")) as f:
            if "sluiced ready" in f.read():
                return p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit("wire: sluiced did not start:\n" + open(os.path.join(TMP, "sluiced.log")).read())


def stop_forwarder(p, kind):
    report = {}
    if kind.startswith("testpmd"):
        p.kill()
        p.wait()
    else:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        for line in out.decode().splitlines():
            w = line.split()
            if len(w) == 3 and w[0] == "counter":
                report[w[1]] = int(w[2])
    clean_prefixes()
    return report


def gen_args(s, rate, seconds, warmup, warmup_rate, punt=0):
    rx = "int" if s["tx"] == "ext" else "ext"
    port = {"ext": "net_memif0", "int": "net_memif1"}
    memif = MEMIF + (",socket-abstract=no" if "punt" in s else "")
    return [os.path.join(REL, "sluice-gen"),
            f"--eal=--lcores=0@0 --no-huge -m 256 --no-pci --file-prefix=wbgen "
            f"--vdev=net_memif0,role=client,socket={EXT},{memif} "
            f"--vdev=net_memif1,role=client,socket={INT},{memif}",
            "--tx", port[s["tx"]], "--rx", port[rx], "--dst-mac", s["dst_mac"],
            "--src", s["src"], "--src-count", str(s.get("src_count", 64)),
            "--dst", s["dst"], "--dst-ports", str(s.get("dst_ports", 1)),
            "--answer-arp", s["arp"], "--proto", s["proto"], "--flows", str(s["flows"]),
            "--size", str(s.get("size", 60)), "--rate", str(int(rate)),
            "--seconds", str(seconds), "--warmup", str(warmup),
            "--warmup-rate", str(int(warmup_rate)), "--punt", str(punt)]


def trial(kind, name, s, rate, seconds=SECONDS, strict=True, retry=True, probe=False):
    """One run of scenario `s` at `rate` through a fresh forwarder (with
    `s["punt"]` frames a second for its kernel interface). `probe`: the
    generator is asked for more than it can, to find its limit."""
    if s["proto"] in ("syn", "conn"):
        # Resolve the member's (or the internet host's) address first; conn
        # mode also the clients' (64 of them): with 0.3 s a trial at 100k
        # connections a second once failed 62% while they resolved.
        warmup, warmup_rate = (0.6 if s["proto"] == "conn" else 0.3), 10_000
    else:
        # Every flow gets its first packets (TCP: its SYN) at 1 Mpps,
        # which sluiced creates without loss, then runs at `rate`.
        warmup_rate = min(rate, 1_000_000)
        passes = 2 if s["proto"] == "tcp" else 1  # sluice-gen's --syn-passes
        warmup = max(0.5, 1.2 * passes * s["flows"] / warmup_rate)
    p = start_forwarder(kind)
    res = None
    for _ in range(10):
        g = subprocess.run(gen_args(s, rate, seconds, warmup, warmup_rate, s.get("punt", 0)),
                           capture_output=True, env=dict(os.environ, RUST_BACKTRACE="0"))
        line = next((l for l in g.stdout.decode().splitlines() if l.startswith("{")), None)
        if line:
            res = json.loads(line)
            break
        time.sleep(0.3)
    report = stop_forwarder(p, kind)
    if res is None:
        sys.exit(f"wire: sluice-gen never connected to {kind}")
    if kind.startswith("sluiced") and not report:
        log = open(os.path.join(TMP, "sluiced.log")).read()[-2000:]
        print(f"wire: sluiced printed no counters (exit {p.returncode}); log tail:\n{log}",
              file=sys.stderr)
        if retry:
            return trial(kind, name, s, rate, seconds, strict, retry=False, probe=probe)
        sys.exit("wire: invalid: sluiced printed no counters twice")
    if s.get("punt"):
        res["to_kernel"] = report.get("kernel.to_kernel", 0)
    res.update(kind=kind, scenario=name, rate=rate,
               cycles_per_packet=report.get("cycles_per_packet"),
               flows_created=report.get("flows_created"),
               flows_live=report.get("flows.live"),
               drops={k: v for k, v in report.items() if k.startswith("drop.") and v})
    print(json.dumps(res), flush=True)
    # A search trial must get the rate it asks for. An MRR trial asks for
    # all the generator has: 90% of it will do, and when the forwarder took
    # everything offered, the figure is the generator's, and says so.
    if not res["on_time"] and s["proto"] == "conn":
        # conn mode: the generator also answers every segment, so at some
        # opening rate it falls behind; that is the generator's limit, and
        # the search stops below it (recorded, not an invalid run).
        res["generator_behind"] = True
        return res
    behind = False
    if not probe and not res["on_time"] and (strict or res["offered_pps"] < 0.9 * rate):
        if retry:
            # The generator shares its core with the forwarder's control
            # thread and the host: one more try before calling it invalid.
            return trial(kind, name, s, rate, seconds, strict, retry=False, probe=probe)
        if not strict:
            sys.exit(f"wire: invalid: the generator could not offer {rate:.0f} pps "
                     f"({name}, {kind}: {res['offered_pps']:.0f})")
        # A search trial the generator could not offer twice: the rate is
        # above what the generator sends now (this VM's share of the host
        # moves it by a factor of two), so the search steps below it and
        # the table says so, rather than the run ending here.
        behind = True
    res["generator_limited"] = res["received"] >= 0.995 * res["offered"]
    if res["bad_sampled"]:
        sys.exit(f"wire: invalid: frames came back wrong ({name}, {kind})")
    if res["received"] == 0 or (kind.startswith("sluiced") and report.get("forwarded", 0) == 0):
        sys.exit(f"wire: invalid: nothing forwarded ({name}, {kind}): {res}")
    if behind:
        res["generator_behind"] = True
    return res


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def mrr(kind, name, s):
    top = s.get("max_rate", MAX_RATE)
    # None: all the generator can (its limit, not a rate to keep).
    runs = [trial(kind, name, s, top or PROBE_RATE, strict=False, probe=top is None)
            for _ in range(REPS)]
    return {"received_mpps": median(runs, "received_pps") / 1e6,
            "generator_limited": sum(r["generator_limited"] for r in runs) * 2 > len(runs),
            "loss": median(runs, "loss"),
            "offered_mpps": median(runs, "offered_pps") / 1e6,
            "cycles_per_packet": statistics.median(r["cycles_per_packet"] or 0 for r in runs),
            "runs": runs}


def search(kind, name, s, max_loss, lo, hi, steps, seconds):
    """Binary search for the highest offered rate whose loss (one trial
    per step) is at most max_loss."""
    best = None
    behind = None
    for _ in range(steps):
        mid = (lo + hi) / 2
        r = trial(kind, name, s, mid, seconds)
        if r.get("generator_behind"):
            behind = mid if behind is None else min(behind, mid)
            hi = mid
            continue
        if r["loss"] <= max_loss:
            lo, best = mid, {"rate_mpps": mid / 1e6, "received_mpps": r["received_pps"] / 1e6,
                             "loss": r["loss"], "flows_live": r.get("flows_live")}
        else:
            hi = mid
    if best is not None and behind is not None:
        best["generator_behind_at_mpps"] = behind / 1e6
    return best


def ceiling_of(out, size, mode="io"):
    """The testpmd MRR of `mode` for frames of `size` (None: not run)."""
    table = out["ceiling"] if mode == "io" else out.get("peers", {}).get(mode, {})
    return table.get(str(size), table.get(size))


def render(out):
    """The markdown tables of a run's results."""
    top = out.get("max_rate")
    offer = (f"offered at {top / 1e6:.2f} Mpps (WIRE_MAX_RATE)" if top else
             "offered all the generator could (its median through the io ceiling: " +
             ", ".join(f"{c['offered_mpps']:.2f} Mpps at {int(k) + 4} B"
                       for k, c in out["ceiling"].items() if "offered_mpps" in c) + ")")
    lines = [f"On the wire, {out['date']}: medians of {out.get('reps', REPS)} trials of "
             f"{out.get('seconds', SECONDS):.0f} s, MRR {offer}; "
             f"`bench/wire.py {out.get('reps', REPS)}`", "",
             "| scenario | flows | frame | io Mpps | macswap Mpps | 5tswap Mpps | sluiced Mpps | min..max | "
             "sluiced / io | sluiced / macswap | loss at MRR | cycles/packet | limit |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in out["mrr"].items():
        s = ALL_SCENARIOS[name]
        size = s.get("size", 60)
        ceil = ceiling_of(out, size)
        c = ceil["received_mpps"]
        peer = {m: ceiling_of(out, size, m) for m in PEERS[1:]}
        cell = lambda x: ("≥ " if x["generator_limited"] else "") + f"{x['received_mpps']:.2f}" if x else "-"
        ratio = lambda x: f"{r['received_mpps'] / x['received_mpps']:.2f}" if x else "-"
        got = sorted(x["received_pps"] / 1e6 for x in r["runs"])
        limit = "generator" if r["generator_limited"] else "sluiced"
        lines.append(f"| {name} | {s['flows']:,} | {size + 4} B | {cell(ceil)} | {cell(peer['macswap'])} | "
                     f"{cell(peer['5tswap'])} | {r['received_mpps']:.2f} | {got[0]:.2f}..{got[-1]:.2f} | "
                     f"{ratio(ceil)} | {ratio(peer['macswap'])} | {r['loss'] * 100:.2f}% | "
                     f"{r['cycles_per_packet']:.0f} | {limit} |")
    lines.append("\n\"≥\": that forwarder forwarded all the generator offered (generator-limited): "
                 "its figure is the generator's, and a ratio against it is an upper bound. "
                 "limit: which side stopped sluiced's figure (generator: sluiced forwarded all "
                 "it was offered).")
    lines += ["", f"| inbound UDP, 1M flows, 64 B, {NDR_SECONDS:.0f} s trials | NDR Mpps | "
              "PDR (0.5%) Mpps |", "|---|---:|---:|"]
    for kind, r in out["ndr_pdr"].items():
        f = lambda x: (f"{x['rate_mpps']:.2f}" + (
            f" (the generator fell behind at {x['generator_behind_at_mpps']:.2f})"
            if x.get("generator_behind_at_mpps") else "")) if x else "below 0.1"
        lines.append(f"| {'testpmd io (ceiling)' if kind == 'testpmd' else 'sluiced'} | "
                     f"{f(r['ndr'])} | {f(r['pdr'])} |")
    lines += ["", "| new flows per second (a SYN of a new flow in every frame) | at MRR, M/s "
              "| at most 0.5% failed, M/s | cycles/packet at MRR |", "|---|---:|---:|---:|"]
    for name, r in out["new_flows"].items():
        p = f"{r['pdr']['rate_mpps']:.2f}" if r["pdr"] else "below 0.2"
        if r["pdr"] and r["pdr"].get("generator_behind_at_mpps"):
            p += f" (the generator fell behind at {r['pdr']['generator_behind_at_mpps']:.2f})"
        lines.append(f"| {name} | {r['mrr']['received_mpps']:.2f} | {p} | "
                     f"{r['mrr']['cycles_per_packet']:.0f} |")
    if out.get("exception"):
        e = out["exception"]
        lines += ["", f"| inbound UDP 1M flows, kernel interface on the port | Mpps | "
                  f"punted to the kernel |", "|---|---:|---:|",
                  f"| nothing punted | {e['none']['received_mpps']:.2f} | 0 |",
                  f"| {PUNT_RATE} BGP segments/s punted | {e['punted']['received_mpps']:.2f} | "
                  f"{e['punted_to_kernel']:,.0f} |",
                  f"| punted / nothing | {e['ratio']:.3f} | |"]
    if out.get("connections"):
        lines += ["", "| whole TCP connections (SYN, SYN-ACK, request, response + FIN, FIN-ACK, "
                  "last ACK) | per second, zero failed | flows in the table after it |",
                  "|---|---:|---:|"]
        rows = dict(out["connections"])
        if out.get("connections_generator") is not None or "connections_generator" in out:
            rows["the generator alone (testpmd io between clients and servers)"] = \
                out.get("connections_generator")
        for name, r in rows.items():
            if r:
                note = (f" (the generator fell behind at {r['generator_behind_at_mpps'] * 1e6:,.0f})"
                        if r.get("generator_behind_at_mpps") else "")
                live = f"{r['flows_live']:,}" if r.get("flows_live") is not None else "-"
                lines.append(f"| {name} | {r['rate_mpps'] * 1e6:,.0f}{note} | {live} |")
            else:
                lines.append(f"| {name} | below 20,000 | - |")
    lines.append(f"\n({out.get('elapsed_s', '?')} s)")
    return "\n".join(lines)


def save(out):
    """Writes what is measured so far (a late invalid trial keeps the rest)."""
    with open(os.path.join(ROOT, "target", "wire-results.json"), "w") as f:
        json.dump(out, f, indent=1)


def exception_path():
    """Inbound UDP 1M flows through sluiced with a kernel interface, with
    PUNT_RATE BGP segments a second punted to it and with none, the trials
    interleaved in one run."""
    base = SCENARIOS.get("inbound-udp-1m", SCENARIOS["inbound-udp-1k"])
    runs = {"none": [], "punted": []}
    try:
        for _ in range(REPS):
            for key, punt in (("none", 0), ("punted", PUNT_RATE)):
                runs[key].append(trial("sluiced-kernel", f"exception-{key}",
                                       dict(base, punt=punt), MAX_RATE or PROBE_RATE,
                                       strict=False, probe=MAX_RATE is None))
    finally:
        subprocess.run(["ip", "netns", "del", PUNT_NS], capture_output=True)
    res = {k: {"received_mpps": median(v, "received_pps") / 1e6, "runs": v}
           for k, v in runs.items()}
    res["punted_to_kernel"] = median(runs["punted"], "to_kernel")
    res["ratio"] = res["punted"]["received_mpps"] / res["none"]["received_mpps"]
    return res


def main():
    started = time.time()
    out = {"date": time.strftime("%Y-%m-%d"), "reps": REPS, "seconds": SECONDS,
           "max_rate": MAX_RATE, "mrr": {}, "ceiling": {}, "peers": {}, "ndr_pdr": {},
           "new_flows": {}}
    for size in sorted({s.get("size", 60) for s in SCENARIOS.values()}):
        big = next(v for v in SCENARIOS.values() if v.get("size", 60) == size)
        s = dict(SCENARIOS["inbound-udp-1k"], size=size, max_rate=big.get("max_rate", MAX_RATE))
        out["ceiling"][size] = mrr("testpmd", f"ceiling-{size}", s)
    # The stateless peers, 64-byte frames.
    for mode in PEERS[1:]:
        out["peers"][mode] = {60: mrr(f"testpmd-{mode}", f"{mode}-60", SCENARIOS["inbound-udp-1k"])}
    save(out)
    for name, s in SCENARIOS.items():
        if not ONLY or name in ONLY:
            out["mrr"][name] = mrr("sluiced", name, s)
    save(out)
    if "--mrr-only" in sys.argv:
        out["elapsed_s"] = round(time.time() - started)
        print("\n" + render(out))
        return
    main_s = SCENARIOS.get("inbound-udp-1m", SCENARIOS["inbound-udp-1k"])
    # What the generator sends of 64-byte frames, from the ceiling's trials.
    generator = MAX_RATE or out["ceiling"][60]["offered_mpps"] * 1e6
    for kind in ("testpmd", "sluiced"):
        top = (out["ceiling"][60] if kind == "testpmd" else
               out["mrr"].get("inbound-udp-1m", out["mrr"]["inbound-udp-1k"]))["received_mpps"]
        # A search asks for exact rates: keep it below what the generator
        # offers on time with some room.
        hi = min(0.85 * generator, top * 1e6 * 1.1)
        out["ndr_pdr"][kind] = {
            "ndr": search(kind, "ndr", main_s, 0.0, 100_000, hi, NDR_STEPS, NDR_SECONDS),
            "pdr": search(kind, "pdr", main_s, 0.005, 100_000, hi, NDR_STEPS, NDR_SECONDS)}
        save(out)
    for name, s in SYN_SCENARIOS.items():
        top = mrr("sluiced", name, s)
        out["new_flows"][name] = {
            "mrr": top,
            "pdr": search("sluiced", name, s, 0.005, 200_000,
                          min(0.85 * generator, top["received_mpps"] * 1.1e6), SYN_STEPS,
                          SECONDS)}
        save(out)
    out["exception"] = exception_path()
    save(out)
    out["connections"] = {}
    for name, s in CONN_SCENARIOS.items():
        best = search("sluiced", name, s, 0.0, 20_000, 1_000_000, SYN_STEPS, SECONDS)
        out["connections"][name] = best
    # The generator's own limit for whole connections: the same search with
    # testpmd io in sluiced's place (the servers answer the clients'
    # addresses directly).
    out["connections_generator"] = search(
        "testpmd", "connections-generator", CONN_SCENARIOS["TCP connections, inbound rule"],
        0.0, 20_000, 2_000_000, SYN_STEPS, SECONDS)
    out["elapsed_s"] = round(time.time() - started)

    md = render(out)
    print("\n" + md)
    with open(os.path.join(ROOT, "target", "wire-results.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(ROOT, "target", "wire-results.md"), "w") as f:
        f.write(md + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--render":
        print(render(json.load(open(sys.argv[2]))))
        sys.exit(0)
    # A SIGTERM (a timeout, a kill) unwinds like an error, so the `finally`
    # blocks remove the exception path's namespace and the scratch files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("wire: terminated"))
    try:
        clean_prefixes()
        if "--exception" in sys.argv:
            # Only the exception path's pair of runs (BENCHMARKS.md).
            e = exception_path()
            print(render({"exception": e, "elapsed_s": 0, "date": time.strftime("%Y-%m-%d"), "mrr": {}, "ceiling": {},
                          "ndr_pdr": {}, "new_flows": {}, "max_rate": MAX_RATE or 0}))
        else:
            main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
