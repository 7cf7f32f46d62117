#!/usr/bin/env python3
"""Blind RSTs at an idle TCP connection, from inside the client's namespace.

usage: blind_rst.py IFACE SRC DST PORT COUNT WAIT

Connects SRC -> DST:PORT (an echo server behind Sluice) and echoes a line.
A sniffer on IFACE learns the connection's sequence numbers from the
client's own segments. Then COUNT RSTs with the client's 4-tuple and
sequence numbers far outside any window are injected with a raw socket
(the client's kernel never sees them), the connection idles WAIT seconds
(longer than Sluice keeps a reset flow) and must still echo. Last, one RST
at exactly the client's next sequence number is injected: the server takes
it, and Sluice must end the flow. Prints one line per step; exits 1 when
the connection did not survive.
"""
import socket
import struct
import sys
import threading
import time

IFACE, SRC, DST = sys.argv[1], sys.argv[2], sys.argv[3]
PORT, COUNT, WAIT = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])

last = {}  # our side's latest (seq after the segment, ack)


def sniff(sport):
    # ETH_P_ALL: a socket of one protocol does not see what the host sends.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((IFACE, 0))
    while True:
        f = s.recv(65535)
        if f[12:14] != b"\x08\x00":
            continue
        ip = f[14:]
        if len(ip) < 40 or ip[9] != 6:
            continue
        hl = (ip[0] & 15) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        src = socket.inet_ntoa(ip[12:16])
        t = ip[hl:]
        sp, dp, seq, ack = struct.unpack("!HHII", t[:12])
        if src != SRC or sp != sport or dp != PORT or t[13] & 0x04:
            continue
        off = (t[12] >> 4) * 4
        flags = t[13]
        n = tot - hl - off + (1 if flags & 0x03 else 0)
        last["seq"] = (seq + n) & 0xFFFFFFFF
        last["ack"] = ack


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def rst(raw, sport, seq, ack):
    h = struct.pack("!HHIIBBHHH", sport, PORT, seq, ack, 5 << 4, 0x14, 0, 0, 0)
    pseudo = socket.inet_aton(SRC) + socket.inet_aton(DST) + struct.pack("!BBH", 0, 6, len(h))
    h = h[:16] + struct.pack("!H", csum(pseudo + h)) + h[18:]
    raw.sendto(h, (DST, 0))


def echo(c, what):
    c.sendall(what)
    got = b""
    while len(got) < len(what):
        d = c.recv(100)
        if not d:
            return False
        got += d
    return got == what


def settle():
    # The sniffer sees our last segment (data or its ACK) shortly after.
    time.sleep(0.3)
    return last["seq"], last["ack"]


c = socket.create_connection((DST, PORT), timeout=5)
c.settimeout(5)
sport = c.getsockname()[1]
threading.Thread(target=sniff, args=(sport,), daemon=True).start()
time.sleep(0.2)
print("echo1", echo(c, b"hello\n"), flush=True)
seq, ack = settle()
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for i in range(COUNT):
    rst(raw, sport, (seq + 0x40000000 + i * 0x01000000) & 0xFFFFFFFF, ack)
print("sent", COUNT, flush=True)
time.sleep(WAIT)
ok = echo(c, b"still here\n")
print("echo2", ok, flush=True)
seq, ack = settle()
rst(raw, sport, seq, ack)
print("in-window rst sent", flush=True)
sys.exit(0 if ok else 1)
