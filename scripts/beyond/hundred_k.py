#!/usr/bin/env python3
"""Beyond one process (issue #29, item 3): one feed, one event every 10 s, to 100,000 concurrent
connections on one machine, for a minute of publishing.

No process may hold more than 20,000 open files here, so the run is several of each:

- one redis-server of the run's own, on a free loopback port (never the machine's 6379), without
  persistence;
- --instances feedlab servers on free loopback ports, sharing the feed through that Redis
  (`--redis`, a key prefix of this run's own), each under 19,000 connections;
- --shards loadgen processes running ONE plan (`--shard K/N`, the same flags and the same
  `--start-at`), each with its slice of the clients, spread over every instance and over the
  loopback source addresses the whole plan needs (127.0.0.1, .2, …, so ephemeral ports do not
  run out); slice 1 publishes;
- `loadgen merge` adds their reports into one: counts summed, latency histograms added.

Redis's CPU is read from /proc over the publishing window (and the whole run); the servers' CPU
and memory come from their /stats, in the merged report. Every process is stopped by its PID at
the end, also on failure or Ctrl-C. Writes --out (results/beyond-100k/): README.md (command,
commit, machine, the figures), summary.json, merged/ (report.json, report.md, report.html), and
shards/K/ (each process's report and log).

    cargo build --release -p server -p loadgen
    python3 scripts/beyond/hundred_k.py              # 100,000 WebSocket connections, ~4 min
    python3 scripts/beyond/hundred_k.py --bounded    # 10,000 connections, 10 s: does it work
    python3 scripts/beyond/hundred_k.py --dry-run    # the plan and the commands

Python 3 standard library only.
"""

import argparse
import json
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from provenance import commit, machine  # noqa: E402

