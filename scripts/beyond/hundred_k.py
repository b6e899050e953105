#!/usr/bin/env python3
"""Beyond one process (issue #29, item 3): one feed, one event every 10 s, to 100,000 concurrent
connections on one machine, for a minute of publishing, every client connected before the first
event.

No process may hold more than 20,000 open files here, so the run is several of each, as few as
fit (on two cores every process more is more threads taking turns):

- one redis-server of the run's own, on a free loopback port (never the machine's 6379), without
  persistence;
- --instances feedlab servers on free loopback ports, sharing the feed through that Redis
  (`--redis`, a key prefix of this run's own), each under 19,000 connections, listening with
  --backlog (the kernel's accept queue; net.core.somaxconn caps it);
- --shards loadgen processes running ONE plan (`--shard K/N`, the same flags and the same
  `--start-at`), each with its slice of the clients, spread over every instance and over the
  loopback source addresses the whole plan needs (127.0.0.1, .2, …, so ephemeral ports do not
  run out; loadgen keeps each address under half the ephemeral range, past which every
  Linux bind() scans the range and costs milliseconds); slice 1 publishes. Each has
  --connects-in-flight connection attempts in flight at once. Publishing starts --ready s after
  connecting began, time for every client to connect first;
- `loadgen merge` adds their reports into one: counts summed, latency histograms added.

Every server's CPU and open files (one per connection), and Redis's and loadgen's CPU, are read
from /proc every --sample-interval s (procstat.py, shared with burst_cost.py): the servers' CPU
per connection while connecting (until their open files say every client is in), and per
delivery over the bursts (publishing's window, every client connected throughout), apart.
The kernel's ListenOverflows/ListenDrops over the run say whether the accept queues overflowed.
When the run does not pass, the README says why from the run's counts: clients not connected
before publishing, clients dropped while publishing, and each slice's loss, disconnects and
errors with what each error kind means. Every process is stopped by its PID at the end, also on
failure or Ctrl-C. Writes --out (results/beyond-100k/; with --bounded or a debug build a
directory under /tmp): README.md (command, commit, machine, the figures), summary.json, merged/
(report.json, report.md, report.html), and shards/K/ (each process's report and log).

    cargo build --release -p server -p loadgen
    python3 scripts/beyond/hundred_k.py              # 100,000 WebSocket connections, ~6 min
    python3 scripts/beyond/hundred_k.py --bounded    # 10,000 connections, 10 s: does it work
    python3 scripts/beyond/hundred_k.py --dry-run    # the plan and the commands
    python3 scripts/beyond/hundred_k.py --profile debug --connections 30000 --duration 30 --ready 90

Python 3 standard library only.
"""

import argparse
import json
import os
import resource
import shlex
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import Sampler, free_port, open_files, split, stop  # noqa: E402
from provenance import commit, machine  # noqa: E402

# Open files per process (the machine's hard limit) and what a process keeps besides its
# connections (loadgen's FD_OVERHEAD; the server's listener, Redis connection and files).
NOFILE = 20_000
SPARE = 1_000

# The kernel's counters of connections refused at a full accept queue (`nstat`'s names), read
# from /proc/net/netstat before and after the run: any at all means the servers' --backlog (or
# net.core.somaxconn, which caps it) was too small for the connecting clients.
LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")

# What the loadgen error kinds mean here, for the loss's causes.
ERROR_CAUSES = {
    "ws_close_1008": "the server closed the connection: no pong within --ws-client-timeout of a ping "
                     "(the client's process did not run for that long)",
    "ws_close_1013": "the server closed the connection: the client fell --max-lag behind",
    "http_408": "the server's --request-timeout passed before it read the handshake request",
    "http_503": "the server refused the handshake: --max-connections reached",
    "timeout": "loadgen's connect or response timeout passed (the handshake's answer came too late)",
    "closed": "the connection closed before the handshake's answer (the server's request timeout "
              "without a 408, or its close)",
}


