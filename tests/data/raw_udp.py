#!/usr/bin/env python3
"""raw_udp.py VIP PORT CLIENT: from one UDP socket on CLIENT, a datagram
to VIP:PORT the normal way (it creates the flow and the neighbour entry),
then two more of the same flow as raw Ethernet frames (AF_PACKET): one
with its IPv4 header checksum broken, one with it right. Prints one line
per datagram: its name and the reply, or "none" after a second."""
import socket
import struct
import subprocess
import sys

vip, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SPORT = 40123
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((client, SPORT))
s.settimeout(2)
s.sendto(b"first", (vip, port))
print("first", s.recv(200).decode(), flush=True)
s.settimeout(1)

neigh = subprocess.run(["ip", "neigh", "show", vip], capture_output=True, text=True).stdout.split()
dev = neigh[neigh.index("dev") + 1]
dst = bytes.fromhex(neigh[neigh.index("lladdr") + 1].replace(":", ""))
src = bytes.fromhex(open(f"/sys/class/net/{dev}/address").read().strip().replace(":", ""))


def checksum(b):
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    t = (t & 0xFFFF) + (t >> 16)
    t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF


def frame(payload, good):
    udp = struct.pack("!HHHH", SPORT, port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 7, 0, 64, 17, 0,
                     socket.inet_aton(client), socket.inet_aton(vip))
    c = checksum(ip) if good else checksum(ip) ^ 0x5A5A
    ip = ip[:10] + struct.pack("!H", c) + ip[12:]
    return dst + src + b"\x08\x00" + ip + udp


raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((dev, 0))
for name, good in (("bad", False), ("good", True)):
    raw.send(frame(name.encode(), good))
    try:
        print(name, s.recv(200).decode(), flush=True)
    except socket.timeout:
        print(name, "none", flush=True)
