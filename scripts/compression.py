#!/usr/bin/env python3
"""What compression buys and costs: bytes on the wire against server CPU and memory, per
payload kind, transport and server form (issue 15, item 6).

Why this exists: the server compresses in two ways with opposite trade-offs. `shared`
(`--http-gzip=shared --ws-deflate=shared`) compresses each event once into a piece every client
gets (CPU and memory per event); `per-connection` (`--http-gzip=stream --ws-deflate=context`)
runs a compressor per connection (a better ratio, since each event can refer to the ones before
it, but CPU per delivery and a window of memory per connection). Which one wins depends on the
payload and the transport, so this measures both against no compression on the same machine in
the same sitting, and writes the comparison with its spread.

What it runs (loadgen spawns the server each time and stops it; this script stops loadgen by
PID, also on Ctrl-C):

1. Matrix at the reference load: all four transports x 50 clients x 20 events/s, HTTP/1.1,
   3 repeats, per payload kind (tick, chat, metrics; padding as the control). Two loadgen runs
   per kind: `--compression both` against the shared server gives `off` and `shared`,
   interleaved phase by phase; `--compression on` against the per-connection server gives
   `per-connection`. Each run's directory (report.json/md/html) is kept under
   <out>/<kind>/off-and-shared/ and <out>/<kind>/per-connection/.
2. Memory: SSE and WebSocket, 10,000 clients (one transport per run: the hard open-file limit
   is 20,000 per process and each connection has an end on each side), 1 event/s so every
   connection holds what its compressor keeps, chat payload, each form on a fresh server (a
   server reused across phases would hand the later phases memory the earlier ones freed).
   Server RSS growth per connection and CPU per delivery, from loadgen's report. The
   per-connection form holds a compressor per connection (about 320 KiB each in --quick on
   this machine), so its 10,000-connection runs need about 3 GiB free for the server.
3. README.md: the commands, versions, machine; a table per payload kind; the memory table;
   SVG charts (bytes per event against server CPU per delivery, error bars from the ranges);
   and "what it says", computed from the numbers. results.json holds every figure per run.

A server flag the server's --help does not list (an older build) is left out and named in the
README: that form's transport then gets whatever the server answers.

    cargo build --release -p loadgen -p server
    python3 scripts/compression.py --dry-run     # the plan and its estimated time
    python3 scripts/compression.py               # the full run (about 15 min on 2 cores)
    python3 scripts/compression.py --quick       # tiny counts, to $TMPDIR/feedlab-compression-quick/
    python3 scripts/compression.py --self-test   # the table and summary code on canned numbers
    python3 scripts/compression.py --rewrite DIR # README and charts again from DIR/results.json

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import html
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "feedlab-compression/1"

TRANSPORTS = ("short-poll", "long-poll", "sse", "ws")
KINDS = ("tick", "chat", "metrics", "padding")
CONTROL_KIND = "padding"
FORMS = ("off", "shared", "per-connection")
# The server arguments of each form. `off` is also what the shared server does for a client
# that offers nothing, which is how the matrix gets it (one run, `--compression both`).
SERVER_ARGS = {
    "off": ["--http-gzip=off", "--ws-deflate=off"],
    "shared": ["--http-gzip=shared", "--ws-deflate=shared"],
    "per-connection": ["--http-gzip=stream", "--ws-deflate=context"],
}
MEMORY_TRANSPORTS = ("sse", "ws")

# Below this much server CPU in a phase, /proc's 10 ms tick makes CPU per delivery too coarse to
# compare (loadgen's report::spread::CPU_RESOLUTION_S, five ticks).
CPU_RESOLUTION_S = 0.05

FULL = dict(clients=50, rate=20.0, duration=3.0, repeats=3, kinds=list(KINDS),
            memory_clients=10_000, memory_rate=1.0, memory_duration=3.0, memory_repeats=1)
QUICK = dict(clients=10, rate=20.0, duration=1.0, repeats=1, kinds=list(KINDS),
             memory_clients=1_000, memory_rate=1.0, memory_duration=2.0, memory_repeats=1)

# Time model of the estimate, seconds (measured on a 2-core machine, see --quick's timing):
# a loadgen start with its server, a phase's set-up and teardown beyond publish and drain, and
# connecting (and closing) one client of the memory section.
START_S = 1.5
PHASE_OVERHEAD_S = 0.7
MEMORY_S_PER_CLIENT = 0.0008
# A loadgen run taking this many times its estimate (plus a minute) is stopped.
TIMEOUT_FACTOR = 4.0
STOP_TIMEOUT_S = 15.0


# ---------------------------------------------------------------------------------------------
# Numbers


def spread(values: list[float | None]) -> dict | None:
    """Median and range over runs, or None when any run did not measure it (as loadgen's report:
    a figure some run could not measure has no honest range).

    >>> spread([3.0, 1.0, 2.0])
    {'median': 2.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    >>> spread([1.0, None]) is None, spread([]) is None
    (True, True)
    """
    if not values or any(v is None for v in values):
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def overlap(a: dict | None, b: dict | None) -> bool:
    """Whether two spreads' ranges overlap (then their difference is within the spread).

    >>> overlap({"min": 1, "max": 2}, {"min": 2, "max": 3}), overlap({"min": 1, "max": 2}, {"min": 2.5, "max": 3})
    (True, False)
    """
    return a is None or b is None or not (a["max"] < b["min"] or b["max"] < a["min"])


def fmt_bytes(v: float) -> str:
    """
    >>> fmt_bytes(87.4), fmt_bytes(2048)
    ('87 B', '2.0 KiB')
    """
    if v < 1024:
        return f"{v:.0f} B"
    if v < 1024 * 1024:
        return f"{v / 1024:.1f} KiB"
    return f"{v / 1024 / 1024:.1f} MiB"


def fmt_num(v: float) -> str:
    """Three significant digits, no exponent.

    >>> fmt_num(12.345), fmt_num(0.01234), fmt_num(1234.5)
    ('12.3', '0.0123', '1,234')
    """
    if float(v).is_integer():
        return f"{int(v):,}"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    digits = max(0, 2 - int(f"{a:e}".split("e")[1]))
    return f"{v:.{digits}f}"


def fmt_us(v: float) -> str:
    return f"{fmt_num(v)} µs"


def fmt_ms(v: float) -> str:
    """Latency in µs shown as ms.

    >>> fmt_ms(1530)
    '1.53 ms'
    """
    return f"{fmt_num(v / 1000)} ms"


def show(s: dict | None, fmt) -> str:
    """`median [min–max]`, or the median alone from one run.

    >>> show(spread([1.0, 2.0, 4.0]), fmt_num)
    '2 [1–4]'
    >>> show(spread([5.0]), fmt_num), show(None, fmt_num)
    ('5', '–')
    """
    if s is None:
        return "–"
    if s["n"] == 1:
        return fmt(s["median"])
    return f"{fmt(s['median'])} [{fmt(s['min'])}–{fmt(s['max'])}]"


def percent_change(new: float, old: float) -> str:
    """
    >>> percent_change(45, 100), percent_change(130, 100)
    ('−55%', '+30%')
    """
    p = (new - old) / old * 100
    return f"{'−' if p < 0 else '+'}{abs(p):.0f}%"


# ---------------------------------------------------------------------------------------------
# Reading loadgen's report


def phase_figures(p: dict) -> dict:
    """The figures of one phase (one transport, one repeat) this script compares."""
    c = p.get("compression") or {}
    lat = p.get("latency_us") or {}
    has_lat = (lat.get("count") or 0) > 0
    return {
        "transport": p["transport"],
        "repeat": p.get("repeat"),
        "offered": bool(c.get("offered")),
        "answers": c.get("answers") or {},
        "events_received": p.get("events_received"),
        "lost": p.get("lost"),
        "gaps": p.get("gaps"),
        "bytes_per_event": p.get("bytes_per_event"),
        "decoded_bytes_per_event": c.get("decoded_bytes_per_event"),
        "ratio": c.get("ratio"),
        "server_ratio": c.get("server_ratio"),
        "server_cpu_s": p.get("server_cpu_s"),
        "server_cpu_us_per_event": p.get("server_cpu_us_per_event"),
        "server_rss_per_connection_bytes": p.get("server_rss_per_connection_bytes"),
        "decode_cpu_us_per_event": c.get("decode_cpu_us_per_event"),
        "decode_cpu_covers": c.get("decode_cpu_covers"),
        "p50_us": lat.get("p50") if has_lat else None,
        "p99_us": lat.get("p99") if has_lat else None,
    }


METRICS = ("bytes_per_event", "ratio", "server_cpu_us_per_event", "server_rss_per_connection_bytes",
           "decode_cpu_us_per_event", "p50_us", "p99_us")


def aggregate(runs: list[dict]) -> dict:
    """One cell (kind, transport, form) over its runs: a spread per metric, the answers summed,
    whether any run's server CPU was under the clock's resolution, lost events summed.

    >>> a = aggregate([{"bytes_per_event": 100.0, "server_cpu_s": 0.2, "answers": {"gzip": 3}, "lost": 0},
    ...                {"bytes_per_event": 120.0, "server_cpu_s": 0.01, "answers": {"gzip": 2}, "lost": 1}])
    >>> a["bytes_per_event"]["median"], a["answers"], a["cpu_coarse"], a["lost"]
    (110.0, {'gzip': 5}, True, 1)
    """
    out = {m: spread([r.get(m) for r in runs]) for m in METRICS}
    answers: dict[str, int] = {}
    for r in runs:
        for k, v in (r.get("answers") or {}).items():
            answers[k] = answers.get(k, 0) + v
    out["answers"] = answers
    out["cpu_coarse"] = any(r.get("server_cpu_s") is not None and r["server_cpu_s"] < CPU_RESOLUTION_S for r in runs)
    out["lost"] = sum(r.get("lost") or 0 for r in runs)
    out["runs"] = len(runs)
    out["clients"] = runs[0].get("clients") if runs else None
    return out


# ---------------------------------------------------------------------------------------------
# The plan


@dataclasses.dataclass
class Run:
    """One loadgen invocation."""

    section: str  # "matrix" or "memory"
    kind: str
    dir: str  # under --out
    transports: list[str]
    server_form: str  # the form whose server arguments it runs with
    compression: str  # loadgen's --compression
    clients: int
    rate: float
    duration: float
    repeats: int
    # offered (False/True) -> form
    forms: dict

    def phases(self) -> int:
        return len(self.transports) * self.repeats * (2 if self.compression == "both" else 1)

    def estimate_s(self) -> float:
        drain = 2.0 if "short-poll" in self.transports else 1.0
        per_phase = self.duration + drain + PHASE_OVERHEAD_S
        if self.section == "memory":
            per_phase += self.clients * MEMORY_S_PER_CLIENT
        return START_S + self.phases() * per_phase

    def command(self, loadgen: str, server_args: list[str], out: str) -> list[str]:
        cmd = [loadgen, "--transports", ",".join(self.transports), "--clients", str(self.clients),
               "--rate", f"{self.rate:g}", "--duration", f"{self.duration:g}s", "--http", "1.1",
               "--payload", self.kind, "--compression", self.compression, "--repeat", str(self.repeats),
               "--seed", "1", "--quiet", "--out", out]
        return cmd + [f"--server-arg={a}" for a in server_args]


def plan(o) -> list[Run]:
    runs = []
    for kind in o.kinds:
        runs.append(Run("matrix", kind, f"{kind}/off-and-shared", list(o.transports), "shared", "both",
                        o.clients, o.rate, o.duration, o.repeats, {False: "off", True: "shared"}))
        runs.append(Run("matrix", kind, f"{kind}/per-connection", list(o.transports), "per-connection", "on",
                        o.clients, o.rate, o.duration, o.repeats, {True: "per-connection"}))
    if o.memory_clients > 0:
        for t in MEMORY_TRANSPORTS:
            for form in FORMS:
                runs.append(Run("memory", "chat", f"memory/{t}/{form}", [t], form, "off" if form == "off" else "on",
                                o.memory_clients, o.memory_rate, o.memory_duration, o.memory_repeats,
                                {form != "off": form}))
    return runs


def server_flags(server: Path) -> str:
    """The server's --help, to leave out flags it does not have."""
    try:
        return subprocess.run([str(server), "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def supported(args: list[str], help_text: str) -> tuple[list[str], list[str]]:
    """(kept, dropped): each `--flag=value` whose flag the help text lists, and the others.

    >>> supported(["--http-gzip=off", "--ws-deflate=off"], "  --http-gzip <HTTP_GZIP>\\n")
    (['--http-gzip=off'], ['--ws-deflate=off'])
    """
    kept, dropped = [], []
    for a in args:
        flag = a.split("=", 1)[0]
        (kept if f"{flag} " in help_text or f"{flag}=" in help_text or f"{flag}\n" in help_text else dropped).append(a)
    return kept, dropped


# ---------------------------------------------------------------------------------------------
# Running


def _on_sigterm(_sig, _frame):
    raise KeyboardInterrupt("SIGTERM")


def run_loadgen(cmd: list[str], log: Path, timeout: float) -> int:
    """Runs loadgen in a session of its own (Ctrl-C reaches only this script, which stops it by
    PID). loadgen stops the server it spawned on SIGINT and SIGTERM, and the server gets SIGTERM
    from the kernel when loadgen dies anyway (PR_SET_PDEATHSIG, loadgen/src/sys.rs)."""
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"  loadgen (pid {p.pid}) ran past {timeout:.0f} s: stopping it", flush=True)
            stop(p)
            return -1
        except KeyboardInterrupt:
            stop(p)
            raise


def stop(p: subprocess.Popen):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.terminate()
            try:
                p.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def collect(run: Run, report: dict) -> list[dict]:
    """The phases of one run's report, each tagged with its kind and form: in a
    `--compression both` run the phases without compression are `off`, those with it the
    server's form.

    >>> r = plan(parse_args(["--kinds", "chat", "--memory-clients", "0"]))[0]
    >>> phase = {"transport": "sse", "clients": 50, "bytes_per_event": 250.0, "latency_us": {"count": 0},
    ...          "compression": {"offered": False, "answers": {"none": 50}}}
    >>> on = dict(phase, bytes_per_event=170.0, latency_us={"count": 9, "p50": 900, "p99": 2000},
    ...           compression={"offered": True, "answers": {"gzip": 50}, "ratio": 1.4})
    >>> [(f["form"], f["bytes_per_event"], f["p99_us"], f["ratio"]) for f in collect(r, {"phases": [phase, on]})]
    [('off', 250.0, None, None), ('shared', 170.0, 2000, 1.4)]
    """
    out = []
    for p in report.get("phases", []):
        f = phase_figures(p)
        form = run.forms.get(f["offered"])
        if form is None:
            continue
        f.update(kind=run.kind, form=form, section=run.section, clients=p.get("clients"), dir=run.dir)
        out.append(f)
    return out


# ---------------------------------------------------------------------------------------------
# Cells, summary, charts, README


def cells(doc: dict, section: str) -> dict:
    """{(kind, transport, form): aggregate} over every run of the section."""
    groups: dict[tuple, list] = {}
    for r in doc["phases"]:
        if r["section"] == section:
            groups.setdefault((r["kind"], r["transport"], r["form"]), []).append(r)
    return {k: aggregate(v) for k, v in groups.items()}


def beyond(a: dict | None, b: dict | None) -> str:
    """Whether a difference stands out of the spread; one run has none to judge by.

    >>> beyond(spread([1.0, 2.0]), spread([3.0, 4.0])), beyond(spread([1.0]), spread([3.0]))
    ('beyond the spread', 'one run, no spread')
    """
    if a is None or b is None or min(a["n"], b["n"]) < 2:
        return "one run, no spread"
    return "within the spread" if overlap(a, b) else "beyond the spread"


def cpu_phrase(c: dict, off: dict) -> str:
    """Server CPU per delivery of a form against off, as a factor, with its standing."""
    a, b = c.get("server_cpu_us_per_event"), off.get("server_cpu_us_per_event")
    if c["cpu_coarse"] or off["cpu_coarse"]:
        return "CPU under the clock's resolution, not compared"
    if a is None or b is None or b["median"] == 0:
        return "CPU not measured"
    return f"CPU ×{a['median'] / b['median']:.2f} ({beyond(a, b)})"


def summary(doc: dict) -> list[str]:
    """"What it says", from the numbers: per transport and payload kind, the smallest form on
    the wire and by how much against off, and what each compressed form costs in server CPU per
    delivery; per streaming transport, memory per connection against off.

    >>> def cell(b, cpu, rss=None):
    ...     return aggregate([{"bytes_per_event": x, "server_cpu_us_per_event": y, "server_cpu_s": 1.0,
    ...                        "server_rss_per_connection_bytes": rss, "clients": 10_000} for x, y in zip(b, cpu)])
    >>> doc = {"kinds": ["chat"], "transports": ["sse"], "phases": []}
    >>> m = {("chat", "sse", "off"): cell([200, 210], [10, 11]),
    ...      ("chat", "sse", "shared"): cell([150, 155], [12, 13]),
    ...      ("chat", "sse", "per-connection"): cell([90, 95], [10.5, 12])}
    >>> mem = {("chat", "sse", "off"): cell([1], [10], 4096), ("chat", "sse", "per-connection"): cell([1], [25], 69632)}
    >>> print("\\n".join(summary_from(doc, m, mem)))
    - **sse**: chat: per-connection is smallest on the wire, 92 B per event against 205 B off (−55%, beyond the spread); shared 152 B, CPU ×1.19 (beyond the spread); per-connection 92 B, CPU ×1.07 (within the spread). At 10,000 connections, server memory per connection: off 4.0 KiB, per-connection 68.0 KiB (×17.0). Server CPU per delivery there against off: per-connection CPU ×2.50 (one run, no spread).
    """
    return summary_from(doc, cells(doc, "matrix"), cells(doc, "memory"))


def summary_from(doc: dict, m: dict, mem: dict) -> list[str]:
    out = []
    for t in doc["transports"]:
        parts = []
        for kind in doc["kinds"]:
            here = {f: m.get((kind, t, f)) for f in FORMS}
            have = {f: c for f, c in here.items() if c and c.get("bytes_per_event")}
            if "off" not in have or len(have) < 2:
                continue
            off = have["off"]
            best = min(have, key=lambda f: have[f]["bytes_per_event"]["median"])
            b, ob = have[best]["bytes_per_event"], off["bytes_per_event"]
            label = f"{kind} (the control)" if kind == CONTROL_KIND else kind
            if best == "off":
                s = f"{label}: off is smallest on the wire ({fmt_bytes(ob['median'])} per event)"
            else:
                s = (f"{label}: {best} is smallest on the wire, {fmt_bytes(b['median'])} per event against "
                     f"{fmt_bytes(ob['median'])} off ({percent_change(b['median'], ob['median'])}, {beyond(b, ob)})")
            costs = [f"{f} {fmt_bytes(have[f]['bytes_per_event']['median'])}, {cpu_phrase(have[f], off)}"
                     for f in FORMS[1:] if f in have]
            parts.append(s + ("; " + "; ".join(costs) if costs else ""))
        memory = memory_phrase(t, mem)
        if parts or memory:
            out.append(f"- **{t}**: " + ". ".join(parts) + ("." if parts else "") + (f" {memory}" if memory else ""))
    return out


def memory_phrase(t: str, mem: dict) -> str:
    rows = {f: c for (k, tt, f), c in mem.items() if tt == t and c.get("server_rss_per_connection_bytes")}
    if not rows:
        return ""
    clients = next(iter(rows.values()))
    off = rows.get("off")
    bits = []
    for f in FORMS:
        if f not in rows:
            continue
        r = rows[f]["server_rss_per_connection_bytes"]
        s = f"{f} {fmt_bytes(r['median'])}"
        if off and f != "off" and off["server_rss_per_connection_bytes"]["median"] > 0:
            s += f" (×{r['median'] / off['server_rss_per_connection_bytes']['median']:.1f})"
        bits.append(s)
    n = clients.get("clients")
    said = (f"At {n:,} connections, server" if n else "Server") + " memory per connection: " + ", ".join(bits) + "."
    if off:
        cpu = [f"{f} {cpu_phrase(rows[f], off)}" for f in FORMS[1:] if f in rows]
        if cpu:
            said += " Server CPU per delivery there against off: " + "; ".join(cpu) + "."
    return said


def table(headers: list[str], rows: list[list[str]], align: str) -> list[str]:
    sep = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"] + ["| " + " | ".join(r) + " |" for r in rows]


def answered(c: dict) -> str:
    return ", ".join(sorted(c["answers"])) or "–"


def kind_table(m: dict, kind: str, transports: list[str]) -> list[str]:
    rows = []
    for t in transports:
        for f in FORMS:
            c = m.get((kind, t, f))
            if not c:
                continue
            cpu = show(c["server_cpu_us_per_event"], fmt_us) + (" †" if c["cpu_coarse"] else "")
            rows.append([t, f, answered(c), show(c["bytes_per_event"], fmt_bytes), show(c["ratio"], fmt_num), cpu,
                         show(c["p50_us"], fmt_ms), show(c["p99_us"], fmt_ms), show(c["decode_cpu_us_per_event"], fmt_us),
                         str(c["lost"]) if c["lost"] else "0"])
    return table(["transport", "form", "server answered", "bytes/event (wire)", "decoded ÷ wire",
                  "server CPU/delivery", "p50", "p99", "loadgen decode/event", "lost"], rows, "lllrrrrrrr")


def memory_table(mem: dict) -> list[str]:
    rows = []
    for t in MEMORY_TRANSPORTS:
        for f in FORMS:
            c = mem.get(("chat", t, f))
            if not c:
                continue
            cpu = show(c["server_cpu_us_per_event"], fmt_us) + (" †" if c["cpu_coarse"] else "")
            rows.append([t, f, answered(c), show(c["server_rss_per_connection_bytes"], fmt_bytes), cpu,
                         show(c["bytes_per_event"], fmt_bytes), show(c["p99_us"], fmt_ms), str(c["lost"])])
    return table(["transport", "form", "server answered", "server RSS/connection", "server CPU/delivery",
                  "bytes/event (wire)", "p99", "lost"], rows, "lllrrrrr")


def nice_max(v: float) -> float:
    """The axis end: the next of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above v (five ticks).

    >>> nice_max(493), nice_max(0.012), nice_max(0)
    (500.0, 0.015, 1.0)
    """
    if v <= 0:
        return 1.0
    k = 10 ** math.floor(math.log10(v))
    return float(next(m * k for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * k >= v * 0.999))


COLOURS = {"short-poll": "#1f77b4", "long-poll": "#ff7f0e", "sse": "#2ca02c", "ws": "#d62728"}


def marker(form: str, x: float, y: float, colour: str) -> str:
    if form == "off":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>'
    if form == "shared":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    return f'<path d="M{x:.1f},{y - 5:.1f} L{x + 5:.1f},{y + 4:.1f} L{x - 5:.1f},{y + 4:.1f} Z" fill="{colour}"/>'


def chart(m: dict, kind: str, transports: list[str], note: str) -> str | None:
    """Bytes per event (x) against server CPU per delivery (y), one point per transport × form,
    error bars from the ranges; hollow when CPU was under the clock's resolution."""
    pts = []
    for t in transports:
        for f in FORMS:
            c = m.get((kind, t, f))
            if c and c["bytes_per_event"] and c["server_cpu_us_per_event"]:
                pts.append((t, f, c["bytes_per_event"], c["server_cpu_us_per_event"], c["cpu_coarse"]))
    if not pts:
        return None
    w, h, left, right, top, bottom = 560, 360, 64, 150, 36, 52
    xmax = nice_max(max(p[2]["max"] for p in pts))
    ymax = nice_max(max(p[3]["max"] for p in pts))
    sx = lambda v: left + v / xmax * (w - left - right)  # noqa: E731
    sy = lambda v: h - bottom - v / ymax * (h - top - bottom)  # noqa: E731
    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="13" font-weight="bold">{e(kind)}: bytes per event against server CPU per delivery</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>']
    for i in range(6):
        xv, yv = xmax * i / 5, ymax * i / 5
        out.append(f'<text x="{sx(xv):.1f}" y="{h - bottom + 14}" text-anchor="middle">{e(fmt_bytes(xv))}</text>')
        out.append(f'<text x="{left - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end">{e(fmt_num(yv))}</text>')
        if i:
            out.append(f'<line x1="{left}" y1="{sy(yv):.1f}" x2="{w - right}" y2="{sy(yv):.1f}" stroke="#eee"/>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - bottom + 30}" text-anchor="middle">bytes per event on the wire (both ways)</text>')
    out.append(f'<text x="14" y="{(top + h - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 {(top + h - bottom) / 2})">server CPU per delivery, µs</text>')
    out.append(f'<text x="{left}" y="{h - 6}" fill="#666" font-size="10">{e(note)}</text>')
    for t, f, b, c, coarse in pts:
        x, y, col = sx(b["median"]), sy(c["median"]), COLOURS[t]
        out.append(f'<line x1="{sx(b["min"]):.1f}" y1="{y:.1f}" x2="{sx(b["max"]):.1f}" y2="{y:.1f}" stroke="{col}"/>')
        out.append(f'<line x1="{x:.1f}" y1="{sy(c["min"]):.1f}" x2="{x:.1f}" y2="{sy(c["max"]):.1f}" stroke="{col}"/>')
        mk = marker(f, x, y, col)
        if coarse:
            mk = mk.replace(f'fill="{col}"', f'fill="white" stroke="{col}"')
        tip = f"{t} {f}: {fmt_bytes(b['median'])}, {fmt_us(c['median'])}"
        out.append(f"<g><title>{e(tip)}</title>{mk}</g>")
    ly = top
    for t in transports:
        out.append(f'<rect x="{w - right + 14}" y="{ly - 8}" width="10" height="10" fill="{COLOURS[t]}"/>'
                   f'<text x="{w - right + 30}" y="{ly + 1}">{e(t)}</text>')
        ly += 16
    ly += 8
    for f in FORMS:
        out.append(marker(f, w - right + 19, ly - 3, "#444") + f'<text x="{w - right + 30}" y="{ly + 1}">{e(f)}</text>')
        ly += 16
    out.append(f'<text x="{w - right + 14}" y="{ly + 6}" fill="#666" font-size="10">hollow: CPU under</text>')
    out.append(f'<text x="{w - right + 14}" y="{ly + 18}" fill="#666" font-size="10">the clock resolution</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_outputs(doc: dict, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out / "results.json")
    m = cells(doc, "matrix")
    mach = doc["machine"]
    note = f"{'QUICK MODE, not a measurement; ' if doc['mode'] == 'quick' else ''}{mach['cores']} cores, {mach['cpu_model']}; {doc['finished_at'] or doc['started_at']}"
    charts = {}
    for kind in doc["kinds"]:
        svg = chart(m, kind, doc["transports"], note)
        if svg:
            charts[kind] = f"bytes-vs-cpu-{kind}.svg"
            (out / charts[kind]).write_text(svg)
    (out / "README.md").write_text("\n".join(readme(doc, m, cells(doc, "memory"), charts)) + "\n")


def readme(doc: dict, m: dict, mem: dict, charts: dict) -> list[str]:
    s, mach = doc["settings"], doc["machine"]
    v = doc.get("versions") or {}
    lines = ["# Compression: bytes on the wire against server CPU and memory", ""]
    if doc["mode"] == "quick":
        lines += ["**QUICK MODE: tiny counts, one run, to check the harness. Not a measurement.**", ""]
    if doc.get("interrupted"):
        lines += ["**Interrupted: only the runs listed below were made.**", ""]
    lines += [
        "Generated by `scripts/compression.py` (its docstring says why and how). Each payload kind is "
        "run on all four transports without compression (`off`), with the server compressing each event "
        "once for every client (`shared`: `--http-gzip=shared --ws-deflate=shared`) and with a compressor "
        "per connection (`per-connection`: `--http-gzip=stream --ws-deflate=context`); loadgen offers what "
        "a browser offers. `off` and `shared` come from one loadgen run (`--compression both`, interleaved "
        "phase by phase), `per-connection` from a second. Medians with [min–max] over the repeats; "
        "\"beyond the spread\" means the ranges do not overlap.",
        "",
        f"Matrix: {s['clients']} clients per transport, {s['rate']:g} events/s, {s['duration']:g} s of "
        f"publishing per phase, HTTP/1.1, {s['repeats']} repeat(s). Memory: {s['memory_clients']:,} "
        f"connections, {s['memory_rate']:g} event/s for {s['memory_duration']:g} s, chat payload, each form "
        "on a fresh server.",
        "",
        "- Bytes per event: bytes on the socket both ways (requests too, for polling) over events received.",
        "- Decoded ÷ wire: payload after decoding over the bytes read; below 1 without compression (heads, framing).",
        f"- Server CPU per delivery: user + system of the server process over the phase, per delivered event; "
        f"† marks a cell where some run's server CPU was under {CPU_RESOLUTION_S * 1000:g} ms (five ticks of "
        "/proc's 10 ms clock): too coarse to compare.",
        "- loadgen decode/event: loadgen's thread CPU decoding (HTTP: the decoder's calls; WebSocket: every "
        "receive poll with compression on, an upper bound; not measured with compression off).",
        "- Server RSS per connection: (peak − start) RSS over the phase ÷ connections (loadgen reports it from 1,000 connections).",
        "",
    ]
    if doc.get("dropped_server_args"):
        lines += [f"**This server build lacks {', '.join(f'`{a}`' for a in doc['dropped_server_args'])}**: "
                  "left out; those forms got whatever the server answers (see \"server answered\").", ""]
    lines += ["## What it says", ""]
    said = summary_from(doc, m, mem)
    lines += (said or ["Nothing measured yet."]) + [""]
    for kind in doc["kinds"]:
        if not any(k == kind for k, _, _ in m):
            continue
        title = f"## {kind}" + (" (the control: padding of `x`, compresses far better than real data)" if kind == CONTROL_KIND else "")
        lines += [title, ""] + kind_table(m, kind, doc["transports"]) + [""]
        if kind in charts:
            lines += [f"![{kind}: bytes per event against server CPU per delivery]({charts[kind]})", ""]
    if mem:
        lines += [f"## Memory at {s['memory_clients']:,} connections", ""] + memory_table(mem) + [""]
    lines += ["## What was run", "", f"- Started {doc['started_at']}, finished {doc['finished_at'] or '(not finished)'}.",
              f"- Script: `{doc['command']}`",
              f"- Versions: loadgen {v.get('loadgen', '?')}, server {v.get('server', '?')}, rustc {v.get('rustc', '?')}.",
              f"- Machine: {mach['cores']} cores, {mach['cpu_model']}, {mach['memory_gib']} GiB, kernel {mach['kernel']}, "
              f"load average at start {' '.join(str(x) for x in mach['loadavg_at_start'])}.", "",
              "Each loadgen run (its report.json, report.md and report.html are in the directory named):", ""]
    for r in doc["runs"]:
        status = "" if r["rc"] == 0 else f" — exit {r['rc']}" + (" (events lost)" if r["rc"] == 1 else "")
        lines += [f"- `{r['dir']}/` ({r['elapsed_s']:.0f} s{status}):", "", "      " + shlex.join(r["command"]), ""]
        if r.get("server_command"):
            lines += ["  server: `" + shlex.join(r["server_command"]) + "`", ""]
    return lines


# ---------------------------------------------------------------------------------------------
# Command line


def machine_info() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cores": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
            "memory_gib": round(mem_kib / 1024 / 1024, 1), "loadavg_at_start": [float(x) for x in load]}


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_arg(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Compression: bytes on the wire against server CPU and memory "
                                "(see the module docstring).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"tiny counts to check the harness: {QUICK}")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated time, stop")
    p.add_argument("--self-test", action="store_true", help="run the doctests of the table and summary code, stop")
    p.add_argument("--rewrite", type=Path, metavar="DIR", help="write README.md and charts again from DIR/results.json, stop")
    p.add_argument("--out", type=Path, help="results directory (default results/compression, or "
                   "$TMPDIR/feedlab-compression-quick with --quick)")
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release",
                   help="where loadgen and server are (cargo build --release -p loadgen -p server)")
    p.add_argument("--kinds", type=list_arg, help=f"payload kinds (default {','.join(KINDS)})")
    p.add_argument("--transports", type=list_arg, default=list(TRANSPORTS), help="transports of the matrix")
    p.add_argument("--clients", type=int, help=f"matrix clients per transport (default {FULL['clients']})")
    p.add_argument("--rate", type=float, help=f"matrix events/s (default {FULL['rate']:g})")
    p.add_argument("--duration", type=float, help=f"matrix seconds of publishing per phase (default {FULL['duration']:g})")
    p.add_argument("--repeats", type=int, help=f"matrix repeats (default {FULL['repeats']})")
    p.add_argument("--memory-clients", type=int, help=f"memory section connections, 0 to skip (default {FULL['memory_clients']})")
    p.add_argument("--memory-rate", type=float, help=f"memory section events/s (default {FULL['memory_rate']:g})")
    p.add_argument("--memory-duration", type=float, help=f"memory section seconds (default {FULL['memory_duration']:g})")
    p.add_argument("--memory-repeats", type=int, help=f"memory section repeats (default {FULL['memory_repeats']})")
    o = p.parse_args(argv)
    base = QUICK if o.quick else FULL
    for k, v in base.items():
        if getattr(o, k) is None:
            setattr(o, k, v)
    for name, allowed, got in (("--kinds", KINDS, o.kinds), ("--transports", TRANSPORTS, o.transports)):
        bad = [x for x in got if x not in allowed]
        if bad or not got:
            p.error(f"{name}: any of {','.join(allowed)}; got {got}")
    if o.repeats < 1 or o.memory_repeats < 1:
        p.error("--repeats and --memory-repeats must be at least 1")
    if o.memory_clients > 10_000:
        p.error("--memory-clients: at most 10,000 (the hard open-file limit is 20,000 per process)")
    if o.out is None:
        o.out = Path(tempfile.gettempdir()) / "feedlab-compression-quick" if o.quick else ROOT / "results" / "compression"
    return o


def self_test() -> int:
    import doctest

    failed, tried = doctest.testmod(sys.modules[__name__], verbose=False)
    print(f"self-test: {tried} examples, {failed} failed")
    return 1 if failed else 0


def main(argv=None) -> int:
    o = parse_args(argv)
    if o.self_test:
        return self_test()
    if o.rewrite:
        doc = json.loads((o.rewrite / "results.json").read_text())
        write_outputs(doc, o.rewrite)
        print(f"written: {o.rewrite / 'README.md'}")
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    loadgen, server = o.bin_dir / "loadgen", o.bin_dir / "server"
    runs = plan(o)
    est = sum(r.estimate_s() for r in runs)
    mode = "quick" if o.quick else "full"
    print(f"{mode} run: {len(runs)} loadgen runs, {sum(r.phases() for r in runs)} phases; about "
          f"{est / 60:.0f} min; results to {o.out}")
    for r in runs:
        print(f"  {r.dir}: {','.join(r.transports)} x {r.clients} clients x {r.rate:g}/s x {r.duration:g} s, "
              f"--compression {r.compression}, {r.repeats} repeat(s), {r.phases()} phases, ~{r.estimate_s():.0f} s")
    if o.dry_run:
        return 0
    for b in (loadgen, server):
        if not b.is_file():
            raise SystemExit(f"no {b}: cargo build --release -p loadgen -p server")
    help_text = server_flags(server)
    command = shlex.join(["python3", "scripts/compression.py", *(sys.argv[1:] if argv is None else argv)])
    doc = {"schema": SCHEMA, "mode": mode, "command": command, "started_at": now_utc(), "finished_at": None,
           "machine": machine_info(), "settings": {k: v for k, v in vars(o).items() if k in FULL},
           "kinds": list(o.kinds), "transports": list(o.transports), "versions": None,
           "dropped_server_args": [], "interrupted": False, "runs": [], "phases": []}
    o.out.mkdir(parents=True, exist_ok=True)
    for old in o.out.glob("bytes-vs-cpu-*.svg"):
        old.unlink()  # a kind not run this time keeps no chart
    rc = 0
    try:
        for i, run in enumerate(runs, 1):
            kept, dropped = supported(SERVER_ARGS[run.server_form], help_text)
            doc["dropped_server_args"] = sorted(set(doc["dropped_server_args"]) | set(dropped))
            d = o.out / run.dir
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            cmd = run.command(str(loadgen), kept, str(d))
            shown = run.command(show_out(loadgen), kept, f"{show_out(o.out)}/{run.dir}")
            print(f"[{i}/{len(runs)}] {run.dir} (~{run.estimate_s():.0f} s)", flush=True)
            t0 = time.monotonic()
            code = run_loadgen(cmd, d / "loadgen.log", run.estimate_s() * TIMEOUT_FACTOR + 60)
            elapsed = time.monotonic() - t0
            entry = {"dir": run.dir, "section": run.section, "kind": run.kind, "command": shown, "rc": code,
                     "elapsed_s": elapsed, "estimate_s": run.estimate_s(), "server_command": None}
            report_path = d / "report.json"
            if report_path.is_file():
                report = json.loads(report_path.read_text())
                doc["versions"] = doc["versions"] or report.get("versions")
                entry["server_command"] = [show_bin(a) for a in (report.get("server") or {}).get("command") or []]
                doc["phases"] += collect(run, report)
            else:
                print(f"  no report.json (exit {code}); see {d / 'loadgen.log'}", flush=True)
            if code != 0:
                rc = 1
                print(f"  loadgen exit {code}" + (" (events lost)" if code == 1 else "") + f"; see {d / 'loadgen.log'}")
            doc["runs"].append(entry)
            write_outputs(doc, o.out)
    except KeyboardInterrupt:
        doc["interrupted"] = True
        print("\ninterrupted: loadgen stopped; what was measured is written", file=sys.stderr)
        rc = 130
    doc["finished_at"] = now_utc()
    write_outputs(doc, o.out)
    print(f"done: {o.out / 'README.md'}")
    return rc


def show_out(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def show_bin(a: str) -> str:
    """A path inside the workspace, relative to it (commands in the README stay portable)."""
    return show_out(Path(a)) if a.startswith("/") else a


if __name__ == "__main__":
    sys.exit(main())
