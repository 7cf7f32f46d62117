"""Clients and servers for the outbound SNAT lab tests (tests/tests/lab_outbound.rs).

Usage: snat_lab.py MODE ARGS
  udp-client PORT HOST P1 P2 OUT   from local PORT sends "a" to HOST:P1 and "b" to
                                   HOST:P2, then for 6 s appends "addr port data"
                                   of every datagram received to OUT
  udp-two P1 P2 P3 OUT [6]         receives one datagram on P1 and one on P2, appends
                                   "port peer_addr peer_port" to OUT, then sends
                                   "third" from P3 to the first peer (6: over IPv6)
  udp-send HOST PORT DATA          one datagram
HOST may be IPv6; clients then use IPv6.
  tcp-echo PORT                    echoes every connection (threads)
  tcp-log PORT OUT                 per connection: reads a line, appends
                                   "line peer_port" to OUT
  tcp-names HOST PORT NAME N       N connections at once, each sends NAME; exits 0
                                   when all were accepted
  exhaust HOST P1 P2 OUT           the 8-port exhaustion sequence; appends
                                   "step 0|1" lines to OUT
  fill HOST PORT N OUT             N connections one after another, all kept
                                   open; each sends "i"; appends "i 0|1" to OUT
  tcp-who PORT OUT                 per connection: reads a line, appends
                                   "line peer_addr" to OUT
"""
import socket
import socketserver
import struct
import sys
import threading
import time


def family(host):
    return (socket.AF_INET6, "::") if ":" in host else (socket.AF_INET, "0.0.0.0")


def udp_client(port, host, p1, p2, out):
    af, any_addr = family(host)
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.bind((any_addr, port))
    s.sendto(b"a", (host, p1))
    s.sendto(b"b", (host, p2))
    s.settimeout(0.2)
    end = time.time() + 6
    while time.time() < end:
        try:
            data, peer = s.recvfrom(100)
            a, p = peer[0], peer[1]
        except socket.timeout:
            continue
        with open(out, "a") as f:
            f.write(f"{a} {p} {data.decode()}\n")


def udp_two(p1, p2, p3, out, v6=False):
    af, any_addr = family("::" if v6 else "0.0.0.0")
    socks = []
    for p in (p1, p2):
        s = socket.socket(af, socket.SOCK_DGRAM)
        s.bind((any_addr, p))
        socks.append(s)
    first = None
    for p, s in zip((p1, p2), socks):
        _, peer = s.recvfrom(100)
        first = first or peer
        with open(out, "a") as f:
            f.write(f"{p} {peer[0]} {peer[1]}\n")
    t = socket.socket(af, socket.SOCK_DGRAM)
    t.bind((any_addr, p3))
    t.sendto(b"third", first)


def udp_send(host, port, data):
    s = socket.socket(family(host)[0], socket.SOCK_DGRAM)
    s.sendto(data.encode(), (host, port))


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(4096)
            if not d:
                return
            self.request.sendall(d)


def serve(port, handler):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer(("0.0.0.0", port), handler).serve_forever()


def tcp_log(port, out):
    lock = threading.Lock()

    class Log(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode().strip()
            with lock, open(out, "a") as f:
                f.write(f"{line} {self.client_address[1]}\n")

    serve(port, Log)


def tcp_who(port, out):
    lock = threading.Lock()

    class Who(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode().strip()
            with lock, open(out, "a") as f:
                f.write(f"{line} {self.client_address[0]}\n")
            self.rfile.read()  # hold the connection until the client ends

    serve(port, Who)


def fill(host, port, n, out):
    held = []
    with open(out, "a") as f:
        for i in range(n):
            c = connect(host, port)
            if c is not None:
                c.sendall(f"{i}\n".encode())
                held.append(c)
            f.write(f"{i} {int(c is not None)}\n")
            f.flush()
    time.sleep(0.5)


def connect(host, port, timeout=2.0):
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None


def echoes(c):
    try:
        c.sendall(b"x")
        return c.recv(10) == b"x"
    except OSError:
        return False


def tcp_names(host, port, name, n):
    conns = [connect(host, port, 5) for _ in range(n)]
    for c in conns:
        if c is None:
            sys.exit(1)
        c.sendall(f"{name}\n".encode())
    time.sleep(0.5)


def exhaust(host, p1, p2, out):
    res = []
    conns = [connect(host, p1) for _ in range(8)]
    res.append(("eight_open", all(c is not None for c in conns)))
    ninth = connect(host, p1)
    res.append(("ninth_failed", ninth is None))
    res.append(("eight_echo", all(c is not None and echoes(c) for c in conns)))
    other = connect(host, p2)
    res.append(("other_port_shares", other is not None and echoes(other)))
    # Close one with a RST (linger 0): its port is free again after 15 s
    # (scaled by --timer-scale).
    conns[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conns[0].close()
    time.sleep(1.5)
    again = connect(host, p1)
    res.append(("after_rst", again is not None and echoes(again)))
    res.append(("seven_echo", all(echoes(c) for c in conns[1:])))
    with open(out, "a") as f:
        for k, v in res:
            f.write(f"{k} {int(v)}\n")


if __name__ == "__main__":
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "udp-client":
        udp_client(int(a[0]), a[1], int(a[2]), int(a[3]), a[4])
    elif cmd == "udp-two":
        udp_two(int(a[0]), int(a[1]), int(a[2]), a[3], a[4:] == ["6"])
    elif cmd == "udp-send":
        udp_send(a[0], int(a[1]), a[2])
    elif cmd == "tcp-echo":
        serve(int(a[0]), Echo)
    elif cmd == "tcp-log":
        tcp_log(int(a[0]), a[1])
    elif cmd == "tcp-names":
        tcp_names(a[0], int(a[1]), a[2], int(a[3]))
    elif cmd == "fill":
        fill(a[0], int(a[1]), int(a[2]), a[3])
    elif cmd == "tcp-who":
        tcp_who(int(a[0]), a[1])
    elif cmd == "exhaust":
        exhaust(a[0], int(a[1]), int(a[2]), a[3])
    else:
        sys.exit(__doc__)
