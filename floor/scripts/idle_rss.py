#!/usr/bin/env python3
"""Memory per idle streaming connection of a feedlab server (the floor by default).

Why: an idle connection is what a fan-out server holds most of, so its memory is the number
that decides how many clients fit in a machine. This script starts the server on a free
loopback port, opens COUNT idle WebSocket connections and then COUNT idle SSE connections
from this process (a separate process from the server, so only the server's side is counted),
and reads the server's VmRSS from /proc/<pid>/status before and after each batch, once it has
stopped moving. It prints the growth per connection.

    floor/scripts/idle_rss.py [--bin target/release/floor] [--count 5000] [-- server args...]
    floor/scripts/idle_rss.py --bin target/release/server --transports ws --count 10000 --json \\
        -- --rate 0 --log warn

`--heap-profile FILE` runs the server under valgrind's massif and writes, to FILE, where the
heap was at its peak (every connection open), by allocation site (`ms_print`): what each idle
connection is made of, which RSS alone does not say. Under valgrind RSS is valgrind's, so the
printed RSS numbers are then not the server's; take them from a run without it.

`--tls-ca CERT` opens every connection over TLS (HTTP/1.1 by ALPN, verified against CERT as
`localhost`): for a server started with `--tls-cert`/`--tls-key`, which prints `https://`.

`--transports` picks the batches (default `ws,sse`, both held on one server at once, as this
script always did). This process needs one file descriptor per connection it holds, plus a few
(`ulimit -n`; the soft limit is raised to the hard one): with a hard limit of 20,000, 10,000
WS and 10,000 SSE connections do not fit on one server, so measure them in two runs
(`--transports ws`, then `--transports sse`). `--json` also prints the numbers as one JSON
object on the last line.

As a module (scripts/fanout/bench.py uses it): `open_idle(addr, pid, transport, count)` opens
one batch against a server someone else started and returns the sockets and the measurement.
"""

import argparse
import base64
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

# One connection's handshake must not take longer than this (a stuck server fails the run).
SOCKET_TIMEOUT_S = 10.0
# How long a server gets to print its listening line.
START_TIMEOUT_S = 15.0


# Every opener's connection goes through this TLS context when set (`use_tls`).
TLS_CONTEXT = None


def use_tls(cafile):
    """Opens every later connection over TLS, HTTP/1.1 by ALPN, trusting `cafile` for
    `localhost`."""
    global TLS_CONTEXT
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    TLS_CONTEXT = ctx


def connect(addr):
    s = socket.create_connection(addr, timeout=SOCKET_TIMEOUT_S)
    if TLS_CONTEXT is not None:
        s = TLS_CONTEXT.wrap_socket(s, server_hostname="localhost")
    return s


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


def open_ws(addr, i, path="/ws"):
    s = connect(addr)
    key = base64.b64encode(i.to_bytes(16, "big")).decode()
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def open_sse(addr, _i, path="/sse"):
    s = connect(addr)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def open_long_poll(addr, _i, path="/long-poll?timeout_ms=120000"):
    """A long poll held by the server (nothing is published): what a long-polling client costs
    between events."""
    s = connect(addr)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def open_short_poll(addr, _i, path="/poll"):
    """A keep-alive connection after one answered poll: what a short-polling client keeps open
    between polls."""
    s = connect(addr)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = read_head(s)
    assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 304")), head
    return s


OPENERS = {"ws": open_ws, "sse": open_sse, "long-poll": open_long_poll, "short-poll": open_short_poll}


def settle(pid, stable_reads=3, interval_s=0.1, limit_s=5.0):
    """RSS once it stops moving (the server may still be finishing handshakes): the same value
    `stable_reads` times in a row, `interval_s` apart, or whatever it is after `limit_s`."""
    last = rss_kib(pid)
    same = 0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        now = rss_kib(pid)
        same = same + 1 if now == last else 0
        last = now
        if same >= stable_reads:
            break
    return last


