#!/usr/bin/env python3
"""Servers and clients the lab tests run in namespaces.

  http PORT NAME             HTTP: every GET answers "NAME CLIENT_ADDR\n"
                             (on IPv4 and, from a second socket, IPv6)
  udp PORT NAME [MTU ADDR]   UDP: answers "NAME CLIENT_ADDR LEN"; with MTU,
                             also sends the client an ICMP "fragmentation
                             needed" quoting the datagram it got at ADDR
                             (IPv4; without MTU, IPv6 is answered too)
  many NAME PORT...          HTTP and UDP (as above) on every PORT
  hold PORT OUT              TCP: accepts one connection, waits; writes
                             "reset", "closed" or "timeout" to OUT
  hold-client HOST PORT OUT  connects, sends a line, waits; same results
  udp-client HOST PORT SECS OUT
                             from one socket, a datagram every 100 ms for
                             SECS; each reply ("NAME CLIENT LEN") is
                             appended to OUT as it comes
  echo PORT OUT              UDP and TCP echo on PORT; OUT holds the counts
                             received so far: "udp=N tcp=M" (TCP: lines)
  udp-stream HOST PORT SECS INTERVAL OUT
                             numbered datagrams every INTERVAL s for SECS,
                             then 1 s for the last echoes; OUT gets
                             "sent=N echoed=M"
  tcp-stream HOST PORT SECS INTERVAL OUT
                             one connection, a numbered line every INTERVAL
                             s for SECS, each echo read (waiting up to 20 s:
                             a restart of the path in between is no error);
                             OUT gets "sent=N echoed=M error=E port=LOCAL"
  tcp-many HOST PORT N SECS INTERVAL OUT
                             N tcp-stream connections at once (opened 5 ms
                             apart); OUT gets "conns=N ok=K broken=B
                             sent=S echoed=E" (ok: no error, every line
                             echoed), then "errors=..." and "ports=..."
                             (each connection's local port)
  http-loop HOST PORT SECS INTERVAL OUT
                             a new HTTP/1.0 connection every INTERVAL s for
                             SECS; OUT gets "sent=N ok=M failed=F"
  udp-burst HOST PORT COUNT SIZE [do|dont]
                             COUNT datagrams of SIZE bytes, one at a time
                             (waits up to 1 s for each reply); prints
                             "sent=N sent_bytes=B replies=R reply_bytes=RB
                             refused=F last=REPLY"; with do/dont, DF is set
                             (path MTU discovery: a send larger than the
                             learned path MTU is refused, EMSGSIZE) or
                             clear (the kernel sends it whole)
"""
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def http(port, name):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{name} {self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()

    ThreadingHTTPServer.daemon_threads = True
    v6 = V6(("::", port), H)
    threading.Thread(target=v6.serve_forever, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()


def many(name, ports):
    threads = []
    for p in ports:
        threads.append(threading.Thread(target=http, args=(p, name), daemon=True))
        threads.append(threading.Thread(target=udp, args=(p, name), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frag_needed(me, client, cport, port, data, mtu):
    """ICMP 3/4 quoting the datagram client:cport -> me:port."""
    udp_len = 8 + len(data)
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0x4000, 63, 17, 0,
                      socket.inet_aton(client), socket.inet_aton(me))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    udph = struct.pack("!HHHH", cport, port, udp_len, 0)
    icmp = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + iph + udph
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(icmp, (client, 0))


def udp6(port, name):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(f"{name} {peer[0]} {len(data)}\n".encode(), peer)


def udp(port, name, mtu=None, my_addr=None):
    if not mtu:
        threading.Thread(target=udp6, args=(port, name), daemon=True).start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, (addr, cport) = s.recvfrom(65535)
        s.sendto(f"{name} {addr} {len(data)}\n".encode(), (addr, cport))
        if mtu:
            frag_needed(my_addr, addr, cport, port, data, int(mtu))


def wait(conn, out):
    conn.settimeout(30)
    try:
        while True:
            d = conn.recv(100)
            if not d:
                r = "closed"
                break
    except ConnectionResetError:
        r = "reset"
    except socket.timeout:
        r = "timeout"
    with open(out, "w") as f:
        f.write(r + "\n")


def hold(port, out):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(8)
    conn, _ = s.accept()
    wait(conn, out)


def hold_client(host, port, out):
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(b"hello\n")
    wait(c, out)


def udp_client(host, port, secs, out):
    import time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    end = time.time() + secs
    with open(out, "a") as f:
        n = 0
        while time.time() < end:
            s.sendto(f"ping {n}".encode(), (host, port))
            n += 1
            try:
                f.write(s.recv(2048).decode().strip() + "\n")
                f.flush()
                time.sleep(0.1)
            except socket.timeout:
                pass


def echo(port, out):
    import time
    counts = {"udp": 0, "tcp": 0}
    lock = threading.Lock()

    def note(kind):
        with lock:
            counts[kind] += 1
            with open(out + ".tmp", "w") as f:
                f.write(f"udp={counts['udp']} tcp={counts['tcp']}\n")
            import os
            os.replace(out + ".tmp", out)

    def udp_echo():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
            note("udp")

    def tcp_conn(c):
        f = c.makefile("rb")
        try:
            for line in f:
                c.sendall(line)
                note("tcp")
        except ConnectionResetError:
            pass  # a reset connection ends here; tests count what came

    def tcp_echo():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(256)
        while True:
            c, _ = s.accept()
            threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()

    threading.Thread(target=tcp_echo, daemon=True).start()
    udp_echo()


def udp_stream(host, port, secs, interval, out):
    import time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    seen = set()
    sent = 0
    end = time.time() + secs
    nxt = time.time()

    def drain():
        while True:
            try:
                d = s.recv(2048)
            except BlockingIOError:
                return
            seen.add(d)

    while time.time() < end:
        if time.time() >= nxt:
            s.sendto(f"seq {sent}".encode(), (host, port))
            sent += 1
            nxt += interval
        drain()
        time.sleep(0.002)
    stop = time.time() + 1
    while time.time() < stop and len(seen) < sent:
        drain()
        time.sleep(0.01)
    with open(out, "w") as f:
        f.write(f"sent={sent} echoed={len(seen)}\n")


def stream(host, port, secs, interval, tag="", stop_on_loss=False):
    """One connection, a numbered line every `interval` s for `secs`, each
    echo read (waiting up to 20 s): (sent, echoed, error, local port)."""
    import time
    sent = echoed = 0
    err = "none"
    local = 0
    try:
        c = socket.create_connection((host, port), timeout=10)
        c.settimeout(20)
        local = c.getsockname()[1]
        f = c.makefile("rb")
        end = time.time() + secs
        while time.time() < end:
            line = f"{tag}line {sent}\n".encode()
            c.sendall(line)
            sent += 1
            if f.readline() == line:
                echoed += 1
            elif stop_on_loss:
                err = "lost"
                break
            time.sleep(interval)
        c.close()
    except Exception as e:  # noqa: BLE001 - the test reads what went wrong
        err = type(e).__name__
    return sent, echoed, err, local


def tcp_stream(host, port, secs, interval, out):
    sent, echoed, err, local = stream(host, port, secs, interval)
    with open(out, "w") as f:
        f.write(f"sent={sent} echoed={echoed} error={err} port={local}\n")


def tcp_many(host, port, n, secs, interval, out):
    import time
    results = [(0, 0, "none", 0)] * n

    def one(i):
        results[i] = stream(host, port, secs, interval, f"c{i} ", True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join()
    ok = sum(1 for r in results if r[2] == "none" and r[0] == r[1] > 0)
    errors = ",".join(sorted({r[2] for r in results if r[2] != "none"})) or "none"
    with open(out + ".tmp", "w") as f:
        f.write(
            f"conns={n} ok={ok} broken={n - ok} sent={sum(r[0] for r in results)} "
            f"echoed={sum(r[1] for r in results)}\n"
            f"errors={errors}\nports={','.join(str(r[3]) for r in results)}\n"
        )
    import os
    os.replace(out + ".tmp", out)


def http_loop(host, port, secs, interval, out):
    import time
    sent = ok = failed = 0
    end = time.time() + secs
    nxt = time.time()
    while time.time() < end:
        nxt += interval
        sent += 1
        try:
            with socket.create_connection((host, port), timeout=3) as c:
                c.settimeout(3)
                c.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                reply = b""
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    reply += d
            if reply.startswith(b"HTTP/1.0 200"):
                ok += 1
            else:
                failed += 1
        except OSError:
            failed += 1
        time.sleep(max(0, nxt - time.time()))
    with open(out, "w") as f:
        f.write(f"sent={sent} ok={ok} failed={failed}\n")


def udp_burst(host, port, count, size, df=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if df is not None:
        # IP_MTU_DISCOVER (10): IP_PMTUDISC_DO (2) sets DF, _DONT (0) not.
        s.setsockopt(socket.IPPROTO_IP, 10, 2 if df == "do" else 0)
    s.settimeout(1)
    sent = sent_bytes = replies = reply_bytes = refused = 0
    last = ""
    for i in range(count):
        payload = (f"{i:08d}" + "x" * size)[:size].encode()
        try:
            s.sendto(payload, (host, port))
        except OSError:
            refused += 1
            continue
        sent += 1
        sent_bytes += len(payload)
        try:
            d = s.recv(65535)
            replies += 1
            reply_bytes += len(d)
            last = d.decode(errors="replace").strip().replace(" ", "_")
        except socket.timeout:
            pass
        except OSError:
            # An ICMP error (fragmentation needed) reported on the socket.
            pass
    print(
        f"sent={sent} sent_bytes={sent_bytes} replies={replies} "
        f"reply_bytes={reply_bytes} refused={refused} last={last}"
    )


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "http":
        http(int(args[0]), args[1])
    elif cmd == "udp":
        mtu, addr = (args[2], args[3]) if len(args) > 3 else (None, None)
        udp(int(args[0]), args[1], mtu, addr)
    elif cmd == "many":
        many(args[0], [int(p) for p in args[1:]])
    elif cmd == "hold":
        hold(int(args[0]), args[1])
    elif cmd == "hold-client":
        hold_client(args[0], int(args[1]), args[2])
    elif cmd == "udp-client":
        udp_client(args[0], int(args[1]), float(args[2]), args[3])
    elif cmd == "echo":
        echo(int(args[0]), args[1])
    elif cmd == "udp-stream":
        udp_stream(args[0], int(args[1]), float(args[2]), float(args[3]), args[4])
    elif cmd == "tcp-stream":
        tcp_stream(args[0], int(args[1]), float(args[2]), float(args[3]), args[4])
    elif cmd == "tcp-many":
        tcp_many(args[0], int(args[1]), int(args[2]), float(args[3]), float(args[4]), args[5])
    elif cmd == "http-loop":
        http_loop(args[0], int(args[1]), float(args[2]), float(args[3]), args[4])
    elif cmd == "udp-burst":
        udp_burst(args[0], int(args[1]), int(args[2]), int(args[3]), *args[4:5])
    else:
        sys.exit(__doc__)
