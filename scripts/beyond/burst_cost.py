#!/usr/bin/env python3
"""One release server, one loadgen of WebSocket clients, one event every few seconds: the
server's CPU split into what connecting the clients cost and what each burst cost.

loadgen's own "server CPU per delivery" counts from before the clients connect until after they
have gone, so at one event every 10 s (7 events per connection in the 100,000-connection run) it
spreads every connection's set-up and teardown over a few deliveries. This script samples the server's CPU (/proc/PID/stat) and its
open files (one per connection) every 100 ms (procstat.py, which hundred_k.py shares) and reads
the CPU over the window in which every client was connected: that window holds the bursts (and nothing else but timers), so its CPU
over its deliveries is what a delivery costs at that scale.

    cargo build --release -p server -p loadgen
    python3 scripts/beyond/burst_cost.py --clients 1000,5000,15000 --repeat 3
    python3 scripts/beyond/burst_cost.py --clients 15000 --redis --perf out.data
    python3 scripts/beyond/burst_cost.py --clients 15000 --server target/release/floor

Each run prints one JSON line: clients, events, deliveries, connect CPU per connection (µs),
burst CPU per delivery (µs), loadgen's own figure, p50/p99. Every process it starts it stops by
PID, also on failure.
"""

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import Sampler, free_port, open_files, split  # noqa: E402
from procstat import stop as stop_by_pid  # noqa: E402


def stop(proc, grace=5):
    stop_by_pid(proc, grace, signal.SIGINT)


def start_redis():
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("redis-server did not start")


def start_server(a, clients, redis_port):
    cmd = [a.server, "--bind", "127.0.0.1:0", "--rate", "0"]
    if os.path.basename(a.server) != "floor":  # the floor has no connection limit and no Redis
        cmd += ["--max-connections", str(clients + 1000)]
    if redis_port:
        cmd += ["--redis", f"redis://127.0.0.1:{redis_port}", "--redis-prefix", f"burst{os.getpid()}"]
    cmd += a.server_arg
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    first = proc.stdout.readline().strip()
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    if "listening on " not in first:
        stop(proc)
        raise RuntimeError(f"server did not start: {first!r}")
    return proc, first.split("listening on ", 1)[1].split()[0]


def one_run(a, clients, use_redis, perf_out):
    redis = server = perf = lg = None
    out = tempfile.mkdtemp(prefix="burst-")
    try:
        port = None
        if use_redis:
            redis, port = start_redis()
        server, url = start_server(a, clients, port)
        base = open_files(server.pid)
        sampler = Sampler(lambda: [server.pid], interval=0.1)
        sampler.start()
        t0 = time.time()
        lg = subprocess.Popen([a.loadgen, "--url", url, "--transports", "ws", "--http", "1.1", "--clients",
                               str(clients), "--rate", str(a.rate), "--duration", a.duration, "--drain", "3s",
                               "--ready-timeout", "120s", "--repeat", "1", "--seed", "1", "--quiet",
                               "--out", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if perf_out is not None:
            record = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", str(server.pid), "-o"]
            if a.perf_window == "connect":
                perf = subprocess.Popen(record + [perf_out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # The bursts: from the moment every client is connected until the first one leaves.
            while lg.poll() is None and open_files(server.pid) < base + clients:
                time.sleep(0.1)
            if a.perf_window == "connect":
                stop(perf, 60)
            else:
                perf = subprocess.Popen(record + [perf_out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                while lg.poll() is None and open_files(server.pid) >= base + clients:
                    time.sleep(0.1)
                stop(perf, 60)
            perf = None
        if lg.wait() != 0:
            raise RuntimeError(f"loadgen failed (exit {lg.returncode}); its output is in {out}")
        sampler.finish()
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        r = next(p for p in report["phases"] if p["transport"] == "ws")
        w = split(sampler, base, clients, t0)
        if w["bursts_cpu_s"] is None:
            raise RuntimeError("the clients were never all connected at once")
        deliveries = r["events_received"]
        return {
            "clients": clients,
            "redis": use_redis,
            "events": r["events_published"],
            "deliveries": deliveries,
            "gaps": r["gaps"],
            "connect_cpu_s": w["connect_cpu_s"],
            "connect_us_per_connection": round(w["connect_cpu_s"] / clients * 1e6, 1),
            "burst_window_s": w["bursts_window_s"],
            "burst_cpu_s": w["bursts_cpu_s"],
            "burst_us_per_delivery": round(w["bursts_cpu_s"] / max(deliveries, 1) * 1e6, 2),
            "loadgen_us_per_delivery": r.get("server_cpu_us_per_event"),
            "p50_ms": round(r["latency_us"]["p50"] / 1000, 1),
            "p99_ms": round(r["latency_us"]["p99"] / 1000, 1),
            "t0": round(t0, 1),
        }
    finally:
        for p in (perf, lg, server, redis):
            stop(p)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="1000,5000,15000", help="comma-separated client counts")
    p.add_argument("--rate", type=float, default=0.2, help="events per second (0.2: one every 5 s)")
    p.add_argument("--duration", default="30s")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--redis", action="store_true", help="servers on a Redis of the run's own")
    p.add_argument("--perf", help="perf record the server while every client is connected, into this file")
    p.add_argument("--perf-window", choices=["burst", "connect"], default="burst",
                   help="what --perf records: the bursts (every client connected) or the connecting")
    p.add_argument("--server", default=os.path.join(ROOT, "target", "release", "server"))
    p.add_argument("--loadgen", default=os.path.join(ROOT, "target", "release", "loadgen"))
    p.add_argument("--server-arg", action="append", default=[], help="one more argument for the server")
    a = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for _ in range(a.repeat):
        for n in [int(x) for x in a.clients.split(",")]:
            print(json.dumps(one_run(a, n, a.redis, a.perf)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
