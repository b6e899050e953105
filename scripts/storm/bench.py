#!/usr/bin/env python3
"""The reconnect storm, measured before and after its defences (issue #28, item 4).

10,000 clients of one transport on two server instances that share one Redis, coming back as
browsers do (`loadgen --reconnect browser`: SSE waits the server's `retry:` hint, everything else
feedlab's page back-off). Two storms:

- kill-one: one instance SIGKILLed; its half of the clients moves to the survivor.
- rolling-restart: every instance in turn gets SIGTERM, exits, is started again on its port,
  and 3 s after it listens the next one follows: the second instance's clients (and the first's,
  which moved to it) all land on the instance that has just restarted.

Each storm runs "before" (the defences off: a fixed SSE `retry:` of 1 s, no limit on new
connections, streams all ended at once on SIGTERM) and "after" (the defences on, with the
values below), interleaved, --repeats times. loadgen starts the instances (the release
`server` next to it) and its storm timeline says, per 100 ms and per instance, the connection
attempts, subscriptions, lost connections and 503 refusals, and each instance's CPU; its
report says what was lost or duplicated, the reconnect times and the latency of the events in
flight during the storm. This script starts its own redis-server on a free loopback port (never
the machine's 6379), runs loadgen once per cell, stops both by PID (also on failure or Ctrl-C),
and writes results/storm/: README.md (the before/after table, with command, commit, machine
and time), summary.json, and per cell report.json, report.md and timeline.jsonl.

    cargo build --release -p server -p loadgen
    python3 scripts/storm/bench.py                 # ~9 min: sse and ws, both storms, 2 repeats
    python3 scripts/storm/bench.py --dry-run       # the plan and the commands
    python3 scripts/storm/bench.py --quick         # 300 clients, 1 repeat: does it work

Python 3 standard library only.
"""

import argparse
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from provenance import commit, machine  # noqa: E402

# The defences off: what the server did before them (a fixed `retry: 1000`, every stream ended
# at the same moment on SIGTERM, no limit on new connections).
BEFORE = [
    "--sse-retry-min=1s",
    "--sse-retry-max=1s",
    "--max-new-connections-per-sec=0",
    "--shutdown-drain=0s",
]


def after_args(a):
    """The defences on, with this run's values."""
    return [
        f"--sse-retry-min={a.retry_min}",
        f"--sse-retry-max={a.retry_max}",
        f"--max-new-connections-per-sec={a.new_per_sec}",
        f"--new-connections-retry-after-min={a.retry_after_min}",
        f"--new-connections-retry-after-max={a.retry_after_max}",
        f"--shutdown-grace={a.grace}",
        f"--shutdown-drain={a.drain}",
    ]


# How long each storm publishes: the kill (or first SIGTERM) at --chaos-at, then time for the
# slowest client to be back (a rolling restart is two drains, two starts and the pause between).
DURATION = {"kill-one": 18, "rolling-restart": 30}
QUICK_DURATION = {"kill-one": 10, "rolling-restart": 24}
CHAOS_AT = "3s"
PAUSE = "3s"  # between one instance listening again and the next one's SIGTERM


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


def start_redis():
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    sys.exit(f"redis-server did not start on port {port}")


def loadgen_command(a, cell, redis_port, out_dir):
    scenario, transport, variant, repeat = cell
    durations = QUICK_DURATION if a.quick else DURATION
    cmd = [
        a.loadgen,
        "--server-bin", a.server,
        "--spawn", "2",
        "--redis", f"redis://127.0.0.1:{redis_port}",
        "--transports", transport,
        "--clients", str(a.clients),
        "--http", "1.1",
        "--repeat", "1",
        "--rate", str(a.rate),
        "--duration", f"{durations[scenario]}s",
        "--drain", "2s",
        "--chaos", scenario,
        "--chaos-at", CHAOS_AT,
        "--chaos-outage", PAUSE,
        "--reconnect", a.reconnect,
        "--storm-timeline", os.path.join(out_dir, "timeline.jsonl"),
        "--seed", str(1000 + repeat),
        "--quiet",
        "--out", out_dir,
    ]
    for arg in BEFORE if variant == "before" else after_args(a):
        cmd.append(f"--server-arg={arg}")
    return cmd


