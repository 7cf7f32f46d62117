#!/usr/bin/env python3
"""Sends a captured sync datagram back onto the wire, altered, from a host
that is not an instance (the lab's untrusted-sync test).

  sync_attack.py IFACE PCAP MODE

PCAP holds one Ethernet frame: a sync datagram from instance A to B. The
frame leaves IFACE with this host's MAC as its source (so the switch does
not learn A's MAC here) and, by MODE:

  replay   the datagram as it was (its sequence number already seen)
  badmac   one payload byte flipped (the MAC no longer matches)
  nonpeer  the IP source changed to this host's address (not a peer)
"""
import socket
import struct
import sys

from lab_server import csum  # the same directory


def main(iface, pcap, mode):
    data = open(pcap, "rb").read()
    incl = struct.unpack("<I", data[24 + 8:24 + 12])[0]
    frame = bytearray(data[24 + 16:24 + 16 + incl])
    mine = open(f"/sys/class/net/{iface}/address").read().strip()
    frame[6:12] = bytes(int(x, 16) for x in mine.split(":"))
    ihl = (frame[14] & 0xF) * 4
    udp = 14 + ihl
    if mode == "badmac":
        frame[udp + 8 + 40] ^= 0x01
    elif mode == "nonpeer":
        addr = socket.inet_aton(sys.argv[4] if len(sys.argv) > 4 else "10.0.0.66")
        frame[14 + 12:14 + 16] = addr
        frame[14 + 10:14 + 12] = b"\0\0"
        frame[14 + 10:14 + 12] = struct.pack("!H", csum(bytes(frame[14:14 + ihl])))
    elif mode != "replay":
        sys.exit(__doc__)
    frame[udp + 6:udp + 8] = b"\0\0"  # no UDP checksum (IPv4 allows it)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(bytes(frame))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