def listen_counters():
    """The TcpExt counters LISTEN_COUNTERS, machine-wide (None where the kernel has none)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return {k: int(row[k]) for k in LISTEN_COUNTERS if k in row}
    return {}


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


def start_server(a, n, redis_port, prefix, log_dir):
    """One instance; returns (process, url) once it printed its address. Its connection limit is
    what its open files allow (a client that fails over may land on any instance), its accept
    queue --backlog."""
    cmd = [a.server, "--bind", "127.0.0.1:0", "--rate", "0",
           "--redis", f"redis://127.0.0.1:{redis_port}", "--redis-prefix", prefix,
           "--max-connections", str(NOFILE - SPARE), "--backlog", str(a.backlog)]
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
            "--seed", "1", "--quiet", "--connects-in-flight", str(a.connects_in_flight), "--shard", f"{shard}/{a.shards}", "--start-at", start_at,
            "--out", out_dir]


def us(cpu_s, n):
    return None if cpu_s is None or not n else round(cpu_s / n * 1e6, 1)


def figures(a, report, sampler, windows, base_fds):
    """The table's rows, one per phase (one transport here)."""
    rows = []
    start, publish_from, publish_to = windows
    redis = sampler.cpu_between(publish_from, publish_to, "redis")
    loadgen = sampler.cpu_between(publish_from, publish_to, "loadgen")
    for r in report["phases"]:
        lat = r["latency_us"]
        events = r["events_published"]
        deliveries = r["events_received"]
        w = split(sampler, base_fds, r["clients"], start, window=(publish_from, publish_to))
        redis_s = None if redis is None else round(redis[0], 2)
        rows.append({
            "transport": r["transport"],
            "connections": r["clients"],
            "connections_opened": r["connections_opened"],
            "events_published": events,
            "events_received": deliveries,
            "every_event_to_every_client": deliveries == r["clients"] * events,
            "gaps": r["gaps"],
            "duplicates": r["duplicates"],
            "lost": r["lost"],
            "disconnects": r["disconnects"],
            "client_errors": r["errors"],
            "latency_p50_ms": lat["p50"] / 1000,
            "latency_p99_ms": lat["p99"] / 1000,
            "latency_max_ms": lat["max"] / 1000,
            "all_connected_after_s": w["all_connected_after_s"],
            "all_connected_before_publishing": w["all_connected_after_s"] is not None
            and w["all_connected_after_s"] <= a.ready,
            "fewest_connected_while_publishing": w["fewest_connected_in_window"],
            "servers_connect_cpu_s": w["connect_cpu_s"],
            "servers_connect_us_per_connection_opened": us(w["connect_cpu_s"], r["connections_opened"]),
            "servers_bursts_cpu_s": w["bursts_cpu_s"],
            "servers_bursts_window_s": w["bursts_window_s"],
            "servers_bursts_us_per_delivery": us(w["bursts_cpu_s"], deliveries),
            "loadgen_bursts_us_per_delivery": None if loadgen is None or w["bursts_cpu_s"] is None
            else us(loadgen[0], deliveries),
            "servers_cpu_s_whole_phase": r["server_cpu_s"],
            "servers_cpu_us_per_delivery_whole_phase": r["server_cpu_us_per_event"],
            "servers_rss_peak_bytes": r["server_rss_peak_bytes"],
            "loadgen_cpu_s": r["loadgen_cpu_s"],
            "loadgen_rss_peak_bytes": r["loadgen_rss_peak_bytes"],
            "redis_cpu_s_publishing": redis_s,
            "redis_cpu_percent_publishing": None if redis is None else round(redis[0] / max(redis[1], 1e-9) * 100, 1),
            "redis_cpu_ms_per_event": None if redis_s is None or not events else round(redis_s * 1000 / events, 2),
        })
    return rows


def slices(a):
    """Each loadgen process's own count: its clients, how many had connected when publishing
    started, what it lost, its disconnects and errors (the loss's causes)."""
    out = []
    for k in range(1, a.shards + 1):
        with open(os.path.join(a.out, "shards", str(k), "report.json")) as f:
            rep = json.load(f)
        for r in rep["phases"]:
            late = [w for w in rep["warnings"] if "clients had connected after" in w]
            out.append({"slice": k, "transport": r["transport"], "clients": r["clients"],
                        "connect_s": r["connect_s"], "not_all_connected": late[0] if late else None,
                        "lost": r["lost"], "gaps": r["gaps"], "duplicates": r["duplicates"],
                        "disconnects": r["disconnects"], "reconnects": r["reconnects"],
                        "errors": r["errors"]})
    return out


