#!/usr/bin/env python3
"""Memory per idle streaming connection of a feedlab server (the floor by default).

Starts the server on a free loopback port, opens N idle WebSocket connections and then N idle
SSE connections from this process, and reads the server's VmRSS from /proc/<pid>/status before
and after each batch. Prints the growth per connection.

    floor/scripts/idle_rss.py [--bin target/release/floor] [--count 5000] [-- server args...]

Needs 2 * count + a few file descriptors in this process (`ulimit -n`).
"""

import argparse
import base64
import os
import socket
import subprocess
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError(f"closed during the head: {data!r}")
        data += chunk
    return data


def open_ws(addr, i):
    s = socket.create_connection(addr)
    key = base64.b64encode(i.to_bytes(16, "big")).decode()
    s.sendall(
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def open_sse(addr, _i):
    s = socket.create_connection(addr)
    s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def settle(pid):
    """RSS once it stops moving (the server may still be finishing handshakes)."""
    last = rss_kib(pid)
    for _ in range(20):
        time.sleep(0.1)
        now = rss_kib(pid)
        if now == last:
            return now
        last = now
    return last


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/floor")
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("server_args", nargs="*")
    args = p.parse_args()

    server = subprocess.Popen(
        [args.bin, "--bind", "127.0.0.1:0", *args.server_args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = server.stdout.readline().strip()
        host, port = first.removeprefix("feedlab listening on http://").rstrip("/").rsplit(":", 1)
        addr = (host, int(port))
        # Warm up: the first connections pay for one-off allocations (thread caches, slabs).
        warm = [open_ws(addr, i) for i in range(50)] + [open_sse(addr, i) for i in range(50)]
        for s in warm:
            s.close()
        time.sleep(0.3)
        held = []
        results = []
        base = settle(server.pid)
        print(f"{args.bin} {' '.join(args.server_args)}: RSS {base} KiB at start (after warm-up)")
        for name, opener in (("ws", open_ws), ("sse", open_sse)):
            before = settle(server.pid)
            held += [opener(addr, i) for i in range(args.count)]
            after = settle(server.pid)
            per = (after - before) * 1024 / args.count
            results.append((name, before, after, per))
            print(f"  {args.count} idle {name:3}: RSS {before} -> {after} KiB, {per:.0f} B per connection")
        total = settle(server.pid) - base
        print(f"  all {len(held)}: {total * 1024 / len(held):.0f} B per connection")
        for s in held:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
