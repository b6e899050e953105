#!/usr/bin/env python3
"""TCP and QUIC side by side under loss, and across a path change (issue #31, item 3).

The same feed, one transport at a time, on loopback (the control) and across the emulated 3G
link with 2% loss (`--network '3g,loss=2%'`: 300 ms RTT, 1.6 Mbit/s down, 768 kbit/s up), over
TCP as a browser reaches a server (TLS; SSE over HTTP/2, WebSocket over HTTP/1.1) and over QUIC
(SSE over HTTP/3, WebTransport: one stream, a stream per event, datagrams). The load fits the 3G link (the default 20 clients × 5 events/s
of 100 B is about a fifth of its downlink), so what the table shows is loss and head-of-line
blocking, not a full queue. The QUIC side runs with loadgen's fair settings: packets pinned to
the link's MTU (1,472 bytes of UDP payload) with path-MTU discovery off, CUBIC on both sides
(Linux TCP's default; quinn's) with a 10-packet initial window on both, and a 10 s keep-alive
below the 30 s idle timeout.

Then the path change (`--network 3g`, no loss): ws and wt in one run, then sse over HTTP/3, each
phase with `--migrate-at` (the QUIC clients move to a second address) and `--nat-rebind-at`
(the link changes every client's source port): the reconnects per transport say which went on.

Writes results/quic/: README.md (the tables, with command, time, commit, machine and
conditions), summary.json, and per run runs/NAME/ (loadgen's report.json and report.md, and
cell.json with the command). loadgen is run once per run and stopped by PID (also on failure
or Ctrl-C); it removes its own namespaces, servers and links.

    cargo build --release -p server -p loadgen
    sudo python3 scripts/quic/loss.py              # ~25 min (3 repeats; --repeats 1: ~10)
    sudo python3 scripts/quic/loss.py --dry-run    # the commands

Needs root, /dev/net/tun and iproute2 (the link). Python 3 standard library only.
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from provenance import commit, machine  # noqa: E402

LOSSY = "3g,loss=2%"
# Label, loadgen flags: what is compared under loss. WebTransport in its three ways: one stream
# for the feed (a loss stalls every event behind it, as on TCP), a stream per event and a
# datagram per event (lost ones recovered over a stream): only the last two avoid head-of-line
# blocking.
STACKS = [
    ("tcp", ["--transports", "sse,ws", "--http", "2"]),
    ("h3", ["--transports", "sse", "--http", "3"]),
    ("wt", ["--transports", "wt,wt-streams,wt-datagrams"]),
]
# The path change: ws and wt together (sequential phases), then sse over HTTP/3 (the server
# serves HTTP/3 or WebTransport, not both).
MOVES = [
    ("move-tcp-wt", ["--transports", "ws,wt"]),
    ("move-h3", ["--transports", "sse", "--http", "3"]),
]


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


def common(a):
    return [
        a.loadgen,
        "--server-bin", a.server,
        "--tls", "on",
        "--clients", str(a.clients),
        "--rate", str(a.rate),
        "--duration", f"{a.duration}s",
        "--drain", "5s",
        "--repeat", str(a.repeats),
        "--seed", "31",
        "--quiet",
    ]


def commands(a):
    """(name, command, out dir) of every run."""
    runs = []
    for name, flags in STACKS:
        out = os.path.join(a.out, "runs", name)
        cmd = common(a) + ["--network", "none", "--network", LOSSY] + flags + ["--out", out]
        runs.append((name, cmd, out))
    if not a.no_moves:
        for name, flags in MOVES:
            out = os.path.join(a.out, "runs", name)
            cmd = common(a) + [
                "--network", "3g",
                "--migrate-at", f"{a.duration * 3 // 10}s",
                "--nat-rebind-at", f"{a.duration * 6 // 10}s",
            ] + flags + ["--out", out]
            runs.append((name, cmd, out))
    return runs


def label(r):
    t = {
        "sse": "SSE",
        "ws": "WebSocket",
        "wt": "WebTransport, one stream",
        "wt-streams": "WebTransport, a stream per event",
        "wt-datagrams": "WebTransport, datagrams",
    }.get(r["transport"], r["transport"])
    http = r["http"]
    if r["transport"].startswith("wt"):
        return f"{t} (QUIC)"
    if http == "3":
        return f"{t} over HTTP/3 (QUIC)"
    return f"{t} over HTTP/{http} (TLS, TCP)"


def ms(us):
    if us is None:
        return "–"
    v = us / 1000
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def figures(report):
    """One row per cell (transport, HTTP version, network): the tables' figures over its repeats
    (loadgen's `--repeat`, interleaved): latencies, stalls and bytes per event as the median with
    the range, counts summed."""
    rows = phase_figures(report)
    cells = {}
    for r in rows:
        cells.setdefault((r["transport"], r["http"], r["network"]), []).append(r)
    out = []
    for group in cells.values():
        row = dict(group[0])
        row["runs"] = len(group)
        for k in ("p50_us", "p99_us", "max_us", "hol_stalls", "ip_bytes_per_event",
                  "packets_per_event", "quic_rtt_ms"):
            vals = [g[k] for g in group if g[k] is not None]
            row[k] = median(vals)
            row[k + "_range"] = [min(vals), max(vals)] if vals else None
        for k in ("events_expected", "events_received", "lost", "link_dropped", "udp_packets",
                  "udp_dropped", "tcp_retransmitted", "quic_client_lost_packets",
                  "quic_congestion_events", "udp_rcvbuf_errors", "connections_opened",
                  "reconnects", "clients"):
            vals = [g[k] for g in group if g[k] is not None]
            row[k] = sum(vals) if vals else None
        row["errors"] = {}
        for g in group:
            for kind, n in (g["errors"] or {}).items():
                row["errors"][kind] = row["errors"].get(kind, 0) + n
        row["server_check_ok"] = all(g["server_check_ok"] for g in group)
        out.append(row)
    return out


def phase_figures(report):
    """One row per phase: what the tables show."""
    rows = []
    for r in report["phases"]:
        n = r.get("network") or {}
        down, up = n.get("down") or {}, n.get("up") or {}
        quic = n.get("quic") or {}
        udp = lambda k: (down.get(k) or 0) + (up.get(k) or 0)  # noqa: E731
        rows.append({
            "transport": r["transport"],
            "http": r["http"],
            "label": label(r),
            "network": n.get("name", "none"),
            "clients": r["clients"],
            "events_expected": r["events_expected"],
            "events_received": r["events_received"],
            "lost": r["lost"],
            "p50_us": r["latency_us"]["p50"],
            "p99_us": r["latency_us"]["p99"],
            "max_us": r["latency_us"]["max"],
            "hol_stalls": n.get("hol_stalls"),
            "hol_threshold_us": n.get("hol_threshold_us"),
            "ip_bytes_per_event": n.get("ip_bytes_per_event"),
            "packets_per_event": n.get("packets_per_event"),
            "link_dropped": (down.get("dropped_by_loss") or 0) + (up.get("dropped_by_loss") or 0),
            "udp_packets": udp("udp_packets_carried"),
            "udp_dropped": udp("udp_dropped"),
            "tcp_retransmitted": ((n.get("server_segments") or {}).get("retrans_segs") or 0)
            + ((n.get("client_segments") or {}).get("retrans_segs") or 0),
            "quic_client_lost_packets": quic.get("client_lost_packets"),
            "quic_congestion_events": quic.get("client_congestion_events"),
            "quic_rtt_ms": quic.get("rtt_ms_mean"),
            "udp_rcvbuf_errors": ((n.get("client_udp") or {}).get("rcvbuf_errors") or 0)
            + ((n.get("server_udp") or {}).get("rcvbuf_errors") or 0),
            "connections_opened": r["connections_opened"],
            "reconnects": r.get("reconnects"),
            "errors": r["errors"],
            "server_check_ok": (r.get("server_check") or {}).get("ok"),
        })
    return rows


def ms_range(f, k):
    """`k`'s median, and its range over the repeats when they differ."""
    r = f.get(k + "_range")
    if not r or ms(r[0]) == ms(r[1]):
        return ms(f[k])
    return f"{ms(f[k])} [{ms(r[0])}–{ms(r[1])}]"


def loss_table(rows):
    lines = [
        "| transport | network | p50 | p99 | max | stalls | IP bytes / event | link drops | "
        "TCP retransmits | QUIC: client losses / congestion events / RTT | UDP buffer errors | "
        "received / expected |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        quic = "–"
        if f["quic_client_lost_packets"] is not None:
            quic = "{} / {} / {:.0f} ms".format(
                f["quic_client_lost_packets"], f["quic_congestion_events"], f["quic_rtt_ms"] or 0
            )
        tcp = f["tcp_retransmitted"] if f["udp_packets"] == 0 and f["network"] != "none" else "–"
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:,} / {:,} |".format(
                f["label"], f["network"], ms_range(f, "p50_us"), ms_range(f, "p99_us"),
                ms_range(f, "max_us"),
                "–" if f["hol_stalls"] is None else f"{f['hol_stalls']:,}",
                "–" if f["ip_bytes_per_event"] is None else f"{f['ip_bytes_per_event']:,.0f}",
                f["link_dropped"] if f["network"] != "none" else "–",
                tcp, quic,
                f["udp_rcvbuf_errors"] if f["network"] != "none" else "–",
                f["events_received"], f["events_expected"],
            )
        )
    return "\n".join(lines)