def raise_fd_limit(needed):
    """Raises this process's soft open-file limit to the hard one; fails clearly if `needed`
    descriptors still would not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if needed > soft:
        raise SystemExit(
            f"idle_rss: {needed} file descriptors needed, the limit is {soft} "
            "(measure fewer connections, or one transport per run with --transports)"
        )


def warm_up(addr, transports, n=50, path=None):
    """The first connections pay for one-off allocations (thread caches, slabs): open and
    close a few of each kind before measuring."""
    warm = [OPENERS[t](addr, i, *([path] if path else [])) for t in transports for i in range(n)]
    for s in warm:
        s.close()
    time.sleep(0.3)


def open_idle(addr, pid, transport, count, path=None):
    """Opens `count` idle `transport` connections to the server at `addr` (process `pid`) and
    measures its RSS growth. Returns (sockets, result); the caller closes the sockets. `path`:
    where to subscribe, when not feedlab's /ws or /sse (Nchan's subscriber location)."""
    before = settle(pid)
    t0 = time.monotonic()
    held = []
    try:
        for i in range(count):
            held.append(OPENERS[transport](addr, i, *([path] if path else [])))
    except BaseException:
        for s in held:
            s.close()
        raise
    open_s = time.monotonic() - t0
    after = settle(pid)
    result = {
        "transport": transport,
        "count": count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_connection": (after - before) * 1024 / count,
        "open_s": round(open_s, 3),
    }
    return held, result


def start_server(cmd, log):
    """Starts `cmd` (which must bind to port 0) with its output in the file `log`, and returns
    (process, (host, port)) once the first line `feedlab listening on http(s)://ADDR/` appears."""
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # our signal handling decides when it stops, not the terminal's
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with open(log.name) as f:
            first = f.readline()
        if first.endswith("\n"):
            scheme = next((s for s in ("http://", "https://") if first.startswith(f"feedlab listening on {s}")), None)
            if scheme is None:
                break
            host, port = first.strip().removeprefix(f"feedlab listening on {scheme}").rstrip("/").rsplit(":", 1)
            return proc, (host, int(port))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    stop_server(proc)
    with open(log.name) as f:
        output = f.read().strip()
    raise RuntimeError(f"{' '.join(cmd)} did not start: {output[-2000:] or 'no output'}")


def stop_server(proc, timeout=10):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sigterm(_sig, _frame):
    # So `finally` runs and the server is stopped.
    raise SystemExit(143)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="target/release/floor")
    p.add_argument("--count", type=int, default=5000, help="connections per transport")
    p.add_argument(
        "--transports",
        default="ws,sse",
        help="batches to open, in order, all held on one server (default ws,sse)",
    )
    p.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    p.add_argument("--tls-ca", metavar="CERT", help="connect over TLS, trusting CERT (PEM) for localhost")
    p.add_argument("--heap-profile", metavar="FILE",
                   help="run the server under valgrind --tool=massif; write the peak's allocation tree to FILE")
    p.add_argument("server_args", nargs="*")
    args = p.parse_args()
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = [t for t in transports if t not in OPENERS]
    if unknown or not transports:
        p.error(f"--transports: one or more of {', '.join(OPENERS)}, got {args.transports!r}")
    raise_fd_limit(args.count * len(transports) + 64)
    if args.tls_ca:
        use_tls(args.tls_ca)
    signal.signal(signal.SIGTERM, _sigterm)

    cmd = [args.bin, "--bind", "127.0.0.1:0", *args.server_args]
    massif_out = None
    if args.heap_profile:
        massif_out = tempfile.NamedTemporaryFile(prefix="idle_rss-massif-", delete=False).name
        # --threshold: sites under 0.5% of the peak are folded together; --depth: enough frames
        # to reach the server's own code from the allocator.
        cmd = ["valgrind", "-q", "--tool=massif", f"--massif-out-file={massif_out}", "--threshold=0.5",
               "--depth=40", *cmd]
    with tempfile.NamedTemporaryFile("w", prefix="idle_rss-", suffix=".log") as log:
        server, addr = start_server(cmd, log)
        held = []
        try:
            warm_up(addr, transports)
            base = settle(server.pid)
            print(f"{args.bin} {' '.join(args.server_args)}: RSS {base} KiB at start (after warm-up)")
            results = []
            for name in transports:
                socks, r = open_idle(addr, server.pid, name, args.count)
                held += socks
                results.append(r)
                print(
                    f"  {args.count} idle {name:3}: RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB, "
                    f"{r['bytes_per_connection']:.0f} B per connection"
                )
            total = settle(server.pid) - base
            print(f"  all {len(held)}: {total * 1024 / len(held):.0f} B per connection")
            if args.json:
                print(json.dumps({"command": cmd, "rss_base_kib": base, "batches": results}))
        finally:
            for s in held:
                s.close()
            stop_server(server, timeout=60 if massif_out else 10)
    if massif_out:
        tree = subprocess.run(["ms_print", "--threshold=0.5", massif_out], capture_output=True, text=True)
        os.unlink(massif_out)
        held_n = len(transports) * args.count
        with open(args.heap_profile, "w") as f:
            f.write(f"# {' '.join(cmd)}\n# idle connections held at the peak: {held_n} "
                    f"({', '.join(transports)})\n\n{peak_summary(tree.stdout, held_n)}")
        print(f"  heap at its peak, by allocation site: {args.heap_profile}")


def peak_summary(ms_print: str, connections: int) -> str:
    """The peak snapshot of an `ms_print` listing: each top-level allocation site with its bytes
    per held connection and the first frames that name code of ours (or tokio's task, or
    actix's), then the snapshot's whole tree."""
    import re
    lines = ms_print.split("\n")
    detailed = next((l for l in lines if "Detailed snapshots" in l), "")
    m = re.search(r"(\d+) \(peak\)", detailed)
    if not m:
        return ms_print
    start = next(i for i, l in enumerate(lines) if re.match(rf"^\s+{m.group(1)}\s+[\d,]+\s+[\d,]+", l))
    tree = []
    for l in lines[start:]:
        if tree and l.startswith("-" * 40) and len(tree) > 5:
            break
        tree.append(l)
    out = ["## Bytes per connection at the peak, by allocation site", "",
           "| bytes / connection | share | allocated in |", "| ---: | ---: | --- |"]
    site, frames = None, []

    def flush():
        if site:
            named = [f for f in frames if re.search(r"(server|floor)::|tokio::runtime::task|actix_|mio::|slab", f)]
            where = " ← ".join(dict.fromkeys(named[:3])) or (frames[-1] if frames else "?")
            out.append(f"| {site[1] / connections:,.0f} | {site[0]} | {where[:240]} |")

    for l in tree:
        top = re.match(r"^->(\d+\.\d+%) \(([\d,]+)B\)", l)
        if top:
            flush()
            site, frames = (top.group(1), int(top.group(2).replace(",", ""))), []
            continue
        f = re.search(r"0x[0-9A-F]+: (.*?)(?: \(|$)", l)
        if site and f:
            frames.append(f.group(1).strip())
    flush()
    return "\n".join(out) + "\n\n## The peak snapshot (ms_print)\n\n```\n" + "\n".join(tree) + "\n```\n"


if __name__ == "__main__":
    sys.exit(main())