def windows(series, width):
    """Largest sum of `series` ({bucket ms: value}) over any `width` consecutive 100 ms buckets."""
    if not series:
        return 0
    keys = sorted(series)
    best = 0
    for start in keys:
        total = sum(series.get(start + 100 * k, 0) for k in range(width))
        best = max(best, total)
    return best


def cpu_profile(samples, instance, t0_ms, t1_ms):
    """(peak CPU % over any 1 s, CPU s used) of one instance between t0 and t1 (ms), from its
    cumulative CPU samples; a restart (new pid) starts a new series."""
    rows = sorted((s for s in samples if s["instance"] == instance), key=lambda s: s["t_ms"])
    used, peak = 0.0, 0.0
    for i, s in enumerate(rows):
        if not (t0_ms <= s["t_ms"] <= t1_ms):
            continue
        if i > 0 and rows[i - 1]["pid"] == s["pid"]:
            used += max(0.0, s["cpu_s"] - rows[i - 1]["cpu_s"])
        # The 1 s ending here, within one process.
        back = [r for r in rows[: i + 1] if r["pid"] == s["pid"] and r["t_ms"] >= s["t_ms"] - 1000]
        if len(back) >= 2 and back[-1]["t_ms"] > back[0]["t_ms"]:
            span = (back[-1]["t_ms"] - back[0]["t_ms"]) / 1000
            peak = max(peak, (back[-1]["cpu_s"] - back[0]["cpu_s"]) / span * 100)
    return round(peak), round(used, 2)


def analyse(report, timeline, transport):
    """The cell's figures, from loadgen's report and storm timeline."""
    r = report["transports"][transport]
    chaos = r.get("chaos") or {}
    marks = timeline["marks"]
    first = min((m["t_ms"] for m in marks if m["what"] in ("sigkill", "sigterm")), default=None)
    start_ms = timeline["publish_start_ms"]
    kill_ms = first if first is not None else start_ms
    back_s = chaos.get("window_end_s", 0) - chaos.get("kill_at_s", 0)
    end_ms = kill_ms + int(back_s * 1000) + 1000
    per = {}
    for inst in range(len(timeline["instances"])):
        counts = [c for c in timeline["counts"] if c["instance"] == inst and c["t_ms"] + 100 > kill_ms]
        attempts = {c["t_ms"]: c["attempts"] for c in counts}
        peak_cpu, cpu_s = cpu_profile(timeline["cpu"], inst, kill_ms, end_ms)
        restarted = [m["t_ms"] for m in marks if m["instance"] == inst and m["what"] == "listening"]
        per[inst] = {
            "attempts": sum(attempts.values()),
            "peak_attempts_per_s": windows(attempts, 10),
            "refused_503": sum(c["refused"] for c in counts),
            "peak_cpu_percent": peak_cpu,
            "cpu_s_during_storm": cpu_s,
            "restarted": bool(restarted),
        }
    up = sum(c["up"] for c in timeline["counts"])
    down = sum(c["down"] for c in timeline["counts"])
    latency = chaos.get("latency_outage_us") or {}
    outside = chaos.get("latency_outside_us") or {}
    reconnect = r.get("reconnect_us") or {}
    return {
        "clients": r["clients"],
        "connected_at_end": up - down,
        "all_back": up - down == r["clients"],
        "all_back_after_s": round(back_s, 2),
        "disconnects": r["disconnects"],
        "reconnect_p50_s": round(reconnect.get("p50", 0) / 1e6, 2),
        "reconnect_p99_s": round(reconnect.get("p99", 0) / 1e6, 2),
        "reconnect_max_s": round(reconnect.get("max", 0) / 1e6, 2),
        "refused_503": r["errors"].get("http_503", 0),
        "errors": r["errors"],
        "storm_latency_p99_ms": round(latency.get("p99", 0) / 1e3, 1),
        "storm_latency_count": latency.get("count", 0),
        "outside_latency_p99_ms": round(outside.get("p99", 0) / 1e3, 1),
        "events_published": r["events_published"],
        "lost": r["lost"],
        "duplicated": r["duplicates"],
        "restart_error": chaos.get("restart_error"),
        "instances": per,
    }


