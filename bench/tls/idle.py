#!/usr/bin/env python3
"""Opens N idle keep-alive connections, plain or TLS (each completes its handshake, sends one
request and reads the answer), then prints the server's RSS growth per connection.
usage: idle.py HOST PORT N PID[,PID...] plain|tls"""
import resource, socket, ssl, sys, time

host, port, n, pids, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))


def rss_kb():
    total = 0
    for p in pids.split(","):
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
req = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
before = rss_kb()
socks, ok = [], 0
for _ in range(n):
    s = socket.create_connection((host, port))
    if mode == "tls":
        s = ctx.wrap_socket(s)
    s.sendall(req)
    socks.append(s)
for s in socks:
    s.settimeout(5)
    try:
        if s.recv(4096).startswith(b"HTTP/1.1 200"):
            ok += 1
    except Exception:
        pass
time.sleep(0.5)
after = rss_kb()
print(f"conns={n} answered={ok} rss_before_kb={before} rss_after_kb={after} per_conn_bytes={(after - before) * 1024 / n:.0f}")