def causes(a, rows, per_slice, listen):
    """Why events were lost or clients failed, from the run's own counts: markdown lines."""
    lines = []
    for r in rows:
        if not r["all_connected_before_publishing"]:
            when = ("never all at once" if r["all_connected_after_s"] is None
                    else f"all only {r['all_connected_after_s']} s after connecting began")
            lines.append(f"- **Not every client was connected when publishing started**, {a.ready} s after "
                         f"connecting began ({when}; raise --ready): a client that connects late starts from "
                         "the phase's cursor, and its first events queue behind its handshake.")
        fewest = r["fewest_connected_while_publishing"]
        if fewest is not None and fewest < r["connections"]:
            lines.append(f"- While publishing, the servers held at the fewest {fewest:,} of "
                         f"{r['connections']:,} connections (their open files)"
                         + (": clients dropped after every one had connected." if r["all_connected_before_publishing"]
                            else "."))
    for s in per_slice:
        if s["lost"] or s["duplicates"] or s["not_all_connected"] or s["disconnects"]:
            errs = ", ".join(f"{k} ×{v}" for k, v in sorted(s["errors"].items())) or "none"
            lines.append(f"- Slice {s['slice']}: {s['lost']} lost, {s['duplicates']} duplicated, "
                         f"{s['disconnects']:,} disconnects, {s['reconnects']:,} reconnects (errors: {errs})"
                         + (f"; {s['not_all_connected']}" if s["not_all_connected"] else ""))
    kinds = sorted({k for s in per_slice for k in s["errors"]})
    for k in kinds:
        lines.append(f"  - `{k}`: {ERROR_CAUSES.get(k, 'see loadgen report')}")
    if any(s["lost"] for s in per_slice):
        clean = [s["slice"] for s in per_slice if s["lost"]
                 and not s["disconnects"] and not s["not_all_connected"]]
        lines.append("- A lost event is one a client had not received when the drain ended (`--drain`): "
                     "no event left the feed (every reconnect resumes from its cursor), so a loss in a slice "
                     "with disconnects or late clients is a delivery that came too late"
                     + (f"; slices {clean} lost events with neither: look at their reports" if clean else "."))
    overflow = {k: v for k, v in listen.items() if v}
    if overflow:
        lines.append(f"- The kernel refused connections at a full accept queue ({overflow}; machine-wide, "
                     "from /proc/net/netstat): raise --backlog (capped by net.core.somaxconn).")
    return lines