def spread(values, fmt):
    """median [min–max] of a figure over the repeats (just the value with one repeat)."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return fmt(med)
    return f"{fmt(med)} [{fmt(min(values))}–{fmt(max(values))}]"


def table(cells, a):
    """The before/after table: one row per storm, transport and variant, figures over repeats."""
    groups = {}
    for c in cells:
        key = (c["scenario"], c["transport"], c["variant"])
        groups.setdefault(key, []).append(c["figures"])
    s1 = lambda v: f"{v:.1f} s"  # noqa: E731
    s2 = lambda v: f"{v:.2f} s"  # noqa: E731
    n0 = lambda v: f"{v:,.0f}"  # noqa: E731
    pc = lambda v: f"{v:.0f}%"  # noqa: E731
    ms = lambda v: f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms"  # noqa: E731
    lines = [
        "| storm | transport | defences | every client back after | reconnect p50 / p99 | "
        "attempts/s, peak: instance 0 / 1 | CPU, peak 1 s: instance 0 / 1 | 503s after the kill | "
        "p99 during the storm (outside) | lost / duplicated |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "before")  # noqa: E731
    for (scenario, transport, variant), figs in sorted(groups.items(), key=order):
        def inst(i, key, fmt):
            return spread([f["instances"][str(i)][key] if str(i) in f["instances"] else f["instances"][i][key] for f in figs], fmt)

        back = spread([f["all_back_after_s"] for f in figs], s1)
        if not all(f["all_back"] for f in figs):
            back += " (not all back)"
        lines.append(
            "| {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} | {} ({}) | {} / {} |".format(
                scenario,
                transport,
                variant,
                back,
                spread([f["reconnect_p50_s"] for f in figs], s2),
                spread([f["reconnect_p99_s"] for f in figs], s2),
                inst(0, "peak_attempts_per_s", n0),
                inst(1, "peak_attempts_per_s", n0),
                inst(0, "peak_cpu_percent", pc),
                inst(1, "peak_cpu_percent", pc),
                spread([sum(i["refused_503"] for i in f["instances"].values()) for f in figs], n0),
                spread([f["storm_latency_p99_ms"] for f in figs], ms),
                spread([f["outside_latency_p99_ms"] for f in figs], ms),
                sum(f["lost"] for f in figs),
                sum(f["duplicated"] for f in figs),
            )
        )
    return "\n".join(lines)


def write_readme(a, cells, meta):
    out = a.out
    after = " ".join(after_args(a))
    text = f"""# The reconnect storm, before and after its defences

{a.clients:,} clients of one transport on two server instances sharing one Redis, on loopback,
coming back as browsers do (`loadgen --reconnect {a.reconnect}`). Generated by
`scripts/storm/bench.py`; the book's page is `docs/src/results/storm.md`.

- **Command**: `{meta['command']}` ({meta['elapsed_s'] / 60:.1f} min)
- **When**: {meta['started']} to {meta['finished']}
- **Commit**: {meta['commit']}
- **Machine**: {meta['machine']}
- **Conditions**: {a.conditions}
- **Repeats**: {a.repeats}, interleaved (every cell, then every cell again); a figure is the
  median [min–max] over them.

**Before** (the defences off): `{' '.join(BEFORE)}`.
**After**: `{after}`.

Every cell: `loadgen --spawn 2 --redis (this run's own redis-server) --clients {a.clients}
--rate {a.rate} --chaos STORM --chaos-at {CHAOS_AT} --chaos-outage {PAUSE} --reconnect {a.reconnect}
--storm-timeline …`, release build; each cell's exact command is in its `cell.json`.

