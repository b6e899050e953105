#!/usr/bin/env python3
"""Capacity at a latency target: how many clients each server holds, per transport and event
rate, before p99 delivery latency passes a target.

Why: "how many connections per server at my latency target?" is the question teams ask, and
CPU per delivery at fixed cells does not answer it. For each server, transport, event rate and
repeat, this steps the client count up (from --start, x --factor a step, up to --max-clients)
with the server pinned to one core (taskset -c 0) and loadgen on the other (taskset -c 1).
Each step is one loadgen run against the running server: connect every client, publish for
--warmup + --measure seconds, and measure only what was published after the warm-up
(`loadgen --slo-out --slo-warmup`): latency per delivery, and per publish the time until the
*last* subscriber had it. A step passes a target when every event reached every client (no
loss, no gap) and its per-delivery p99 is within the target; the sweep stops at the first step
that fails the largest target. The knee for a target is the last step of the unbroken run of
passing steps; the table gives the median of the repeats with their range.

Loadgen must not be the bottleneck: every step records loadgen's own CPU over the measured
window (a step where it passed --loadgen-cpu-limit of its core is flagged, and its knee is
not trusted), and the floor (feedlab's framework-free lower bound) runs the same steps as a
control: where a server misses the target at a step the floor passes, loadgen was able to
serve that step.

Servers: `server` and `floor` (target/release), `nchan` (deploy/nchan.conf, as
scripts/fanout/bench.py), and the peers of scripts/peers/peers.py (pushpin, socketio,
node-http); each only on the transports it serves. Server CPU and memory are summed
over every process of the server (Pushpin is several). Within a (transport, rate, repeat) the
servers run back to back in an order that rotates each repeat.

    cargo build --release -p loadgen -p server -p floor
    python3 scripts/capacity/capacity.py --dry-run        # the plan and its time budget
    python3 scripts/capacity/capacity.py                  # everything (see --dry-run: hours)
    python3 scripts/capacity/capacity.py --sections ws    # one transport (sections: transports)
    python3 scripts/capacity/capacity.py --quick          # a bounded run: ws and sse, 20/s, 1 repeat

Results go to --out (default results/capacity/): results.json (every step), README.md (knees,
conditions, the command), one SVG chart per transport and rate with every server on it.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fanout"))
sys.path.insert(0, str(ROOT / "scripts" / "peers"))
import bench  # noqa: E402  (scripts/fanout/bench.py: processes, nchan, machine info, charts)
import peers  # noqa: E402  (scripts/peers/peers.py: the production peers)

SCHEMA = "feedlab-capacity/1"
TRANSPORTS = ("ws", "sse", "long-poll", "short-poll")
FEEDLAB_SERVERS = ("server", "floor", "nchan")
ALL_SERVERS = FEEDLAB_SERVERS + tuple(peers.PEERS)
SERVER_CPU, LOADGEN_CPU = "0", "1"
SAMPLE_S = 0.2
COLORS = {"server": "#1f77b4", "floor": "#7f7f7f", "nchan": "#d62728", "pushpin": "#2ca02c",
          "socketio": "#9467bd", "node-http": "#8c564b"}
# What each feedlab-protocol server serves (the peers say for themselves).
SERVES = {"server": TRANSPORTS, "floor": TRANSPORTS, "nchan": TRANSPORTS}

FULL = dict(servers=",".join(ALL_SERVERS), transports="ws,sse,long-poll", rates="1,20",
            targets_ms="100,500", repeats=3, start=1000, factor=1.25, max_clients=19000,
            warmup=5.0, measure=20.0)
QUICK = dict(FULL, transports="ws,sse", rates="20", repeats=1, max_clients=4000,
             warmup=2.0, measure=6.0)


def sample_tree(pids: list[int]) -> tuple[int, int]:
    """(utime + stime ticks, RSS KiB) summed over `pids` (gone ones count 0)."""
    ticks = rss = 0
    for p in pids:
        try:
            u, s, _ = bench.proc_stat(p)
            ticks += u + s
            rss += bench.proc_rss_kib(p)
        except (OSError, ValueError, IndexError):
            pass
    return ticks, rss


class Sampler(threading.Thread):
    """Every SAMPLE_S: (t, server ticks, server RSS KiB, loadgen ticks)."""

    def __init__(self, server_pids: list[int], loadgen_pid: int):
        super().__init__(daemon=True)
        self.server_pids, self.lg = server_pids, loadgen_pid
        self.samples: list[tuple[float, int, int, int]] = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            st, rss = sample_tree(self.server_pids)
            lt, _ = sample_tree([self.lg])
            self.samples.append((time.monotonic(), st, rss, lt))
            self.halt.wait(SAMPLE_S)

    def stop(self):
        self.halt.set()
        self.join(timeout=5)

    def at(self, t: float) -> tuple:
        s = self.samples
        if not s:
            return (t, 0, 0, 0)
        if t <= s[0][0]:
            return s[0]
        for a, b in zip(s, s[1:]):
            if a[0] <= t <= b[0]:
                f = (t - a[0]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
                return tuple(x + (y - x) * f for x, y in zip(a, b))
        return s[-1]


def pin(pids: list[int], cpu: str):
    """Pins every thread of every process in `pids` to `cpu` (nginx, started by bench.py
    without taskset)."""
    for p in pids:
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                os.sched_setaffinity(int(tid), {int(cpu)})
        except OSError:
            pass


class Server:
    """One running server of the sweep: its address, every pid, and how loadgen drives it."""

    def __init__(self, name: str, run: "Capacity", log: Path):
        self.name = name
        self.running = None
        self.proc = None
        wrap = ["taskset", "-c", SERVER_CPU]
        if name in peers.PEERS:
            self.running = peers.start(peers.PEERS[name], log, popen=bench.CHILDREN.start, wrap=wrap)
            self.addr = self.running.addr
            self.proc = self.running.proc
            self.lg_args = self.running.loadgen_args()
        else:
            v = run.variants[name]
            self.proc, self.addr, _ = bench.start_variant(v, "1", log, run.work, wrap=wrap)
            self.lg_args = ["--target", "nchan"] if v.is_nchan else []
        self.pids = peers.tree(self.proc.pid)
        pin(self.pids, SERVER_CPU)

    def stats(self) -> dict | None:
        return self.running.stats() if self.running else None

    def stop(self):
        if self.running:
            self.running.stop()
        bench.CHILDREN.stop(self.proc)


class Capacity:
    def __init__(self, o: argparse.Namespace):
        self.o = o
        self.work = Path(tempfile.mkdtemp(prefix="feedlab-capacity-"))
        self.loadgen = ROOT / "target" / "release" / "loadgen"
        self.variants = {}
        self.steps: list[dict] = []
        self.problems: dict[str, str] = {}
        self.t0 = time.monotonic()

    def serves(self, server: str) -> tuple[str, ...]:
        return peers.PEERS[server].transports if server in peers.PEERS else SERVES[server]

    def preflight(self):
        feedlab = [s for s in self.o.servers if s in FEEDLAB_SERVERS]
        if feedlab:
            vs = bench.parse_variants(",".join(feedlab), ROOT / "target" / "release")
            bench.preflight(vs, ["1"], self.work)
            for v in vs:
                self.variants[v.label] = v
                if not v.available:
                    self.problems[v.label] = v.problem
        for s in self.o.servers:
            if s in peers.PEERS:
                try:
                    done = peers.ensure(peers.PEERS[s])
                    if done:
                        print(f"{s}: {done}")
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    self.problems[s] = str(e)[:300]
        if not self.loadgen.exists():
            raise SystemExit(f"{self.loadgen} does not exist: cargo build --release -p loadgen")

    def available(self) -> list[str]:
        return [s for s in self.o.servers if s not in self.problems]

    def ladder(self) -> list[int]:
        out, n = [], float(self.o.start)
        while round(n) <= self.o.max_clients:
            out.append(int(round(n)))
            n *= self.o.factor
        return out

    def plan(self) -> list[tuple[str, float, int, str]]:
        out = []
        for transport in self.o.transports:
            for rate in self.o.rates:
                servers = [s for s in self.available() if transport in self.serves(s)]
                for repeat in range(1, self.o.repeats + 1):
                    shift = (repeat - 1) % max(1, len(servers))
                    for s in servers[shift:] + servers[:shift]:
                        out.append((transport, rate, repeat, s))
        return out

    def step_s(self, clients: int) -> float:
        # Connecting (about 2,000 a second here), the phase, the drain, start-up and settling.
        return clients / 2000 + self.o.warmup + self.o.measure + 1.0 + 3.0

    def budget_s(self) -> float:
        """The worst case: every sweep climbs the whole ladder."""
        per_sweep = sum(self.step_s(c) for c in self.ladder())
        return per_sweep * len(self.plan())

    def run_step(self, server: Server, transport: str, rate: float, repeat: int, clients: int) -> dict:
        tag = f"{transport}-{rate:g}-{repeat}-{server.name}-{clients}"
        out_dir = self.work / tag
        slo = self.work / f"{tag}.slo.jsonl"
        duration = self.o.warmup + self.o.measure
        cmd = [
            "taskset", "-c", LOADGEN_CPU, str(self.loadgen), "--url", f"http://{server.addr}/",
            *server.lg_args, "--transports", transport, "--http", "1.1", "--clients", str(clients),
            "--rate", f"{rate:g}", "--duration", f"{duration:g}s", "--drain", "1s",
            "--ready-timeout", "60s", "--repeat", "1", "--seed", "1", "--payload-bytes", "100",
            "--slo-out", str(slo), "--slo-warmup", f"{self.o.warmup:g}s", "--out", str(out_dir), "--quiet",
        ]
        if transport == "short-poll":
            cmd += ["--poll-interval", "100ms"]
        r = {"server": server.name, "transport": transport, "rate": rate, "repeat": repeat,
             "clients": clients, "loadgen_command": ["loadgen", *cmd[4:]], "problems": []}
        with open(self.work / f"{tag}.loadgen.log", "w") as log:
            lg = bench.CHILDREN.start(cmd, stdout=log, stderr=subprocess.STDOUT)
        t_lg = time.monotonic()
        sampler = Sampler(server.pids, lg.pid)
        sampler.start()
        try:
            lg.wait(timeout=60 + duration + 60)
        except subprocess.TimeoutExpired:
            r["problems"].append("loadgen did not finish in time and was stopped")
            bench.CHILDREN.stop(lg, signal.SIGINT, timeout=15)
        r["loadgen_rc"] = lg.returncode
        bench.CHILDREN.stop(lg)
        sampler.stop()
        try:
            report = json.loads((out_dir / "report.json").read_text())
            tr = report["transports"][transport]
            line = json.loads(slo.read_text().splitlines()[-1])
        except (OSError, KeyError, ValueError, IndexError) as e:
            r["problems"].append(f"no loadgen report ({e})")
            r["ok"] = False
            return r
        r["delivery_us"], r["publish_us"] = line["delivery_us"], line["publish_us"]
        r["measured"] = {"deliveries": line["deliveries"], "publishes": line["publishes"]}
        for k in ("events_published", "events_expected", "events_received", "gaps", "duplicates",
                  "connect_s", "publish_s", "errors", "bytes_per_event"):
            r[k] = tr.get(k)
        # The measured window: after connecting and the warm-up, for --measure seconds.
        start = t_lg + (tr.get("connect_s") or 0) + 0.1 + self.o.warmup
        end = start + self.o.measure
        a, b = sampler.at(start), sampler.at(end)
        length = max(end - start, 1e-9)
        r["server_cores"] = round((b[1] - a[1]) / bench.CLK_TCK / length, 3)
        r["loadgen_cores"] = round((b[3] - a[3]) / bench.CLK_TCK / length, 3)
        r["server_rss_kib"] = round(b[2])
        stats = server.stats()
        if stats is not None:
            r["peer_stats"] = {k: stats.get(k) for k in ("drops", "published", "subscribers")}
        lost = (r["events_received"] or 0) < (r["events_expected"] or 0) or r["gaps"]
        if lost:
            r["problems"].append(f"received {r['events_received']} of {r['events_expected']} ({r['gaps']} gaps)")
        if r["errors"]:
            r["problems"].append(f"client errors: {r['errors']}")
        if r["loadgen_cores"] > self.o.loadgen_cpu_limit:
            r["problems"].append(f"loadgen used {r['loadgen_cores']:.2f} of its core (limit {self.o.loadgen_cpu_limit})")
        r["delivered"] = not lost
        r["loadgen_ok"] = r["loadgen_cores"] <= self.o.loadgen_cpu_limit
        r["ok"] = r["delivered"] and r["loadgen_rc"] == 0
        return r

    def sweep(self, transport: str, rate: float, repeat: int, name: str):
        top = max(self.o.targets_ms) * 1000
        try:
            server = Server(name, self, self.work / f"{transport}-{rate:g}-{repeat}-{name}.server.log")
        except (RuntimeError, OSError) as e:
            self.log(f"{name}: did not start: {str(e).splitlines()[0][:300]}")
            self.steps.append({"server": name, "transport": transport, "rate": rate, "repeat": repeat,
                               "clients": None, "ok": False, "problems": [f"did not start: {e}"[:500]]})
            return
        try:
            for clients in self.ladder():
                if self.o.budget_min and time.monotonic() - self.t0 > self.o.budget_min * 60:
                    self.log("time budget spent: stopping")
                    return
                r = self.run_step(server, transport, rate, repeat, clients)
                self.steps.append(r)
                p99 = (r.get("delivery_us") or {}).get("p99")
                self.log(
                    f"{transport:10} {rate:>4g}/s r{repeat} {name:9} {clients:>6} clients: "
                    f"p99 {fmt_ms(p99)} (last subscriber p99 {fmt_ms((r.get('publish_us') or {}).get('p99'))}) "
                    f"server {r.get('server_cores', 0):.2f} cores, loadgen {r.get('loadgen_cores', 0):.2f}"
                    + (f"  [{'; '.join(r['problems'])}]" if r["problems"] else "")
                )
                if not r["ok"] or p99 is None or p99 > top:
                    return
                time.sleep(self.o.pause)
        finally:
            server.stop()

    def log(self, line: str):
        t = time.monotonic() - self.t0
        print(f"[{int(t // 60):3d}:{int(t % 60):02d}] {line}", flush=True)


def fmt_ms(us) -> str:
    return "-" if us is None else f"{us / 1000:.1f} ms"


def knee(steps: list[dict], target_us: float) -> int | None:
    """The last step of the unbroken run of steps that delivered everything within target."""
    best = None
    for r in sorted((s for s in steps if s.get("clients")), key=lambda s: s["clients"]):
        p99 = (r.get("delivery_us") or {}).get("p99")
        if not r.get("ok") or p99 is None or p99 > target_us:
            break
        best = r["clients"]
    return best


def knees(doc: dict) -> list[dict]:
    rows = []
    groups: dict[tuple, list[dict]] = {}
    for s in doc["steps"]:
        groups.setdefault((s["transport"], s["rate"], s["server"]), []).append(s)
    for (transport, rate, server), steps in sorted(groups.items()):
        for target in doc["settings"]["targets_ms"]:
            per_repeat = []
            for rep in sorted({s["repeat"] for s in steps}):
                mine = [s for s in steps if s["repeat"] == rep]
                k = knee(mine, target * 1000)
                # Whether loadgen stayed under its limit up to (and one step past) the knee.
                trusted = all(s.get("loadgen_ok", False) for s in mine if s.get("clients") and (k is None or s["clients"] <= k))
                per_repeat.append({"repeat": rep, "knee": k, "loadgen_ok": trusted,
                                   "top_reached": max((s["clients"] for s in mine if s.get("clients")), default=None)})
            vals = [p["knee"] or 0 for p in per_repeat]
            rows.append({"transport": transport, "rate": rate, "server": server, "target_ms": target,
                         "repeats": per_repeat, "median": bench.median(vals) if vals else None,
                         "min": min(vals) if vals else None, "max": max(vals) if vals else None})
    return rows


def charts(doc: dict, out: Path) -> list[str]:
    names = []
    steps = [s for s in doc["steps"] if s.get("delivery_us")]
    for transport in doc["settings"]["transports"]:
        for rate in doc["settings"]["rates"]:
            series = []
            for server in doc["settings"]["servers"]:
                mine = [s for s in steps if s["transport"] == transport and s["rate"] == rate and s["server"] == server]
                by_clients: dict[int, list[float]] = {}
                for s in mine:
                    by_clients.setdefault(s["clients"], []).append(s["delivery_us"]["p99"] / 1000)
                if by_clients:
                    series.append({"name": server, "color": COLORS.get(server, "#000"), "dash": "",
                                   "points": [(c, bench.median(v)) for c, v in sorted(by_clients.items())]})
            if not series:
                continue
            svg = bench.line_chart(
                f"{transport} at {rate:g} event/s: p99 delivery latency by clients",
                "clients (log scale)", "p99 per delivery, ms (median of repeats)", series,
                note=f"targets {', '.join(f'{t:g} ms' for t in doc['settings']['targets_ms'])}; {doc['conditions']}",
            )
            name = f"capacity-{transport}-{rate:g}.svg"
            (out / name).write_text(svg)
            names.append(name)
    return names


def write_readme(doc: dict, out: Path, chart_names: list[str]):
    s = doc["settings"]
    lines = [
        "# Capacity at a latency target",
        "",
        f"**{doc['conditions']}.** Written by `scripts/capacity/capacity.py`; every number here is",
        "from `results.json` beside this file.",
        "",
        f"- Command: `{doc['command']}`",
        f"- Commit: `{doc['commit']}`; date: {doc['started_at']}; wall time {doc['wall_s'] / 60:.1f} min",
        f"- Machine: {doc['machine']['cpu_model']}, {doc['machine']['cores']} cores, "
        f"{doc['machine']['memory_gib']} GiB, {doc['machine']['kernel']}; load average at start "
        f"{doc['machine']['loadavg_at_start']}",
        f"- Server pinned to CPU {SERVER_CPU}, loadgen to CPU {LOADGEN_CPU} (taskset); loopback; "
        f"clients from {s['start']:,} x{s['factor']} up to {s['max_clients']:,}; {s['warmup']:g} s warm-up, "
        f"{s['measure']:g} s measured; {s['repeats']} repeat(s); payload 100 bytes; HTTP/1.1",
        f"- A step passes a target when every event reached every client and p99 per delivery is within it; "
        f"loadgen over {s['loadgen_cpu_limit']:.0%} of its core marks the step (and a knee past it) untrusted",
        "",
        "## Knees (clients at the last passing step)",
        "",
    ]
    rows = []
    for k in doc["knees"]:
        reps = ", ".join(
            f"{p['knee'] or 0:,}" + ("" if p["loadgen_ok"] else " (loadgen over its limit)") for p in k["repeats"]
        )
        rows.append([k["transport"], f"{k['rate']:g}/s", f"{k['target_ms']:g} ms", k["server"],
                     f"{k['median']:,.0f}" if k["median"] is not None else "-", reps])
    lines += bench.table(["transport", "rate", "target", "server", "knee (median)", "each repeat"], rows, "llllrl")
    lines += ["", "A knee of 0: the first step already missed the target or lost events. A knee at the top of the",
              "ladder: the server held every step (the ladder stops below the 20,000-file limit per process).", ""]
    lines += ["## Charts", ""] + [f"![{n}]({n})" for n in chart_names] + [""]
    lines += ["## Fairness", ""]
    for name, spec in peers.PEERS.items():
        if name in s["servers"]:
            lines.append(f"- **{name}** (`--target {spec.target}`): {spec.fairness}. Versions: `{json.dumps(doc['versions'].get(name))}`")
    lines += ["- **server**, **floor**: `--workers 1`, `--rate 0`; **nchan**: deploy/nchan.conf, one worker.", ""]
    if doc["problems"]:
        lines += ["## Servers that did not run", ""] + [f"- {k}: {v}" for k, v in doc["problems"].items()] + [""]
    lines += ["## Every step", ""]
    rows = []
    for r in doc["steps"]:
        if not r.get("clients"):
            continue
        rows.append([r["transport"], f"{r['rate']:g}", r["repeat"], r["server"], f"{r['clients']:,}",
                     fmt_ms((r.get("delivery_us") or {}).get("p99")), fmt_ms((r.get("publish_us") or {}).get("p99")),
                     f"{r.get('server_cores', 0):.2f}", f"{r.get('loadgen_cores', 0):.2f}",
                     f"{(r.get('server_rss_kib') or 0) / 1024:.0f}", "; ".join(r.get("problems", [])) or "ok"])
    lines += bench.table(["transport", "rate", "rep", "server", "clients", "p99 delivery", "p99 last subscriber",
                          "server cores", "loadgen cores", "server MiB", "notes"], rows, "lrrlrrrrrrl")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="the bounded run's defaults (see the module doc)")
    ap.add_argument("--servers", help=f"comma-separated, of {', '.join(ALL_SERVERS)}")
    ap.add_argument("--transports", "--sections", dest="transports", help="comma-separated: ws, sse, long-poll, short-poll")
    ap.add_argument("--rates", help="events per second, comma-separated")
    ap.add_argument("--targets-ms", help="p99 targets, ms, comma-separated")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--start", type=int)
    ap.add_argument("--factor", type=float)
    ap.add_argument("--max-clients", type=int)
    ap.add_argument("--warmup", type=float, help="seconds published before measuring")
    ap.add_argument("--measure", type=float, help="seconds measured")
    ap.add_argument("--loadgen-cpu-limit", type=float, default=0.7, help="share of loadgen's core (default 0.7)")
    ap.add_argument("--budget-min", type=float, default=0, help="stop starting steps after this many minutes (0: none)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between steps")
    ap.add_argument("--conditions", default="measured while other builds ran",
                    help="how the machine was: quoted with every figure")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its worst-case time, run nothing")
    ap.add_argument("--render", action="store_true",
                    help="rewrite README.md and the charts from --out's results.json, run nothing")
    o = ap.parse_args(argv)
    base = QUICK if o.quick else FULL
    for k, v in base.items():
        if getattr(o, k, None) is None:
            setattr(o, k, v)
    o.servers = [s for s in str(o.servers).split(",") if s]
    unknown = [s for s in o.servers if s not in ALL_SERVERS]
    if unknown:
        ap.error(f"unknown servers {unknown}")
    o.transports = [t for t in str(o.transports).split(",") if t]
    if any(t not in TRANSPORTS for t in o.transports):
        ap.error(f"transports are {TRANSPORTS}")
    o.rates = [float(x) for x in str(o.rates).split(",")]
    o.targets_ms = sorted(float(x) for x in str(o.targets_ms).split(","))
    o.out = o.out or (Path(tempfile.gettempdir()) / "feedlab-capacity-quick" if o.quick and o.out is None
                      else ROOT / "results" / "capacity")
    return o


def main(argv=None) -> int:
    o = parse_args(argv)
    if o.render:
        doc = json.loads((o.out / "results.json").read_text())
        doc["knees"] = knees(doc)
        (o.out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
        write_readme(doc, o.out, charts(doc, o.out))
        print(f"wrote {o.out}/README.md")
        return 0
    signal.signal(signal.SIGTERM, bench._on_sigterm)
    cap = Capacity(o)
    started = bench.now_utc()
    command = "python3 scripts/capacity/capacity.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        if o.dry_run:
            # What runs if everything is installed (no installs, no servers started).
            print(f"ladder: {', '.join(f'{c:,}' for c in cap.ladder())}")
            print(f"sweeps: {len(cap.plan())}; worst case {cap.budget_s() / 3600:.1f} h"
                  + (f" (stopped at --budget-min {o.budget_min:g})" if o.budget_min else ""))
            for t in o.transports:
                print(f"  {t}: " + ", ".join(s for s in o.servers if t in cap.serves(s)))
            return 0
        cap.preflight()
        cap.log(f"{len(cap.plan())} sweeps; worst case {cap.budget_s() / 3600:.1f} h; problems: {cap.problems or 'none'}")
        for transport, rate, repeat, name in cap.plan():
            cap.sweep(transport, rate, repeat, name)
    except KeyboardInterrupt:
        print("interrupted: writing what ran", file=sys.stderr)
    finally:
        bench.CHILDREN.stop_all()
    o.out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {
        "schema": SCHEMA,
        "command": command,
        "commit": commit,
        "started_at": started,
        "wall_s": round(time.monotonic() - cap.t0, 1),
        "conditions": o.conditions,
        "machine": bench.machine_info(),
        "settings": {k: getattr(o, k) for k in ("servers", "transports", "rates", "targets_ms", "repeats", "start",
                                                 "factor", "max_clients", "warmup", "measure", "loadgen_cpu_limit")},
        "versions": {s: peers.versions(peers.PEERS[s]) for s in o.servers if s in peers.PEERS and s not in cap.problems},
        "problems": cap.problems,
        "steps": cap.steps,
    }
    doc["knees"] = knees(doc)
    (o.out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_readme(doc, o.out, charts(doc, o.out))
    print(f"wrote {o.out}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
