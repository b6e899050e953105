#!/usr/bin/env python3
"""What a NAT's idle timeout does to each transport, and what the heartbeat that prevents it
costs the phone's radio.

Runs loadgen in real time in the cells around each crossover (a heartbeat just inside and just
outside a NAT timeout, in both NAT modes), every transport in one phase with its own phones
(`--network lte,phones,radio=lte,nat=…`), and derives the longer combinations from the packet
schedule (a quiet connection's longest silence is its heartbeat, hold or poll interval) and the
radio model (`loadgen radio`), marked as derived. Writes results/phones/nat-heartbeat/:
cells.json and cells.md (measured), derived.json and derived.md, energy_vs_notice.svg (the
trade-off per transport), and README.md with the command, commit, machine and date.

Needs root (the link's namespaces). The full sweep takes about 17 minutes; `--bounded` about 6
(three cells, 100 s each), for a machine others are using.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Defaults of the server and of loadgen this reasoning depends on (docs/src/reference/).
WS_CLIENT_TIMEOUT_S = 45  # server --ws-client-timeout: a WebSocket without a pong is closed
LONG_POLL_HOLD_S = 20  # loadgen --long-poll-timeout in these cells
POLL_INTERVAL_S = 5  # loadgen --poll-interval in these cells
LOADGEN_RESPONSE_TIMEOUT_S = 15  # loadgen's net::RESPONSE_TIMEOUT: a poll's watchdog
# The server sets TCP_USER_TIMEOUT to --send-timeout (30 s) on every connection
# (server/src/connection.rs): the kernel aborts a connection whose sent data stays
# unacknowledged that long, silently (no FIN, no reset reaches the link). A heartbeat or ping
# into a dropped mapping is such data, so this, not tcp_retries2's 15 minutes, is how the
# server finds a dead SSE stream, and a dead WebSocket before --ws-client-timeout (45 s).
SEND_TIMEOUT_S = 30
# Each end's watchdog, by name, for the tables: what notices a dead connection, if anything.
SERVER_WATCHDOG = {
    "sse": "TCP_USER_TIMEOUT (--send-timeout 30 s) on the unacknowledged heartbeat",
    "ws": "TCP_USER_TIMEOUT (--send-timeout 30 s) on the unacknowledged ping, before --ws-client-timeout 45 s",
    "long-poll": "TCP_USER_TIMEOUT (--send-timeout 30 s) on the held answer, written into the dead flow when the hold ends",
    "short-poll": "none needed: a vanished request leaves it nothing to write",
}
CLIENT_WATCHDOG = {
    "sse": "none: EventSource, the page and loadgen's SSE client have no read watchdog once connected",
    "ws": "none: the browser's WebSocket and loadgen's have no read watchdog",
    "long-poll": "loadgen's response timeout (15 s after the hold); the page's stall detection only labels it",
    "short-poll": "loadgen's response timeout (15 s); the page's stall detection only labels it",
}

TRANSPORTS = ["sse", "ws", "long-poll", "short-poll"]

# (NAT timeout s, heartbeat s, mode, duration s)
FULL = [
    (30, 15, "drop", 120),
    (30, 25, "drop", 125),
    (30, 60, "drop", 195),
    (30, 60, "reset", 195),
    (120, 60, "drop", 240),
]
BOUNDED = [
    (30, 25, "drop", 100),
    (30, 60, "drop", 100),
    (30, 60, "reset", 100),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def silence_s(transport, heartbeat):
    """The longest a quiet connection goes without a packet."""
    return {
        "sse": heartbeat,
        "ws": heartbeat,
        "long-poll": LONG_POLL_HOLD_S,
        "short-poll": POLL_INTERVAL_S,
    }[transport]


def notice_s(transport, heartbeat, nat, mode):
    """(server, client) seconds from the mapping's death to each end knowing, on a quiet feed;
    None when the connection never dies, inf when that end never notices by itself."""
    quiet = silence_s(transport, heartbeat)
    if quiet < nat:
        return None
    # The mapping dies `nat` after the last packet; the next packet comes `quiet` after it.
    next_packet = quiet - nat
    if mode == "reset":
        return (next_packet, next_packet)
    if transport in ("ws", "sse"):
        # The heartbeat or ping vanishes and is retransmitted until TCP_USER_TIMEOUT aborts the
        # connection (before --ws-client-timeout for a WebSocket); the abort sends nothing, so
        # the client, which has no read watchdog, waits for ever.
        return (next_packet + min(SEND_TIMEOUT_S, WS_CLIENT_TIMEOUT_S), float("inf"))
    # Polls: the next packet is the answer the hold ends with (long polling) or the next request
    # (short polling); it vanishes, and the client's response timeout, counted from its request,
    # ends it 15 s after the hold. A long poll's answer is data TCP_USER_TIMEOUT ends on the
    # server (as the link measured: `nat.dead` in the cells); a short poll's lost request leaves
    # the server nothing to write.
    server = next_packet + SEND_TIMEOUT_S if transport == "long-poll" else float("inf")
    return (server, next_packet + LOADGEN_RESPONSE_TIMEOUT_S)


def radio(loadgen, every_s, down, up):
    out = sh([loadgen, "radio", "--profile", "lte", "--every", f"{every_s}s",
              "--bytes", str(down), "--up-bytes", str(up), "--json"])
    f = json.loads(out)["figures"]
    return {"energy_per_hour_j": f["energy_per_hour_j"], "radio_on_share": f["radio_on_share"],
            "wake_ups_per_hour": f["wake_ups_per_hour"], "timers": f["timers"]}


# Bytes on the wire of one quiet-connection exchange, plain HTTP/1.1 (IP + TCP headers
# included): an SSE comment and its ACK; a ping frame, its pong and the ACKs; a held long poll's
# empty answer and the next request; a short poll's request and answer.
EXCHANGE = {
    "sse": (13 + 52, 52),
    "ws": (2 + 52, 6 + 52),
    "long-poll": (180 + 52, 120 + 52),
    "short-poll": (180 + 52, 120 + 52),
}


def derived(loadgen):
    rows = []
    for t in TRANSPORTS:
        beats = [15, 25, 30, 60, 120, 300] if t in ("sse", "ws") else [None]
        for hb in beats:
            quiet = silence_s(t, hb or 0)
            down, up = EXCHANGE[t]
            e = radio(loadgen, quiet, down, up)
            for nat in [30, 60, 120, 300, 600]:
                for mode in ["drop", "reset"]:
                    n = notice_s(t, hb or 0, nat, mode)
                    rows.append({
                        "transport": t, "heartbeat_s": hb, "silence_s": quiet,
                        "nat_timeout_s": nat, "nat_mode": mode, "survives": n is None,
                        "server_notices_after_s": None if n is None else n[0],
                        "client_notices_after_s": None if n is None else n[1],
                        "server_watchdog": SERVER_WATCHDOG[t], "client_watchdog": CLIENT_WATCHDOG[t],
                        **e, "derived": True,
                    })
    return rows


def run_cell(loadgen, nat, hb, mode, duration, clients, out):
    net = f"lte,phones,radio=lte,nat={nat}s,nat-mode={mode}"
    cmd = [loadgen, "--network", net, "--concurrent", "--transports", ",".join(TRANSPORTS),
           "--clients", str(clients), "--rate", "0.01", "--payload", "chat",
           "--duration", f"{duration}s", "--drain", "10s", "--repeat", "1",
           "--http", "1.1", "--tls", "off", "--compression", "off",
           "--poll-interval", f"{POLL_INTERVAL_S}s", "--long-poll-timeout", f"{LONG_POLL_HOLD_S}s",
           f"--server-arg=--heartbeat={hb}s", "--quiet", "--out", str(out)]
    t = time.time()
    # loadgen exits 1 when events were lost, which is a result here, not a failure.
    rc = subprocess.run(cmd).returncode
    if not (out / "report.json").exists():
        raise SystemExit(f"loadgen exited {rc} without a report: {' '.join(cmd)}")
    report = json.loads((out / "report.json").read_text())
    rows = []
    for r in report["phases"]:
        n = r.get("network") or {}
        p = n.get("phones") or {}
        rad = p.get("radio") or {}
        rows.append({**noticed((p.get("nat") or {}).get("dead")),
            "transport": r["transport"], "heartbeat_s": hb, "nat_timeout_s": nat,
            "nat_mode": mode, "duration_s": duration,
            "events_expected": r["events_expected"], "events_received": r["events_received"],
            # Delivered late or resumed, or never: every expected event once (`events_unique`),
            # none acknowledged and missing (`lost`), the connections that failed and came back,
            # and how late the worst one was.
            "events_unique": r.get("events_unique"), "lost": r.get("lost"),
            "reconnects": r["reconnects"], "disconnects": r.get("disconnects"),
            "latency_p99_ms": r["latency_us"]["p99"] / 1e3 if r["latency_us"]["count"] else None,
            "latency_max_ms": r["latency_us"]["max"] / 1e3 if r["latency_us"]["count"] else None,
            "server_watchdog": SERVER_WATCHDOG[r["transport"]],
            "client_watchdog": CLIENT_WATCHDOG[r["transport"]],
            "errors": r.get("errors", {}),
            "nat": p.get("nat"), "energy_per_hour_j": rad.get("energy_per_hour_j"),
            "radio_on_share": rad.get("radio_on_share"),
            "wake_ups_per_hour": rad.get("wake_ups_per_hour"), "timers": rad.get("timers"),
            "derived": False, "loadgen_exit": rc, "command": " ".join(cmd),
            "wall_s": round(time.time() - t, 1),
        })
    return rows


def noticed(dead):
    """The measured time-to-notice columns of a phase's `nat.dead` (the link reads each end's
    sockets from its kernel every 50 ms after the mapping went): median and max seconds per end,
    and the connections that end still held when the phase ended."""
    cols = {"dead_connections": None}
    for end in ("server", "client"):
        for k in ("median", "max"):
            cols[f"{end}_noticed_{k}_s"] = None
        cols[f"{end}_unnoticed"] = None
    if not dead:
        return cols
    cols["dead_connections"] = dead["connections"]
    for end in ("server", "client"):
        e = dead[end]
        for k in ("median", "max"):
            v = e.get(f"{k}_ms")
            cols[f"{end}_noticed_{k}_s"] = None if v is None else v / 1e3
        cols[f"{end}_unnoticed"] = e["unnoticed"]
    cols["client_watchdog_measured"] = dead["client_watchdog"]
    return cols


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return "never" if v == float("inf") else f"{v:.3g}"
    return str(v)


def table(rows, cols):
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def svg(rows, nat, mode):
    """Energy per hour against the time the server needs to notice a dead connection, one
    series per transport, at one NAT timeout and mode (derived rows)."""
    pts = [r for r in rows if r["nat_timeout_s"] == nat and r["nat_mode"] == mode]
    w, h, m = 720, 420, 70
    colors = {"sse": "#1b9e77", "ws": "#d95f02", "long-poll": "#7570b3", "short-poll": "#e7298a"}
    xmax = 1000.0
    ymax = max(r["energy_per_hour_j"] for r in pts) * 1.1

    def x(v):
        v = xmax if v is None or v == float("inf") else min(v, xmax)
        return m + (w - 2 * m) * v / xmax

    def y(v):
        return h - m - (h - 2 * m) * v / ymax

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<text x="{w/2}" y="20" text-anchor="middle" font-size="14">Radio energy per hour against time until the server notices a dead connection (LTE, NAT {nat} s, {mode}; derived)</text>',
           f'<line x1="{m}" y1="{h-m}" x2="{w-m}" y2="{h-m}" stroke="black"/>',
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h-m}" stroke="black"/>',
           f'<text x="{w/2}" y="{h-25}" text-anchor="middle">s from the mapping\'s death to the server noticing (0 = never dies; right edge = 1000 s or more)</text>',
           f'<text x="18" y="{h/2}" transform="rotate(-90 18 {h/2})" text-anchor="middle">radio energy per hour, J (ARO LTE: promotion 0.26 s, tail 10.12 s)</text>']
    for k in range(0, 6):
        v = xmax * k / 5
        out.append(f'<text x="{x(v)}" y="{h-m+16}" text-anchor="middle">{v:.0f}</text>')
        e = ymax * k / 5
        out.append(f'<text x="{m-6}" y="{y(e)+4}" text-anchor="end">{e:.0f}</text>')
    for i, t in enumerate(TRANSPORTS):
        series = [r for r in pts if r["transport"] == t]
        for r in series:
            sx = x(r["server_notices_after_s"] if not r["survives"] else 0)
            sy = y(r["energy_per_hour_j"])
            out.append(f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="5" fill="{colors[t]}"/>')
            label = f'{r["heartbeat_s"]} s' if r["heartbeat_s"] else ""
            out.append(f'<text x="{sx+7:.1f}" y="{sy-6:.1f}" fill="{colors[t]}">{label}</text>')
        out.append(f'<text x="{w-m-110}" y="{m+16*i}" fill="{colors[t]}">● {t}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loadgen", default=str(ROOT / "target/release/loadgen"))
    ap.add_argument("--out", default=str(ROOT / "results/phones/nat-heartbeat"))
    ap.add_argument("--bounded", action="store_true", help="three cells of 100 s (about 6 min)")
    ap.add_argument("--clients", type=int, default=10, help="phones per transport")
    ap.add_argument("--derived-only", action="store_true")
    ap.add_argument("--note", default="", help="conditions to record (e.g. 'other builds ran')")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    cells = [] if a.derived_only else (BOUNDED if a.bounded else FULL)
    measured = []
    for nat, hb, mode, dur in cells:
        with tempfile.TemporaryDirectory() as d:
            print(f"cell: NAT {nat} s {mode}, heartbeat {hb} s, {dur} s", file=sys.stderr)
            measured += run_cell(a.loadgen, nat, hb, mode, dur, a.clients, Path(d))
        (out / "cells.json").write_text(json.dumps(measured, indent=1) + "\n")
    der = derived(a.loadgen)
    (out / "derived.json").write_text(json.dumps(der, indent=1) + "\n")
    (out / "derived.md").write_text(
        "Derived (not measured): from the packet schedule of a quiet connection and the radio model "
        "(`loadgen radio --profile lte`, steady state, foreground).\n\n"
        + table(der, ["transport", "heartbeat_s", "silence_s", "nat_timeout_s", "nat_mode", "survives",
                      "server_notices_after_s", "client_notices_after_s", "energy_per_hour_j",
                      "radio_on_share", "wake_ups_per_hour", "timers"])
        + "\n\nWhat notices a dead connection (`never`: nothing does by itself):\n\n"
        + table([{"transport": t, "server": SERVER_WATCHDOG[t], "client": CLIENT_WATCHDOG[t]}
                 for t in TRANSPORTS], ["transport", "server", "client"]))
    for nat, mode in [(30, "drop"), (120, "drop"), (30, "reset")]:
        (out / f"energy_vs_notice_nat{nat}_{mode}.svg").write_text(svg(der, nat, mode))
    if measured:
        (out / "cells.json").write_text(json.dumps(measured, indent=1) + "\n")
        (out / "cells.md").write_text(
            "Measured in real time (one run per cell; every transport in one phase, 10 phones each). "
            "Dead connections: mappings that lapsed; noticed: seconds from the mapping's end to that "
            "end's socket being gone or closing (median, max; read from its kernel every 50 ms); "
            "unnoticed: still held when the phase ended. The client's watchdog is named in "
            "`cells.json` (`client_watchdog_measured`).\n\n"
            + table(measured, ["transport", "heartbeat_s", "nat_timeout_s", "nat_mode", "duration_s",
                               "events_expected", "events_unique", "lost", "reconnects",
                               "disconnects", "dead_connections", "server_noticed_median_s",
                               "server_noticed_max_s", "server_unnoticed", "client_noticed_median_s",
                               "client_noticed_max_s", "client_unnoticed", "latency_p99_ms", "latency_max_ms", "energy_per_hour_j", "radio_on_share",
                               "wake_ups_per_hour"]))
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain"]) != ""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    (out / "README.md").write_text(
        f"# NAT idle timeouts against heartbeats\n\n"
        f"- command: `sudo python3 scripts/phones/nat_heartbeat_sweep.py {' '.join(sys.argv[1:])}`\n"
        f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}\n"
        f"- machine: {platform.node()}, {os.cpu_count()} cores, {cpu}, {platform.platform()}\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}\n"
        f"- wall time: {time.time() - started:.0f} s\n"
        f"- cells: {'bounded (' if a.bounded else 'full ('}{len(cells)} measured in real time) and derived\n"
        f"- conditions: {a.note or 'not recorded'}\n\n"
        f"`cells.md`: measured. `derived.md`: derived from the packet schedule and the radio model "
        f"(marked `derived`). `energy_vs_notice_*.svg`: the trade-off per transport (derived).\n")


if __name__ == "__main__":
    main()