# Open files per process (the machine's hard limit) and what a process keeps besides its
# connections (loadgen's FD_OVERHEAD; the server's listener, Redis connection and files).
NOFILE = 20_000
SPARE = 1_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, grace):
    """SIGTERM `proc` (by its PID), SIGKILL after `grace` s; reaps it."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def cpu_s(pid):
    """utime + stime of `pid`, seconds (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def start_redis(log_dir):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxclients", "1000"],
        stdout=open(os.path.join(log_dir, "redis.log"), "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    stop(proc, 2)
    raise RuntimeError(f"redis-server did not start on port {port} (see {log_dir}/redis.log)")


def start_server(a, n, redis_port, prefix, per_instance, log_dir):
    """One instance; returns (process, url) once it printed its address."""
    cmd = [a.server, "--bind", "127.0.0.1:0", "--rate", "0",
           "--redis", f"redis://127.0.0.1:{redis_port}", "--redis-prefix", prefix,
           "--max-connections", str(per_instance + SPARE)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(log_dir, f"server-{n}.log"), "w"), text=True)
    first = proc.stdout.readline().strip()
    # The rest of stdout is drained so the server never blocks on it.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    marker = "listening on "
    if marker not in first:
        stop(proc, 2)
        raise RuntimeError(f"server {n} did not start: {first!r} (see {log_dir}/server-{n}.log)")
    return proc, first.split(marker, 1)[1].split()[0]


def loadgen_command(a, shard, urls, start_at, out_dir):
    return [a.loadgen, "--url", ",".join(urls), "--transports", a.transport, "--http", "1.1",
            "--clients", str(a.connections), "--rate", str(a.rate), "--duration", f"{a.duration}s",
            "--drain", f"{a.drain}s", "--ready-timeout", f"{a.ready}s", "--repeat", "1",
            "--seed", "1", "--quiet", "--shard", f"{shard}/{a.shards}", "--start-at", start_at,
            "--out", out_dir]


class Sampler(threading.Thread):
    """Every second: Redis's CPU, and the RSS of every process of the run (for the peak)."""

    def __init__(self, redis_pid, pids):
        super().__init__(daemon=True)
        self.redis_pid, self.pids = redis_pid, pids
        self.samples = []  # (unix time, redis cpu s, total rss bytes)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.samples.append((time.time(), cpu_s(self.redis_pid), sum(rss_bytes(p) for p in self.pids())))
            self.done.wait(1.0)

    def redis_cpu_between(self, t0, t1):
        inside = [(t, c) for t, c, _ in self.samples if c is not None and t0 <= t <= t1]
        if len(inside) < 2:
            return None, None
        (ta, ca), (tb, cb) = inside[0], inside[-1]
        return round(cb - ca, 2), round((cb - ca) / max(tb - ta, 1e-9) * 100, 1)

    def peak_rss(self):
        return max((r for _, _, r in self.samples), default=0)


def figures(report, sampler, publish_from, publish_to, redis_total):
    rows = []
    redis_s, redis_pct = sampler.redis_cpu_between(publish_from, publish_to)
    for r in report["phases"]:
        lat = r["latency_us"]
        events = r["events_published"]
        rows.append({
            "transport": r["transport"],
            "connections": r["clients"],
            "events_published": events,
            "events_received": r["events_received"],
            "every_event_to_every_client": r["events_received"] == r["clients"] * events,
            "gaps": r["gaps"],
            "duplicates": r["duplicates"],
            "lost": r["lost"],
            "client_errors": sum(r["errors"].values()),
            "latency_p50_ms": lat["p50"] / 1000,
            "latency_p99_ms": lat["p99"] / 1000,
            "latency_max_ms": lat["max"] / 1000,
            "connect_s": r["connect_s"],
            "servers_cpu_s": r["server_cpu_s"],
            "servers_cpu_us_per_delivery": r["server_cpu_us_per_event"],
            "servers_rss_peak_bytes": r["server_rss_peak_bytes"],
            "loadgen_cpu_s": r["loadgen_cpu_s"],
            "loadgen_rss_peak_bytes": r["loadgen_rss_peak_bytes"],
            "redis_cpu_s_publishing": redis_s,
            "redis_cpu_percent_publishing": redis_pct,
            "redis_cpu_ms_per_event": None if redis_s is None or not events else round(redis_s * 1000 / events, 2),
            "redis_cpu_s_whole_run": redis_total,
        })
    return rows


def write_readme(a, meta, rows, merged_ok):
    def mib(b):
        return "–" if not b else f"{b / 2**20:,.0f} MiB"
    lines = [
        "# Beyond one process: one feed to 100,000 connections",
        "",
        f"Made by `{meta['command']}` on {meta['started']} ({meta['elapsed_s']} s), commit {meta['commit']},",
        f"{meta['machine']}; {a.conditions}.",
        "",
        f"{a.instances} feedlab servers ({'release' if '/release/' in a.server else 'debug'} build) on one redis-server of the run's own, "
        f"{a.shards} loadgen processes running one plan (`--shard K/{a.shards}`, one `--start-at`), "
        f"merged by `loadgen merge`; {a.transport}, one event every {1 / a.rate:g} s for {a.duration} s, "
        f"connections spread over the instances and over {meta.get('source_ips', '?')} loopback source address(es).",
        "",
        "| transport | connections | events | deliveries | gaps | dups | lost | p50 | p99 | max | servers' CPU per delivery | Redis CPU while publishing |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['transport']} | {r['connections']:,} | {r['events_published']} | {r['events_received']:,} | "
            f"{r['gaps']} | {r['duplicates']} | {r['lost']} | {r['latency_p50_ms']:.1f} ms | {r['latency_p99_ms']:.1f} ms | "
            f"{r['latency_max_ms']:.1f} ms | {r['servers_cpu_us_per_delivery'] or '–'} µs | "
            f"{r['redis_cpu_s_publishing']} s ({r['redis_cpu_percent_publishing']}% of a core; "
            f"{r['redis_cpu_ms_per_event']} ms per event) |"
        )
    lines += [
        "",
        f"Peak memory of every process of the run together: {mib(meta['peak_rss_bytes'])}. "
        f"Redis CPU over the whole run (connecting included): {rows[0]['redis_cpu_s_whole_run'] if rows else '–'} s.",
        "",
        "Every event reached every client exactly once." if merged_ok else
        "**Not every event reached every client exactly once**: see merged/report.md.",
        "",
        "Redis carries the feed, not the connections: each event is one XADD and one read per "
        "instance, whatever the number of clients, so Redis's cost grows with instances × events "
        "and each instance's with its own connections.",
        "",
        "Files: `merged/` (the merged report), `shards/K/` (each loadgen process's report and log), "
        "`servers/` (the servers' and Redis's logs), `summary.json`.",
        "",
    ]
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=100_000)
    p.add_argument("--instances", type=int, default=7, help="feedlab servers on one Redis")
    p.add_argument("--shards", type=int, default=7, help="loadgen processes running one plan")
    p.add_argument("--transport", default="ws", help="ws, sse or long-poll")
    p.add_argument("--rate", type=float, default=0.1, help="events per second (0.1: one every 10 s)")
    p.add_argument("--duration", type=int, default=70, help="publishing, s")
    p.add_argument("--ready", type=int, default=120, help="s the processes give their clients to connect")
    p.add_argument("--drain", type=int, default=3, help="s after the last publish")
    p.add_argument("--lead", type=int, default=5, help="s from now to --start-at")
    p.add_argument("--loadgen", default=os.path.join(ROOT, "target", "release", "loadgen"))
    p.add_argument("--server", default=os.path.join(ROOT, "target", "release", "server"))
    p.add_argument("--out", help="default results/beyond-100k/ (--bounded: a directory under /tmp, not a result)")
    p.add_argument("--conditions", default="loopback", help="how the machine was (quiet, loaded), for the README")
    p.add_argument("--bounded", action="store_true",
                   help="10,000 connections, 2 instances and 2 processes, 1 event/s for 10 s: to see it work")
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    if a.bounded:
        a.connections, a.instances, a.shards = min(a.connections, 10_000), 2, 2
        a.rate, a.duration, a.ready = 1.0, 10, 30
    if a.out is None:
        a.out = "/tmp/feedlab-beyond-bounded" if a.bounded else os.path.join(ROOT, "results", "beyond-100k")
    per_instance = -(-a.connections // a.instances)
    per_shard = -(-a.connections // a.shards)
    for what, n in (("instance", per_instance), ("loadgen process", per_shard)):
        if n + SPARE > NOFILE:
            sys.exit(f"{n:,} connections per {what} do not fit {NOFILE:,} open files with {SPARE} spare: "
                     f"raise --instances/--shards to at least {-(-a.connections // (NOFILE - SPARE))}")
    seconds = a.lead + 1 + a.ready + a.duration + a.drain + 20
    print(f"{a.connections:,} {a.transport} connections: {a.instances} servers (~{per_instance:,} each), "
          f"{a.shards} loadgen processes (~{per_shard:,} each); about {seconds / 60:.0f} min", file=sys.stderr)
    if a.dry_run:
        urls = [f"http://127.0.0.1:$PORT{n}/" for n in range(1, a.instances + 1)]
        for k in range(1, a.shards + 1):
            print(shlex.join(loadgen_command(a, k, urls, "$START_AT", os.path.join(a.out, "shards", str(k)))))
        print(shlex.join([a.loadgen, "merge", *[os.path.join(a.out, "shards", str(k)) for k in range(1, a.shards + 1)],
                          "--out", os.path.join(a.out, "merged")]))
        return
    for exe in (a.loadgen, a.server):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} is missing: cargo build --release -p server -p loadgen")
    # Every process inherits the soft limit: raised to the hard one, which must fit a slice.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < max(per_instance, per_shard) + SPARE:
        sys.exit(f"the open-file limit is {hard}: raise --instances and --shards")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logs = os.path.join(a.out, "servers")
    os.makedirs(logs, exist_ok=True)
    meta = {
        "command": shlex.join(["python3", "scripts/beyond/hundred_k.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "commit": commit(),
        "machine": machine(),
    }
    t0 = time.time()
    redis, servers, loadgens, sampler = None, [], [], None
    try:
        redis, port = start_redis(logs)
        prefix = f"beyond-{os.getpid()}-{int(t0)}"
        urls = []
        for n in range(1, a.instances + 1):
            proc, url = start_server(a, n, port, prefix, per_instance, logs)
            servers.append(proc)
            urls.append(url)
        sampler = Sampler(redis.pid, lambda: [p.pid for p in servers + loadgens + [redis]])
        sampler.start()
        start = time.time() + a.lead
        start_at = f"{start:.3f}"
        publish_from = start + 1 + a.ready
        publish_to = publish_from + a.duration
        for k in range(1, a.shards + 1):
            out_dir = os.path.join(a.out, "shards", str(k))
            os.makedirs(out_dir, exist_ok=True)
            log = open(os.path.join(out_dir, "loadgen.log"), "w")
            loadgens.append(subprocess.Popen(loadgen_command(a, k, urls, start_at, out_dir),
                                             stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        limit = seconds + 120
        for k, proc in enumerate(loadgens, 1):
            try:
                proc.wait(timeout=max(1, limit - (time.time() - t0)))
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"loadgen {k}/{a.shards} took more than {limit} s")
        failed = [k for k, proc in enumerate(loadgens, 1) if proc.returncode not in (0, 1)]
        if failed:
            raise RuntimeError(f"loadgen {failed} could not run: see {a.out}/shards/K/loadgen.log")
        redis_total = None
        whole = [c for _, c, _ in sampler.samples if c is not None]
        if len(whole) >= 2:
            redis_total = round(whole[-1] - whole[0], 2)
        merged = os.path.join(a.out, "merged")
        parts = [os.path.join(a.out, "shards", str(k)) for k in range(1, a.shards + 1)]
        m = subprocess.run([a.loadgen, "merge", *parts, "--out", merged], cwd=ROOT, capture_output=True, text=True)
        if m.returncode not in (0, 1):
            raise RuntimeError(f"loadgen merge failed: {m.stderr.strip()}")
        with open(os.path.join(merged, "report.json")) as f:
            report = json.load(f)
        sampler.done.set()
        rows = figures(report, sampler, publish_from, publish_to, redis_total)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        meta["elapsed_s"] = round(time.time() - t0)
        meta["peak_rss_bytes"] = sampler.peak_rss()
        meta["source_ips"] = report["settings"].get("source_ips")
        shown = meta["command"]
        with open(os.path.join(a.out, "summary.json"), "w") as f:
            json.dump({"meta": meta, "instances": a.instances, "shards": a.shards, "transport": a.transport,
                       "rate": a.rate, "duration_s": a.duration, "clean": not report["loss"], "phases": rows,
                       "record": report.get("record"), "warnings": report["warnings"]}, f, indent=2)
        write_readme(a, meta, rows, not report["loss"])
        for r in rows:
            print(f"{shown}: {r['connections']:,} connections, {r['events_received']:,} deliveries, "
                  f"gaps {r['gaps']}, dups {r['duplicates']}, p99 {r['latency_p99_ms']:.1f} ms, "
                  f"Redis CPU {r['redis_cpu_s_publishing']} s while publishing", file=sys.stderr)
        print(os.path.join(a.out, "README.md"))
        if report["loss"]:
            sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: stopping every process of the run", file=sys.stderr)
        raise
    except RuntimeError as e:
        sys.exit(f"hundred_k: {e}")
    finally:
        if sampler is not None:
            sampler.done.set()
        for proc in loadgens:
            stop(proc, 20)
        for proc in servers:
            stop(proc, 10)
        stop(redis, 5)


if __name__ == "__main__":
    main()
