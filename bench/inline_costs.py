#!/usr/bin/env python3
"""Instructions per packet by inlined function, from a callgrind profile.

callgrind charges an inlined function's instructions to the function it was
inlined into, which for the data path is all of `process_burst`. This reads
the per-instruction counts of a profile made with --dump-instr=yes and asks
addr2line for each instruction's inline chain, so every inlined function
(`established`, `forward`, `peek`, `nominate`...) gets the instructions that
are its own or its callees'.

    cargo build --release -p sluice-core --example profile_flows --no-default-features
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=/tmp/cg.out \\
        --toggle-collect='*measured*' target/release/examples/profile_flows established 2000
    python3 bench/inline_costs.py /tmp/cg.out target/release/examples/profile_flows 64000

The last argument is what to divide by: the packets the profile counted
(2000 bursts of 32). Adding a fourth, a file name, writes the hot
instructions (half a count per packet or more) with their source line.
"""
import collections
import re
import subprocess
import sys


def self_costs(path, binary):
    """Self cost of each instruction address of `binary` in the profile."""
    cost = collections.Counter()
    names, in_binary = {}, False
    last_addr = last_line = 0
    skip_next = False
    name = binary.split("/")[-1]
    for raw in open(path):
        line = raw.rstrip("\n")
        m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("ob="):
                in_binary = names.get(m.group(1), "").endswith(name)
            continue
        if line.startswith("calls="):
            # The next cost line is the call's inclusive cost: not ours.
            skip_next = True
            continue
        if not line or line[0] not in "+-*0123456789":
            continue
        parts = line.split()

        def pos(tok, last):
            if tok == "*":
                return last
            if tok[0] in "+-":
                return last + int(tok, 0)
            return int(tok, 0)

        addr = pos(parts[0], last_addr)
        last_line = pos(parts[1], last_line) if len(parts) > 1 else last_line
        last_addr = addr
        if skip_next:
            skip_next = False
            continue
        if in_binary and len(parts) > 2:
            cost[addr] += int(parts[2])
    return cost


def inline_frames(binary, addrs):
    """addr2line's inline chain (innermost first) for each address."""
    out = subprocess.run(["addr2line", "-a", "-i", "-f", "-C", "-e", binary]
                         + [hex(a) for a in addrs], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    frames, cur, i = collections.defaultdict(list), None, 0
    while i < len(out):
        if out[i].startswith("0x"):
            cur = int(out[i], 16)
            i += 1
            continue
        frames[cur].append((out[i], out[i + 1] if i + 1 < len(out) else ""))
        i += 2
    return frames


def short(fn):
    fn = re.sub(r"<.*?>", "", fn)
    return re.sub(r"\[.*", "", fn)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, binary, per = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cost = self_costs(path, binary)
    addrs = sorted(cost)
    frames = inline_frames(binary, addrs)
    incl = collections.Counter()
    for a in addrs:
        for fn in {short(f) for f, _ in frames.get(a, [])}:
            incl[fn] += cost[a]
    print("counted: %.1f per packet" % (sum(cost.values()) / per))
    for fn, c in incl.most_common(60):
        print("%8.1f  %s" % (c / per, fn[:140]))
    if len(sys.argv) > 4:
        hot = [a for a in addrs if cost[a] / per >= 0.5]
        dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C",
                              "--start-address=%#x" % hot[0],
                              "--stop-address=%#x" % (hot[-1] + 16), binary],
                             capture_output=True, text=True, check=True).stdout
        with open(sys.argv[4], "w") as f:
            for l in dis.splitlines():
                m = re.match(r"\s*([0-9a-f]+):\s*(.*)", l)
                if not m or cost.get(int(m.group(1), 16), 0) / per < 0.5:
                    continue
                a = int(m.group(1), 16)
                fs = frames.get(a, [])
                src = fs[0][1].split(" ")[0] if fs else ""
                f.write("%6.2f %x %-45s %s\n" % (cost[a] / per, a, m.group(2)[:45], src[-50:]))


if __name__ == "__main__":
    main()