{table(cells, a)}

How to read it:

- *every client back after*: from the kill (or the first SIGTERM) to the last client's next
  subscription, which resumes it from its last seq (`Last-Event-ID`, `since=`) (loadgen's
  outage window). Lost and duplicated are then checked over the whole phase.
- *reconnect p50 / p99*: from the moment a client saw its connection fail to its next
  subscription, over every client that reconnected.
- *attempts/s, peak*: connection attempts each instance received in its busiest second after
  the kill (or the first SIGTERM), counted by the clients (a SYN the kernel dropped and resent is
  one attempt). Instance 0 is the one killed (kill-one) or restarted first (rolling-restart,
  which then takes every client when instance 1 goes); instance 1 the survivor, or restarted
  second. *CPU, peak 1 s*: each instance's busiest second of CPU after the kill (100% is one
  core; the machine's two are shared with loadgen and the other instance).
- *503s after the kill*: refusals past `--max-new-connections-per-sec` the clients received
  from the kill on (the initial ramp of 10,000 connections meets the limit too; those are in
  each cell's report, not here).
- *p99 during the storm*: delivery latency of the events in flight between the kill and the last
  client back, from each event's scheduled publish time (so an event the publisher could not
  send meanwhile carries that wait); *outside* is the rest of the phase.

Per cell (`runs/STORM-TRANSPORT-VARIANT-rN/`): `report.json` and `report.md` (loadgen's report;
its Resilience table), `timeline.jsonl` (the storm timeline: per 100 ms and per instance
attempts, subscriptions, lost connections and refusals; CPU samples; the marks of SIGKILL,
SIGTERM, exit and restart), `figures.json` (what this table is made of) and `cell.json` (the
command). `summary.json` holds every cell's figures.
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--transports", default="sse,ws", help="comma-separated: sse, ws, long-poll, short-poll")
    p.add_argument("--storms", default="kill-one,rolling-restart")
    p.add_argument("--variants", default="before,after")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--rate", type=float, default=5, help="events per second published")
    p.add_argument("--reconnect", default="browser", help="loadgen --reconnect: browser or app")
    p.add_argument("--retry-min", default="1s")
    p.add_argument("--retry-max", default="5s")
    p.add_argument("--new-per-sec", type=int, default=2500, help="after: --max-new-connections-per-sec")
    p.add_argument("--retry-after-min", type=int, default=1)
    p.add_argument("--retry-after-max", type=int, default=10)
    p.add_argument("--drain", default="4s", help="after: --shutdown-drain")
    p.add_argument("--grace", default="5s", help="after: --shutdown-grace")
    p.add_argument("--loadgen", default=os.path.join(ROOT, "target", "release", "loadgen"))
    p.add_argument("--server", default=os.path.join(ROOT, "target", "release", "server"))
    p.add_argument("--out", default=os.path.join(ROOT, "results", "storm"))
    p.add_argument("--conditions", default="this 2-core machine, loopback; measured while other builds ran")
    p.add_argument("--quick", action="store_true", help="300 clients, 1 repeat, shorter storms")
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.clients = min(a.clients, 300)
        a.repeats = 1
    cells = [
        (storm, transport, variant, r)
        for r in range(1, a.repeats + 1)
        for storm in a.storms.split(",")
        for transport in a.transports.split(",")
        for variant in a.variants.split(",")
    ]
    durations = QUICK_DURATION if a.quick else DURATION
    estimate = sum(durations[c[0]] + 12 for c in cells)
    print(f"{len(cells)} cells, about {estimate / 60:.0f} min", file=sys.stderr)
    if a.dry_run:
        for c in cells:
            print(shlex.join(loadgen_command(a, c, 0, os.path.join(a.out, "runs", "-".join(map(str, c))))))
        return
    for exe in (a.loadgen, a.server):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} is missing: cargo build --release -p server -p loadgen")
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)
    meta = {
        "command": shlex.join(["python3", "scripts/storm/bench.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "commit": commit(),
        "machine": machine(),
    }
    t0 = time.time()
    redis, port = start_redis()
    proc = None
    done = []
    try:
        for n, cell in enumerate(cells, 1):
            storm, transport, variant, repeat = cell
            name = f"{storm}-{transport}-{variant}-r{repeat}"
            out_dir = os.path.join(a.out, "runs", name)
            os.makedirs(out_dir, exist_ok=True)
            for stale in ("timeline.jsonl",):
                if os.path.exists(os.path.join(out_dir, stale)):
                    os.remove(os.path.join(out_dir, stale))
            cmd = loadgen_command(a, cell, port, out_dir)
            print(f"[{n}/{len(cells)}] {name}", file=sys.stderr, flush=True)
            started = time.time()
            with open(os.path.join(out_dir, "loadgen.log"), "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
                try:
                    proc.wait(timeout=durations[storm] + 180)
                except subprocess.TimeoutExpired:
                    print(f"  {name}: loadgen took too long; stopped", file=sys.stderr)
                stop(proc, 20)
            if proc.returncode != 0:
                sys.exit(f"{name}: loadgen failed ({proc.returncode}); see {out_dir}/loadgen.log")
            proc = None
            with open(os.path.join(out_dir, "report.json")) as f:
                report = json.load(f)
            with open(os.path.join(out_dir, "timeline.jsonl")) as f:
                timeline = json.loads(f.read().splitlines()[-1])
            figures = analyse(report, timeline, transport)
            shown = [json.dumps(cmd[0].replace(ROOT + "/", ""))] + [shlex.quote(c.replace(ROOT + "/", "")) for c in cmd[1:]]
            with open(os.path.join(out_dir, "cell.json"), "w") as f:
                json.dump({"storm": storm, "transport": transport, "variant": variant, "repeat": repeat,
                           "command": " ".join(shown).replace(f"redis://127.0.0.1:{port}", "redis://127.0.0.1:$PORT"),
                           "seconds": round(time.time() - started, 1)}, f, indent=2)
            with open(os.path.join(out_dir, "figures.json"), "w") as f:
                json.dump(figures, f, indent=2)
            # The report's HTML and charts are not needed here (report.md says the same).
            for extra in os.listdir(out_dir):
                if extra.endswith((".html", ".svg")) or (extra.startswith("server") and extra.endswith(".log") and os.path.getsize(os.path.join(out_dir, extra)) == 0):
                    os.remove(os.path.join(out_dir, extra))
            done.append({"scenario": storm, "transport": transport, "variant": variant, "repeat": repeat, "figures": figures})
            took = figures["instances"]
            print(
                f"  back after {figures['all_back_after_s']} s, all back {figures['all_back']}, "
                f"503 {figures['refused_503']}, lost {figures['lost']}, dup {figures['duplicated']}, "
                f"peak attempts/s {[i['peak_attempts_per_s'] for i in took.values()]}, "
                f"peak cpu {[i['peak_cpu_percent'] for i in took.values()]}%",
                file=sys.stderr,
                flush=True,
            )
    except KeyboardInterrupt:
        print("interrupted: stopping loadgen and redis-server", file=sys.stderr)
        raise
    finally:
        stop(proc, 20)
        stop(redis, 5)
        if done:
            meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            meta["elapsed_s"] = round(time.time() - t0)
            with open(os.path.join(a.out, "summary.json"), "w") as f:
                json.dump({"meta": meta, "before": BEFORE, "after": after_args(a), "clients": a.clients,
                           "cells": done}, f, indent=2)
            write_readme(a, done, meta)
    bad = [c for c in done if c["figures"]["lost"] or c["figures"]["duplicated"] or not c["figures"]["all_back"]]
    if bad:
        print(f"{len(bad)} cell(s) lost or duplicated events, or left clients out", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