def write_readme(a, meta, rows, per_slice, merged_ok):
    def mib(b):
        return "–" if not b else f"{b / 2**20:,.0f} MiB"

    def num(v, unit=""):
        return "–" if v is None else f"{v}{unit}"
    lines = [
        "# Beyond one process: one feed to 100,000 connections",
        "",
        f"Made by `{meta['command']}` on {meta['started']} ({meta['elapsed_s']} s), commit {meta['commit']},",
        f"{meta['machine']}; {a.conditions}.",
        "",
        f"{a.instances} feedlab servers ({meta['build']} build, `--backlog {a.backlog}`) on one redis-server of the "
        f"run's own, {a.shards} loadgen processes running one plan (`--shard K/{a.shards}`, one `--start-at`), "
        f"merged by `loadgen merge`; {a.transport}, {a.ready} s to connect, then one event every {1 / a.rate:g} s "
        f"for {a.duration} s and {a.drain} s of drain; connections spread over the instances and over "
        f"{meta.get('source_ips', '?')} loopback source address(es).",
        "",
        "| transport | connections | all connected after | events | deliveries | gaps | dups | lost | p50 | p99 | max "
        "| servers' CPU per delivery (bursts) | servers' CPU per connection (connecting) | Redis CPU while publishing |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['transport']} | {r['connections']:,} | {num(r['all_connected_after_s'], ' s')} | "
            f"{r['events_published']} | {r['events_received']:,} | "
            f"{r['gaps']} | {r['duplicates']} | {r['lost']} | {r['latency_p50_ms']:.1f} ms | {r['latency_p99_ms']:.1f} ms | "
            f"{r['latency_max_ms']:.1f} ms | {num(r['servers_bursts_us_per_delivery'], ' µs')} | "
            f"{num(r['servers_connect_us_per_connection_opened'], ' µs')} ({r['connections_opened']:,} opened) | "
            f"{num(r['redis_cpu_s_publishing'], ' s')} ({num(r['redis_cpu_percent_publishing'], '%')} of a core; "
            f"{num(r['redis_cpu_ms_per_event'], ' ms')} per event) |"
        )
    lines += [
        "",
        "- **Servers' CPU per delivery (bursts)**: every instance's CPU (`/proc/PID/stat`, sampled every "
        f"{a.sample_interval:g} s) from publishing's start to {a.duration} s later, over the deliveries, and "
        "only when every client was connected throughout (their open files say so); "
        + ", ".join(f"loadgen's processes {num(r['loadgen_bursts_us_per_delivery'], ' µs')}" for r in rows)
        + " per delivery over the same window. "
        "**Per connection (connecting)**: the instances' CPU from connecting's start until every client was "
        "connected, over the connections opened (failed attempts included). loadgen's own figure, the whole "
        "phase over the deliveries (both together, and teardown): "
        + ", ".join(f"{num(r['servers_cpu_us_per_delivery_whole_phase'], ' µs')}" for r in rows) + ".",
        f"- Peak memory of every process of the run together: {mib(meta['peak_rss_bytes'])}. "
        f"Redis CPU over the whole run (connecting included): {num(meta['redis_cpu_s_whole_run'], ' s')}.",
        f"- Connections refused at a full accept queue (machine-wide `TcpExtListenOverflows`, "
        f"`TcpExtListenDrops` over the run): {meta['listen_counters_delta'] or 'not readable'}.",
        "",
        "Every event reached every client exactly once, and every client was connected before publishing "
        "started." if merged_ok else
        "**Not every event reached every client exactly once, or not every client was connected in time.** "
        "What the run's counts say of why (and merged/report.md):",
        "",
    ]
    if not merged_ok:
        lines += causes(a, rows, per_slice, meta["listen_counters_delta"] or {}) + [""]
    lines += [
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
    p.add_argument("--instances", type=int, default=6, help="feedlab servers on one Redis")
    p.add_argument("--shards", type=int, default=6, help="loadgen processes running one plan")
    p.add_argument("--transport", default="ws", help="ws, sse or long-poll")
    p.add_argument("--rate", type=float, default=0.1, help="events per second (0.1: one every 10 s)")
    p.add_argument("--duration", type=int, default=70, help="publishing, s")
    p.add_argument("--ready", type=int, default=240,
                   help="s the processes give their clients to connect before publishing starts")
    p.add_argument("--drain", type=int, default=10, help="s after the last publish")
    p.add_argument("--lead", type=int, default=5, help="s from now to --start-at")
    p.add_argument("--backlog", type=int, default=4096,
                   help="each server's --backlog (accept queue); the kernel caps it at net.core.somaxconn")
    p.add_argument("--connects-in-flight", type=int, default=256,
                   help="each loadgen process's --connects-in-flight (the servers see --shards times this)")
    p.add_argument("--sample-interval", type=float, default=0.5,
                   help="s between readings of the servers' CPU and open files")
    p.add_argument("--profile", default="release", choices=["release", "debug"],
                   help="which build of target/ to run (debug: to try the script, not to measure)")
    p.add_argument("--loadgen", help="default target/PROFILE/loadgen")
    p.add_argument("--server", help="default target/PROFILE/server")
    p.add_argument("--out", help="default results/beyond-100k/ (--bounded or a debug build: a directory under "
                   "/tmp, not a result)")
    p.add_argument("--conditions", default="loopback", help="how the machine was (quiet, loaded), for the README")
    p.add_argument("--bounded", action="store_true",
                   help="10,000 connections, 2 instances and 2 processes, 1 event/s for 10 s: to see it work")
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    a.loadgen = a.loadgen or os.path.join(ROOT, "target", a.profile, "loadgen")
    a.server = a.server or os.path.join(ROOT, "target", a.profile, "server")
    if a.bounded:
        a.connections, a.instances, a.shards = min(a.connections, 10_000), 2, 2
        a.rate, a.duration, a.ready = 1.0, 10, 30
    if min(a.connections, a.instances, a.shards, a.duration, a.ready) < 1 or a.rate <= 0 or a.drain < 0:
        sys.exit("--connections, --instances, --shards, --duration and --ready must be at least 1, "
                 "--rate above 0, --drain at least 0")
    if not 1 <= a.backlog <= 65_535 or not 1 <= a.connects_in_flight <= 65_535:
        sys.exit("--backlog and --connects-in-flight must be 1 to 65535 (the server's and loadgen's range)")
    if a.out is None:
        scratch = a.bounded or a.profile != "release"
        a.out = "/tmp/feedlab-beyond-bounded" if scratch else os.path.join(ROOT, "results", "beyond-100k")
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
            sys.exit(f"{exe} is missing: cargo build {'--release ' if a.profile == 'release' else ''}-p server -p loadgen")
    # Every process inherits the soft limit: raised to the hard one, which must fit a slice.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < max(per_instance, per_shard) + SPARE:
        sys.exit(f"the open-file limit is {hard}: raise --instances and --shards")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            somaxconn = int(f.read())
        if somaxconn < a.backlog:
            print(f"net.core.somaxconn is {somaxconn}: the servers' --backlog {a.backlog} is capped to it",
                  file=sys.stderr)
    except (OSError, ValueError):
        pass
    logs = os.path.join(a.out, "servers")
    os.makedirs(logs, exist_ok=True)
    meta = {
        "command": shlex.join(["python3", "scripts/beyond/hundred_k.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "commit": commit(),
        "machine": machine(),
        "build": "release" if "/release/" in a.server else "debug" if "/debug/" in a.server else a.server,
    }
    t0 = time.time()
    redis, servers, loadgens, sampler = None, [], [], None
    try:
        redis, port = start_redis(logs)
        prefix = f"beyond-{os.getpid()}-{int(t0)}"
        urls = []
        for n in range(1, a.instances + 1):
            proc, url = start_server(a, n, port, prefix, logs)
            servers.append(proc)
            urls.append(url)
        base_fds = sum(open_files(p.pid) for p in servers)
        sampler = Sampler(lambda: [p.pid for p in servers],
                          lambda: {"redis": [redis.pid], "loadgen": [p.pid for p in loadgens]},
                          interval=a.sample_interval)
        sampler.start()
        listen_before = listen_counters()
        start = time.time() + a.lead
        start_at = f"{start:.3f}"
        # loadgen starts connecting 1 s after --start-at and publishing --ready-timeout after that.
        connect_from = start + 1
        publish_from = connect_from + a.ready
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
        listen_after = listen_counters()
        sampler.finish()
        whole = sampler.cpu_between(t0, sampler.samples[-1].t, "redis")
        merged = os.path.join(a.out, "merged")
        parts = [os.path.join(a.out, "shards", str(k)) for k in range(1, a.shards + 1)]
        m = subprocess.run([a.loadgen, "merge", *parts, "--out", merged], cwd=ROOT, capture_output=True, text=True)
        if m.returncode not in (0, 1):
            raise RuntimeError(f"loadgen merge failed: {m.stderr.strip()}")
        with open(os.path.join(merged, "report.json")) as f:
            report = json.load(f)
        rows = figures(a, report, sampler, (connect_from, publish_from, publish_to), base_fds)
        per_slice = slices(a)
        clean = not report["loss"] and all(r["all_connected_before_publishing"] for r in rows)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        meta["elapsed_s"] = round(time.time() - t0)
        meta["peak_rss_bytes"] = sampler.peak_rss()
        meta["source_ips"] = report["settings"].get("source_ips")
        meta["redis_cpu_s_whole_run"] = None if whole is None else round(whole[0], 2)
        meta["listen_counters_delta"] = {k: listen_after[k] - listen_before[k]
                                         for k in listen_after if k in listen_before}
        shown = meta["command"]
        with open(os.path.join(a.out, "summary.json"), "w") as f:
            json.dump({"meta": meta, "instances": a.instances, "shards": a.shards, "transport": a.transport,
                       "rate": a.rate, "duration_s": a.duration, "ready_s": a.ready, "drain_s": a.drain,
                       "backlog": a.backlog, "clean": clean, "phases": rows, "slices": per_slice,
                       "record": report.get("record"), "warnings": report["warnings"]}, f, indent=2)
        write_readme(a, meta, rows, per_slice, clean)
        for r in rows:
            print(f"{shown}: {r['connections']:,} connections (all connected after {r['all_connected_after_s']} s), "
                  f"{r['events_received']:,} deliveries, gaps {r['gaps']}, dups {r['duplicates']}, "
                  f"p99 {r['latency_p99_ms']:.1f} ms, servers {r['servers_bursts_us_per_delivery']} µs per delivery "
                  f"(bursts), {r['servers_connect_us_per_connection_opened']} µs per connection (connecting), "
                  f"Redis CPU {r['redis_cpu_s_publishing']} s while publishing; "
                  f"listen queue overflows {meta['listen_counters_delta']}", file=sys.stderr)
        print(os.path.join(a.out, "README.md"))
        if not clean:
            sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: stopping every process of the run", file=sys.stderr)
        raise
    except RuntimeError as e:
        sys.exit(f"hundred_k: {e}")
    finally:
        if sampler is not None:
            sampler.finish()
        for proc in loadgens:
            stop(proc, 20)
        for proc in servers:
            stop(proc, 10)
        stop(redis, 5)


if __name__ == "__main__":
    main()
