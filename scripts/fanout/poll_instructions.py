#!/usr/bin/env python3
"""Instructions per poll request and per delivery, server against floor, under callgrind.

Why this exists: issue 17's polling target is a CPU ratio to the floor, and timing numbers are
worthless on a machine shared with other builds. Instruction counts are not: valgrind's callgrind
counts every instruction the server executes, whatever else the machine runs. So this runs one
server (or the floor) under callgrind, drives it with `loadgen` for a fixed short workload, and
counts only the steady state: callgrind's counters are zeroed once every client is connected
(the process holds one descriptor per client more than before) and dumped when loadgen has
finished; `/stats` read at both moments gives the requests and deliveries in between. Prints one
JSON line: instructions (Ir) per request and per delivered event, and the counts behind them.

    cargo build --release -p loadgen -p server -p floor
    python3 scripts/fanout/poll_instructions.py --bin target/release/server --transport short-poll \\
        --clients 200 --rate 50 --duration 10 -- --workers 1
    python3 scripts/fanout/poll_instructions.py --bin target/release/floor --transport short-poll \\
        --clients 200 --rate 50 --duration 10 -- --workers 1

`--annotate FILE` also writes where the window's instructions went: by component, and the top
functions (self instructions).
Loopback only; every child is stopped by its PID. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Under callgrind a server starts and serves 50-100x slower than natively.
START_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 120.0


def stats(addr: str, transport: str) -> dict:
    with urllib.request.urlopen(f"http://{addr}/stats", timeout=30) as r:
        t = json.load(r)["transports"][transport]
    return {"requests": t["requests"], "delivered": t["events_delivered"]}


def start(cmd: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        m = re.search(r"^feedlab listening on http://([^/\s]+)/$", log.read_text(errors="replace"), re.M)
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    stop(p)
    raise SystemExit(f"did not start: {log.read_text(errors='replace')[-1500:]}")


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def total_ir(dump: str) -> int:
    with open(dump) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {dump}")


# Which part of the program a function is, by its name (first match wins).
COMPONENTS = [
    ("the fast path (server::fast_path)", ("server::fast_path",)),
    ("the handlers, feed, accounting (server::…)", ("server::",)),
    ("the floor's own code (floor::…)", ("floor::",)),
    ("actix-web, actix-http, actix-server, actix-router", ("actix", "regex_lite")),
    ("tokio, mio", ("tokio::", "mio::")),
    ("malloc, free, memcpy, memset (libc)", ("malloc", "free", "_int_", "memcpy", "memmove", "memset", "realloc", "calloc", "tcache")),
    ("formatting (core::fmt, write!)", ("core::fmt", "alloc::fmt", "default_write_fmt", "pad_integral")),
    ("httparse", ("httparse",)),
    ("hashbrown (header maps, extensions)", ("hashbrown",)),
    ("serde, serde_json", ("serde",)),
    ("http, bytes, percent-encoding", ("http::", "bytes::", "percent_encoding")),
]


def self_costs(dump: str) -> dict[str, int]:
    """Self instructions per function, from a callgrind dump (callgrind_annotate 3.19 puts all of
    a Rust program's cost on `__libc_start_main`, so the format is read here: a cost line
    belongs to the current `fn=`, except the one after `calls=`, which is the callee's)."""
    names: dict[str, str] = {}
    costs: dict[str, int] = {}
    cur, after_call = None, False
    for line in open(dump):
        line = line.rstrip("\n")
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if m.group(1) == "fn":
                cur = m.group(2)
            continue
        if line.startswith("calls="):
            after_call = True
            continue
        if re.match(r"^([+\-*]?\d|0x)", line):
            parts = line.split()
            if len(parts) >= 2:
                if after_call:
                    after_call = False
                else:
                    name = names.get(cur, cur)
                    costs[name] = costs.get(name, 0) + int(parts[1])
    return costs


def summary(dump: str, o, r: dict) -> str:
    costs = self_costs(dump)
    total = sum(costs.values())
    parts: dict[str, int] = {}
    for name, c in costs.items():
        label = next((lbl for lbl, keys in COMPONENTS if any(k in name for k in keys)), "other")
        parts[label] = parts.get(label, 0) + c
    per = r["requests"] or 1
    out = [
        f"# {o.bin.name}: {o.transport}, {o.clients} clients x {o.rate:g} events/s, {o.duration:g} s,"
        f" {' '.join(o.server_args)}",
        f"# callgrind window: {r['instructions']:,} instructions (Ir, user space only),"
        f" {r['requests']} requests, {r['delivered']} deliveries",
        f"# {r['ir_per_request']} Ir per request, {r['ir_per_delivery']} Ir per delivery",
        "",
        "## By component (self instructions)",
        "",
        f"{'share':>7}  {'Ir per request':>14}  component",
    ]
    for label, c in sorted(parts.items(), key=lambda kv: -kv[1]):
        out.append(f"{100 * c / total:6.1f}%  {c / per:14.0f}  {label}")
    out += ["", "## Top functions (self instructions)", "", f"{'share':>7}  {'Ir per request':>14}  function"]
    for name, c in sorted(costs.items(), key=lambda kv: -kv[1])[:40]:
        out.append(f"{100 * c / total:6.1f}%  {c / per:14.0f}  {name[:150]}")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, required=True, help="target/release/server or target/release/floor")
    ap.add_argument("--loadgen", type=Path, default=ROOT / "target" / "release" / "loadgen")
    ap.add_argument("--transport", choices=["short-poll", "long-poll"], required=True)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rate", type=float, default=50, help="events/s published")
    ap.add_argument("--duration", type=float, default=10, help="seconds of publishing")
    ap.add_argument("--poll-interval", type=float, default=1.0, help="short-poll only (s)")
    ap.add_argument("--annotate", type=Path, help="write the window's profile summary here")
    ap.add_argument("server_args", nargs="*", help="after --: more arguments for the server")
    o = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="feedlab-callgrind-"))
    out = work / "callgrind.out"
    server_cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        str(o.bin), "--bind", "127.0.0.1:0", "--rate", "0", "--log", "warn", *o.server_args,
    ]
    server, addr = start(server_cmd, work / "server.log")
    lg = None
    try:
        time.sleep(0.5)
        base_fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        lg_cmd = [
            str(o.loadgen), "--url", f"http://{addr}/", "--transports", o.transport, "--http", "1.1",
            "--clients", str(o.clients), "--rate", f"{o.rate:g}", "--payload-bytes", "100",
            "--duration", f"{o.duration:g}s", "--drain", "2s", "--ready-timeout", f"{READY_TIMEOUT_S:g}s",
            "--repeat", "1", "--seed", "1", "--out", str(work / "report"), "--quiet",
        ]
        if o.transport == "short-poll":
            lg_cmd += ["--poll-interval", f"{o.poll_interval:g}s"]
        with open(work / "loadgen.log", "w") as log:
            lg = subprocess.Popen(lg_cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(os.listdir(f"/proc/{server.pid}/fd")) < base_fds + o.clients:
            if time.monotonic() > deadline or lg.poll() is not None:
                raise SystemExit(f"clients never all connected; see {work}")
            time.sleep(0.02)
        before = stats(addr, o.transport)
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True, capture_output=True)
        lg.wait(timeout=READY_TIMEOUT_S + o.duration + 120)
        after = stats(addr, o.transport)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
    finally:
        if lg is not None and lg.poll() is None:
            lg.kill()
            lg.wait()
        stop(server)
    dumps = sorted(glob.glob(f"{out}.*"))
    if not dumps:
        raise SystemExit(f"no callgrind dump in {work}")
    dump = dumps[0]
    ir = total_ir(dump)
    requests = after["requests"] - before["requests"]
    delivered = after["delivered"] - before["delivered"]
    result = {
        "bin": str(o.bin), "transport": o.transport, "clients": o.clients, "rate": o.rate,
        "duration_s": o.duration, "server_args": o.server_args, "instructions": ir,
        "requests": requests, "delivered": delivered,
        "ir_per_request": round(ir / requests) if requests else None,
        "ir_per_delivery": round(ir / delivered) if delivered else None,
        "dump": dump, "loadgen_rc": lg.returncode if lg else None,
    }
    if o.annotate:
        o.annotate.parent.mkdir(parents=True, exist_ok=True)
        o.annotate.write_text(summary(dump, o, result))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