def move_table(rows):
    lines = [
        "| transport | clients × runs | connections opened | reconnects | went on without reconnecting | "
        "p99 | max | received / expected |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for f in rows:
        if f["connections_opened"] > f["clients"]:
            survived = "no: reconnected"
        elif f["events_received"] < f["events_expected"]:
            survived = "no: cut, never noticed"
        else:
            survived = "yes"
        lines.append(
            "| {} | {} × {} | {} | {} | {} | {} | {} | {:,} / {:,} |".format(
                f["label"], f["clients"] // f["runs"], f["runs"], f["connections_opened"],
                f["reconnects"], survived,
                ms_range(f, "p99_us"), ms_range(f, "max_us"), f["events_received"],
                f["events_expected"],
            )
        )
    return "\n".join(lines)


def write_readme(a, results, meta):
    loss_rows = [f for name, _, _ in commands(a) if name in dict(STACKS) for f in results.get(name, [])]
    move_rows = [f for name, _, _ in commands(a) if name in dict(MOVES) for f in results.get(name, [])]
    rel = lambda c: [os.path.relpath(x, ROOT) if x.startswith(ROOT + os.sep) else x for x in c]  # noqa: E731
    cmds = "\n".join(f"    {shlex.join(rel(cmd))}" for _, cmd, _ in commands(a))
    moves = ""
    if move_rows:
        moves = f"""
## A path change: `--network 3g`, `--migrate-at {a.duration * 3 // 10}s`, `--nat-rebind-at {a.duration * 6 // 10}s`

At {a.duration * 3 // 10} s into publishing every QUIC client's endpoints rebind onto sockets of a
second address (198.19.255.254, as a phone that changed networks; TCP connections are bound to
their address and have no such move, so they keep theirs); at {a.duration * 6 // 10} s the link
becomes a NAT that rebound every mapping (the server sees every client socket's packets from
another port, TCP's and UDP's alike).

{move_table(move_rows)}

A client that moves itself tells the server at once (quinn sends a PING from the new address,
and the server validates the path). A NAT's rebinding is not the client's doing: the server's
packets go to the old mapping and are lost until the client next sends something from its
socket (an acknowledgement of a packet still in flight, or at the latest its keep-alive, 10 s),
which is what a QUIC connection's p99 and max here show. A TCP client that only listens (SSE,
WebSocket, as a browser's, without a silence watchdog) is never told: the server's kernel
resets what comes from the new port, and the client receives nothing more.
"""
    loaded = ""
    if "under load" in a.conditions.lower():
        loaded = ("\n**Under load**: measured while other work shared the machine; a check that the "
                  "script works, not figures to quote.\n")
    text = f"""# TCP and QUIC under loss
{loaded}
The same feed ({a.clients} clients, {a.rate:g} events/s of 100 B for {a.duration} s, TLS) on
loopback and across the emulated 3G link with 2% loss, one transport at a time, every phase
{a.repeats} time{"s" if a.repeats != 1 else ""} (interleaved). Latencies, stalls and bytes per event are the median over the runs, with
their range in brackets where the runs differ; counts are summed over the runs.{" One run per cell: a difference between two rows is not told from noise here." if a.repeats == 1 else " Two rows whose ranges overlap are not told apart."} Generated by
`scripts/quic/loss.py`.

- **Command**: `{meta['command']}` ({meta['elapsed_s'] / 60:.1f} min)
- **When**: {meta['started']} to {meta['finished']}
- **Commit**: {meta['commit']}
- **Machine**: {meta['machine']}
- **Build**: {a.build}
- **Conditions**: {a.conditions}

Each run (its `runs/NAME/cell.json` has the exact command):

{cmds}

QUIC's settings (loadgen's client and the server it starts, `--quic-mtu 1472`): packets pinned
to 1,472 bytes of UDP payload (the 1,500-byte link MTU less IP and UDP headers) with path-MTU
discovery off, so a full QUIC packet is as large on the link as a full TCP segment; CUBIC on
both sides, as Linux TCP's default; initial congestion window ten such packets (14,720 bytes;
Linux TCP: ten segments, 14,480 bytes at MSS 1,448); keep-alive every 10 s below the 30 s idle
timeout; flow-control windows the server's `--quic-stream-window` (64 KiB) and
`--quic-connection-window` (256 KiB) for what clients send, quinn's defaults (1.25 MB per
stream, unlimited per connection) for what the server sends.

## Under loss: loopback and `{LOSSY}`

{loss_table(loss_rows)}

How to read it:

- *p50 / p99 / max*: delivery latency, publish to receipt, over every event.
- *stalls*: events delayed by more than one RTT beyond the one-way delay (head-of-line blocking
  behind a lost packet, or a queue); the longest such wait is *max*.
- *IP bytes / event*: every IP packet the link carried in the phase, both ways, headers and
  acknowledgements included, per event delivered: the one layer where TCP+TLS and QUIC compare.
- *link drops*: packets the link's 2% loss dropped, both ways. *TCP retransmits*: segments the
  kernels resent (server and client namespace). *QUIC*: what loadgen's QUIC connections declared
  lost of their own sends (mostly acknowledgements: the server's losses are its own and not
  counted here), their congestion events and mean smoothed RTT. *UDP buffer errors*:
  `RcvbufErrors` in both namespaces (datagrams the receiver's kernel dropped).
{moves}
Per run: `runs/NAME/report.json` and `report.md` (loadgen's report: every figure, the link's
per-direction UDP counters, the server check against `/stats`), `cell.json` (the command and conditions);
`summary.json` holds the rows above.
"""
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--rate", type=float, default=5, help="events per second published")
    p.add_argument("--duration", type=int, default=30, help="publishing time per phase, s")
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of every phase, interleaved (loadgen --repeat); the tables give "
                        "the median and range")
    p.add_argument("--loadgen", default=os.path.join(ROOT, "target", "release", "loadgen"))
    p.add_argument("--server", default=os.path.join(ROOT, "target", "release", "server"))
    p.add_argument("--out", default=os.path.join(ROOT, "results", "quic"))
    p.add_argument("--build", default="release")
    p.add_argument("--conditions", default="this 2-core machine; quiet")
    p.add_argument("--no-moves", action="store_true", help="skip the path-change runs")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--readme-only", action="store_true",
                   help="rewrite README.md from the runs already in --out (summary.json's record)")
    a = p.parse_args()
    runs = commands(a)
    if a.readme_only:
        with open(os.path.join(a.out, "summary.json")) as f:
            meta = json.load(f)["meta"]
        results = {}
        for name, _, out in runs:
            with open(os.path.join(out, "report.json")) as f:
                results[name] = figures(json.load(f))
        write_readme(a, results, meta)
        return
    if a.dry_run:
        for _, cmd, _ in runs:
            print(shlex.join(cmd))
        return
    for exe in (a.loadgen, a.server):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} is missing: cargo build --release -p server -p loadgen")
    meta = {
        "command": shlex.join(["python3", "scripts/quic/loss.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "commit": commit(),
        "machine": machine(),
    }
    t0 = time.time()
    results = {}
    proc = None
    try:
        for n, (name, cmd, out) in enumerate(runs, 1):
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "cell.json"), "w") as f:
                json.dump({
                    "name": name,
                    "command": shlex.join(cmd),
                    "commit": meta["commit"],
                    "machine": meta["machine"],
                    "build": a.build,
                    "conditions": a.conditions,
                    "started_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                }, f, indent=2)
            print(f"[{n}/{len(runs)}] {name}", file=sys.stderr, flush=True)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
            code = proc.wait()
            proc = None
            # loadgen exits 1 on loss or errors and still writes its report: the table says so.
            path = os.path.join(out, "report.json")
            if not os.path.exists(path):
                sys.exit(f"{name}: loadgen exited {code} without a report")
            with open(path) as f:
                results[name] = figures(json.load(f))
    finally:
        stop(proc, 15)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    meta["elapsed_s"] = time.time() - t0
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"meta": meta, "runs": results}, f, indent=2)
    write_readme(a, results, meta)
    print(os.path.join(a.out, "README.md"))


if __name__ == "__main__":
    main()
