#!/usr/bin/env python3
"""Join latency with and without slowloris connections held open.

Starts huddle (HUDDLE_BIN, default target/debug/huddle) on 127.0.0.1, then
measures JOINS joins (TCP connect -> upgrade -> join -> `joined`
received), first with nothing else open, then while HALF half-sent HTTP
requests are held open from 127.0.0.2..127.0.0.(1+HALF/100) (100 per
address: the default per-IP cap). Prints median, p95 and max for both.

--http-header-timeout is raised to 120 s so the half-sent requests stay
open for the whole run (by default the server drops them after 10 s).

Usage: scripts/bench-slowloris.py   (env: HUDDLE_BIN, JOINS=200, HALF=500)
At the end it sends SIGTERM with the half-sent requests still open and
prints how long the server took to exit.
Loopback only; no third-party Python modules.
"""

import base64
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

BIN = os.environ.get("HUDDLE_BIN", "target/debug/huddle")
JOINS = int(os.environ.get("JOINS", "200"))
HALF = int(os.environ.get("HALF", "500"))


def frame(text):
    """A masked client text frame."""
    payload = text.encode()
    mask = os.urandom(4)
    head = bytearray([0x81])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    else:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    return bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_until(sock, marker):
    buf = b""
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed")
        buf += chunk
    return buf


def join_once(port, i):
    """Seconds from connect to `joined`."""
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n"
            f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
    )
    head = read_until(s, b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:80])
    s.sendall(frame(json.dumps({"type": "join", "room": f"bench{i % 50}", "name": f"m{i}"})))
    read_until(s, b'"type":"joined"')
    took = time.perf_counter() - t0
    s.close()
    return took


def measure(port, label):
    times = sorted(join_once(port, i) for i in range(JOINS))
    med = statistics.median(times) * 1000
    p95 = times[int(len(times) * 0.95) - 1] * 1000
    print(f"{label:<32} joins={JOINS} median={med:.2f} ms p95={p95:.2f} ms max={times[-1] * 1000:.2f} ms")
    return med


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = subprocess.Popen(
        [BIN, "--listen", "127.0.0.1:0", "--http-header-timeout", "120s", "--reconnect-grace", "0s"],
        stdout=subprocess.PIPE,
        env={**os.environ, "RUST_LOG": "warn"},
        text=True,
    )
    try:
        line = server.stdout.readline()
        port = int(re.search(r":(\d+)$", line.strip()).group(1))
        print(f"huddle: {BIN} on port {port}")
        measure(port, "nothing else open")
        held = []
        for i in range(HALF):
            s = socket.socket()
            s.bind((f"127.0.0.{2 + i // 100}", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        time.sleep(0.5)
        measure(port, f"{HALF} half-sent requests open")
        # SIGTERM with them still open: exits after --shutdown-timeout (5 s).
        t0 = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        print(f"exit after SIGTERM with {HALF} half-sent requests open: "
              f"{time.perf_counter() - t0:.2f} s (status {server.returncode}; --shutdown-timeout 5s)")
        for s in held:
            s.close()
    finally:
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
