#!/usr/bin/env python3
"""The intermediaries matrix (issue #28): what nginx, HAProxy, Apache httpd, Caddy, Varnish
and Squid do to each of feedlab's transports, with their packaged/documented defaults
(deploy/<name>.default.*) and with feedlab's recommended settings (deploy/<name>.*).

Two parts, both through the real software, started by the project on free loopback ports:

1. Function cells: `loadgen --proxy NAME --proxy-config FLAVOR`, all four transports at once
   for a few seconds: does each deliver every event once (lost, duplicated), does the
   WebSocket upgrade pass, publish-to-receipt latency (a buffering proxy shows here).
2. Probes (this script's own sockets through the same intermediary, started with
   `cargo run -p loadgen --example intermediary`), all at once in one window of --window s,
   against two servers: a QUIET one (no ticker, heartbeats off, long polls held 900 s) and one
   with feedlab's defaults (15 s heartbeat, 25 s long-poll hold):
   - idle: is a quiet SSE stream / WebSocket / held long poll cut, after how long, with what
     (status, close) - and does the 15 s heartbeat keep it open; and does a WebSocket on which
     only the client speaks (an unsolicited pong every 10 s) stay open;
   - SSE delivery: 5 events published 200 ms apart while an SSE client (sending
     `Accept-Encoding: gzip`, as browsers do) reads through the proxy with the server's own
     gzip off: first byte after the first publish, whether the 5 arrive spread or in one burst,
     and whether the proxy compressed the stream (Content-Encoding at the client).
   Plus emulations of a load balancer's idle timeout, labelled as such: nginx with
   proxy_read_timeout 60 s (AWS ALB's default idle timeout) and 100 s (Cloudflare's Proxy
   Read Timeout).

3. HTTP/2 cells, for each intermediary that terminates TLS (nginx, HAProxy, Apache, Caddy), with
   both configurations: `loadgen --proxy NAME --tls on --http 2`, the four transports through the
   TLS front of the committed configuration (a self-signed certificate made for the run, h2
   offered by ALPN), as a browser reaches a production proxy: polls, long polls and SSE as
   streams of one HTTP/2 connection per client, the WebSocket on its own HTTP/1.1 connection
   (what a browser does unless the proxy advertises RFC 8441's SETTINGS_ENABLE_CONNECT_PROTOCOL,
   which loadgen reads from the front's SETTINGS and records). The servers behind the proxy are
   plain HTTP/1.1 without h2c, so the proxy speaks HTTP/1.1 to them. Varnish has no TLS; Squid
   is a forward proxy whose CONNECT tunnels whatever the client speaks.

Writes results/intermediaries/matrix.json and matrix.md (the book's table, docs/src/guide/proxies.md, is matrix.md's).
Time: the function cells take about 15 s each (12 cells and 8 HTTP/2 cells: ~5 min on 2 cores),
the probe window is --window s (default 330 s, above Apache's 300 s default ProxyTimeout).
About 11 min.

    cargo build -p loadgen --bins --example intermediary -p server
    python3 scripts/intermediaries/matrix.py [--window 330] [--only nginx,haproxy] [--skip-function] [--skip-probes] [--skip-h2]
"""

import argparse
import base64
import json
import shlex
import os
import socket
import subprocess
import sys
import threading
import time
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.path.join(ROOT, "target", "debug")
OUT = os.path.join(ROOT, "results", "intermediaries")
SOFTWARE = ["nginx", "haproxy", "apache", "caddy", "varnish", "squid"]
# Those with a TLS front (HTTP/2 offered by ALPN) in their committed configurations.
TLS_FRONT = ["nginx", "haproxy", "apache", "caddy"]
NO_TLS_FRONT = {
    "varnish": "no TLS: Varnish terminates none (a TLS terminator in front of it is another proxy)",
    "squid": "forward proxy: CONNECT tunnels whatever the client speaks to the server",
}
FLAVORS = ["default", "recommended"]
TRANSPORTS = ["short-poll", "long-poll", "sse", "ws"]
CONFIG_FILES = {
    ("nginx", "default"): "deploy/nginx.default.conf",
    ("nginx", "recommended"): "deploy/nginx.conf",
    ("haproxy", "default"): "deploy/haproxy.default.conf",
    ("haproxy", "recommended"): "deploy/haproxy.conf",
    ("apache", "default"): "deploy/apache.default.conf",
    ("apache", "recommended"): "deploy/apache.conf",
    ("caddy", "default"): "deploy/caddy.default.Caddyfile",
    ("caddy", "recommended"): "deploy/caddy.Caddyfile",
    ("varnish", "default"): "deploy/varnish.default.vcl",
    ("varnish", "recommended"): "deploy/varnish.vcl",
    ("squid", "default"): "deploy/squid.default.conf",
    ("squid", "recommended"): "deploy/squid.conf",
}
# Emulations of a managed load balancer's idle timeout, by configuration (labelled so).
EMULATIONS = {
    "alb-emulation": (
        "60s",
        "AWS Application Load Balancer's connection idle timeout, 60 s by default (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html: 'By default, ELB sets the idle timeout value for your load balancer to 60 seconds'); emulated by nginx with deploy/nginx.conf and proxy_read_timeout 60s",
    ),
    "cloudflare-emulation": (
        "100s",
        "Cloudflare's Proxy Read Timeout, 100 s by default (https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors/error-524/: 'the default 100 seconds Proxy Read Timeout', answered 524); emulated by nginx with deploy/nginx.conf and proxy_read_timeout 100s, which answers 504 and also applies between reads of an open stream",
    ),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(addr, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(addr, timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    def __init__(self, args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [os.path.join(TARGET, "server"), "--bind", f"127.0.0.1:{self.port}", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_port(("127.0.0.1", self.port)), "server did not start"
        self.addr = f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Proxy:
    """An intermediary started by loadgen's own code (the example), stopped by closing stdin."""

    def __init__(self, software, flavor, upstream, nginx_timeout=None):
        cmd = [os.path.join(TARGET, "examples", "intermediary"), software, flavor, upstream]
        if nginx_timeout:
            cmd.append(nginx_timeout)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline().split(maxsplit=3)
        if not line or line[0] != "listening":
            err = self.proc.stderr.read()
            raise RuntimeError(f"{software} {flavor}: {err.strip()}")
        host, port = line[1].rsplit(":", 1)
        self.addr = (host, int(port))
        self.forward = line[2] == "forward"
        self.version = line[3].strip() if len(line) > 3 else "unknown"

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- probes through a proxy


def open_through(proxy, server_addr):
    """A socket on which to speak to `server_addr` through `proxy`; the request target form."""
    s = socket.create_connection(proxy.addr, timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if proxy.forward:
        return s, f"http://{server_addr}"
    return s, ""


def connect_tunnel(proxy, server_addr):
    s = socket.create_connection(proxy.addr, timeout=10)
    s.sendall(f"CONNECT {server_addr} HTTP/1.1\r\nHost: {server_addr}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            raise OSError("proxy closed during CONNECT")
        head += b
    status = head.split(b"\r\n")[0].decode()
    if status.split()[1] != "200":
        raise OSError(f"CONNECT refused: {status}")
    return s


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed before the response head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def wait_closed(s, window, t0):
    """Reads until the connection ends or `window` s pass since t0: (cut_at_s or None, bytes)."""
    total = 0
    while True:
        left = window - (time.time() - t0)
        if left <= 0:
            return None, total
        s.settimeout(min(left, 5))
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return round(time.time() - t0, 1), total
        if not b:
            return round(time.time() - t0, 1), total
        total += len(b)


def probe_sse_idle(proxy, server, window):
    t0 = time.time()
    try:
        s, prefix = open_through(proxy, server.addr)
        s.sendall(
            f"GET {prefix}/sse HTTP/1.1\r\nHost: {server.addr}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status, headers, _ = read_head(s)
        if status != 200:
            return {"ok": False, "status": status, "why": f"HTTP {status} for the stream"}
        cut, n = wait_closed(s, window, t0)
        s.close()
        return {"ok": True, "status": status, "cut_after_s": cut, "bytes": n}
    except OSError as e:
        return {"ok": False, "why": str(e)}


def probe_long_poll(proxy, server, window):
    t0 = time.time()
    try:
        s, prefix = open_through(proxy, server.addr)
        s.sendall(f"GET {prefix}/long-poll?since=0 HTTP/1.1\r\nHost: {server.addr}\r\n\r\n".encode())
        s.settimeout(window)
        try:
            status, headers, _ = read_head(s)
        except socket.timeout:
            return {"ok": True, "answered_after_s": None}
        except OSError as e:
            return {"ok": True, "answered_after_s": round(time.time() - t0, 1), "status": None, "why": str(e)}
        return {
            "ok": True,
            "answered_after_s": round(time.time() - t0, 1),
            "status": status,
            "by": headers.get("server", ""),
        }
    except OSError as e:
        return {"ok": False, "why": str(e)}


def probe_ws_idle(proxy, server, window):
    from websockets.sync.client import connect

    t0 = time.time()
    try:
        sock = connect_tunnel(proxy, server.addr) if proxy.forward else socket.create_connection(proxy.addr, timeout=10)
        host = server.addr if proxy.forward else f"{proxy.addr[0]}:{proxy.addr[1]}"
        ws = connect(f"ws://{host}/ws", sock=sock, ping_interval=None, close_timeout=1, open_timeout=10)
    except Exception as e:  # noqa: BLE001 - any handshake failure is the finding
        return {"ok": False, "why": f"{type(e).__name__}: {e}"}
    t0 = time.time()
    while True:
        left = window - (time.time() - t0)
        if left <= 0:
            ws.close()
            return {"ok": True, "cut_after_s": None}
        try:
            ws.recv(timeout=min(left, 5))
        except TimeoutError:
            continue
        except Exception as e:  # noqa: BLE001 - the close is the finding
            code = getattr(getattr(e, "rcvd", None), "code", None)
            return {"ok": True, "cut_after_s": round(time.time() - t0, 1), "close": code, "why": type(e).__name__}


def probe_ws_client_pongs(proxy, server, window):
    """A quiet WebSocket on which only the client speaks: an unsolicited pong every 10 s (RFC 6455
    allows it as a one-way heartbeat; the server does not answer). Does client traffic alone
    keep the proxy from cutting?"""
    from websockets.sync.client import connect

    try:
        sock = connect_tunnel(proxy, server.addr) if proxy.forward else socket.create_connection(proxy.addr, timeout=10)
        host = server.addr if proxy.forward else f"{proxy.addr[0]}:{proxy.addr[1]}"
        ws = connect(f"ws://{host}/ws", sock=sock, ping_interval=None, close_timeout=1, open_timeout=10)
    except Exception as e:  # noqa: BLE001 - any handshake failure is the finding
        return {"ok": False, "why": f"{type(e).__name__}: {e}"}
    t0 = time.time()
    next_pong = t0 + 10
    while True:
        now = time.time()
        if now - t0 >= window:
            ws.close()
            return {"ok": True, "cut_after_s": None}
        if now >= next_pong:
            try:
                ws.pong(b"client")
            except Exception:  # noqa: BLE001 - a closed connection shows in recv
                pass
            next_pong += 10
        try:
            ws.recv(timeout=min(1.0, max(0.05, next_pong - time.time())))
        except TimeoutError:
            continue
        except Exception as e:  # noqa: BLE001 - the close is the finding
            return {"ok": True, "cut_after_s": round(time.time() - t0, 1), "why": type(e).__name__}


def publish(server, nonce, n):
    s = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"probe": nonce, "n": n}).encode()
    s.sendall(
        f"POST /publish HTTP/1.1\r\nHost: {server.addr}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    s.recv(4096)
    s.close()


def probe_sse_delivery(proxy, server, lock):
    """First byte and spread of 5 events published 200 ms apart, read through the proxy."""
    try:
        s, prefix = open_through(proxy, server.addr)
        s.sendall(
            f"GET {prefix}/sse HTTP/1.1\r\nHost: {server.addr}\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip\r\n\r\n".encode()
        )
        status, headers, rest = read_head(s)
        if status != 200:
            return {"ok": False, "why": f"HTTP {status} for the stream"}
        encoding = headers.get("content-encoding", "")
        chunked = "chunked" in headers.get("transfer-encoding", "")
        time.sleep(0.5)
        arrivals = []
        got = b""
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
        with lock:  # one publisher at a time: the events are this probe's
            t_pub = time.time()
            nonce = os.urandom(6).hex()
            marker = f'"probe":"{nonce}"'.encode()
            pub = threading.Thread(target=lambda: [publish(server, nonce, i) or time.sleep(0.2) for i in range(5)])
            pub.start()
            s.settimeout(0.1)
            deadline = t_pub + 5
            while time.time() < deadline and len(arrivals) < 5:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    continue
                if not b:
                    break
                raw = b
                if chunked:
                    raw = b  # chunk framing left in place: only event markers are counted
                if inflater:
                    try:
                        raw = inflater.decompress(b)
                    except zlib.error:
                        raw = b""
                got += raw
                seen = got.count(marker)
                while len(arrivals) < seen:
                    arrivals.append(round(time.time() - t_pub, 3))
            pub.join()
        s.close()
        return {
            "ok": len(arrivals) == 5,
            "content_encoding": encoding or "identity",
            "first_s": arrivals[0] if arrivals else None,
            "arrivals_s": arrivals,
            # Published 200 ms apart: two arriving within 100 ms of each other were held together.
            "bunched": any(b - a < 0.1 for a, b in zip(arrivals, arrivals[1:])),
        }
    except OSError as e:
        return {"ok": False, "why": str(e)}


# ---------------------------------------------------------------- function cells (loadgen)


def function_cell(software, flavor, runs_dir, h2=False):
    out = os.path.join(runs_dir, f"{software}-{flavor}" + ("-h2" if h2 else ""))
    cmd = [
        os.path.join(TARGET, "loadgen"),
        "--server-bin", os.path.join(TARGET, "loadgen"),
        "--proxy", software, "--proxy-config", flavor,
        "--transports", "poll,long-poll,sse,ws", "--concurrent",
        "--clients", "3", "--duration", "3s", "--rate", "5", "--poll-interval", "500ms",
        "--drain", "1500ms", "--http", "2" if h2 else "1.1", "--repeat", "1", "--seed", "28",
        "--out", out,
    ]
    if h2:
        cmd += ["--tls", "on"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cell = {"command": " ".join(["loadgen"] + cmd[1:]).replace(ROOT + "/", ""), "seconds": round(time.time() - t0, 1)}
    try:
        report = json.load(open(os.path.join(out, "report.json")))
    except OSError:
        cell["error"] = (p.stderr or p.stdout).strip()[-500:]
        return cell
    cell["proxy_software"] = report["server"].get("proxy_software")
    for t, r in report["transports"].items():
        lat = r.get("latency_us") or {}
        cell[t] = {
            "expected": r["events_expected"],
            "received": r["events_received"],
            "lost": r["lost"],
            "duplicated": r["duplicates"],
            "gaps": r["gaps"],
            "disconnects": r["disconnects"],
            "errors": r.get("errors", {}),
            "latency_p50_ms": round(lat["p50"] / 1000, 2) if lat.get("count") else None,
            "latency_p99_ms": round(lat["p99"] / 1000, 2) if lat.get("count") else None,
            "http": r.get("http"),
            "tls": r.get("tls", False),
        }
    # Keep the report's Markdown and JSON only (the run's evidence), not the charts.
    for f in os.listdir(out):
        if f not in ("report.json", "report.md"):
            os.remove(os.path.join(out, f))
    return cell


# ---------------------------------------------------------------- verdicts


def h2_verdict(name, h2):
    """(short verdict, why) for the intermediary's TLS front with HTTP/2, from its cell."""
    if name in NO_TLS_FRONT:
        return "no TLS front", NO_TLS_FRONT[name]
    if not h2:
        return "not run", ""
    if "error" in h2:
        return "breaks", h2["error"][-200:]
    broken, notes = [], []
    for t in TRANSPORTS:
        f = h2.get(t)
        if f is None:
            broken.append(f"{t}: not measured")
            continue
        if f["received"] < f["expected"] or f["lost"] or f["duplicated"] or f["disconnects"]:
            errs = ", ".join(f"{k} {v}" for k, v in f["errors"].items()) or "no error"
            broken.append(f"{t} {f['received']}/{f['expected']} events, {f['disconnects']} cut ({errs})")
    if broken:
        return "breaks", "; ".join(broken)
    over = [t for t in TRANSPORTS if t != "ws" and (h2.get(t) or {}).get("http") == "2"]
    notes.append(("%s over HTTP/2" % ", ".join(over)) if over else "nothing over HTTP/2")
    ws = (h2.get("proxy_software") or "")
    if "RFC 8441) advertised" in ws:
        notes.append("RFC 8441 advertised: a browser carries the WebSocket on the HTTP/2 connection (loadgen's took HTTP/1.1)")
    elif "RFC 8441) not advertised" in ws:
        notes.append("WebSocket on its own HTTP/1.1 connection (RFC 8441 not advertised)")
    notes.append("HTTP/1.1 to the server")
    slow = [f"{t} p50 {h2[t]['latency_p50_ms']} ms" for t in ("long-poll", "sse", "ws")
            if (h2[t].get("latency_p50_ms") or 0) > 100]
    if slow:
        notes.append("; ".join(slow))
    return "works as is", "; ".join(notes)


def verdict(name, flavor, t, fn, quiet, beat, delivery):
    """(short verdict, why) for one cell from its measurements; 'not run' when missing."""
    if fn is None or t not in fn:
        return "not run", ""
    f = fn[t]
    if f["received"] < f["expected"] or f["lost"] or f["duplicated"]:
        errs = ", ".join(f"{k} {v}" for k, v in f["errors"].items()) or "no error"
        why = f"{f['received']}/{f['expected']} events delivered ({errs})"
        if t == "ws" and quiet and not quiet.get("ws", {}).get("ok", True):
            why += "; handshake: " + quiet["ws"].get("why", "")[:80]
        if t == "sse" and quiet and not quiet.get("sse", {}).get("ok", True):
            why += "; " + quiet["sse"].get("why", "")
        return "breaks", why
    notes = []
    setting = None
    if f["errors"]:
        notes.append("every event delivered, but client errors: " + ", ".join(f"{k} {v}" for k, v in f["errors"].items()))
    key = {"sse": "sse", "ws": "ws", "long-poll": "long-poll"}.get(t)
    if quiet is not None and key:
        q = quiet.get(key, {})
        b = (beat or {}).get(key, {})
        if key == "long-poll":
            at, status = q.get("answered_after_s"), q.get("status")
            if at is not None and at < 890:
                notes.append(f"a held long poll is cut after {at} s ({status or 'closed'})")
                setting = f"long-poll hold below {int(at)} s (feedlab: 25 s)"
        else:
            at = q.get("cut_after_s")
            if at is not None:
                held = b.get("ok") and b.get("cut_after_s") is None
                notes.append(f"quiet for {at} s: cut" + ("; the 15 s heartbeat keeps it open" if held else ""))
                if key == "ws" and "ws-client-pongs" in quiet:
                    cp = quiet["ws-client-pongs"]
                    if cp.get("cut_after_s") is not None:
                        notes.append(f"client pongs every 10 s do not help (cut after {cp['cut_after_s']} s)")
                    elif cp.get("ok"):
                        notes.append("client pongs every 10 s alone keep it open")
                setting = "heartbeat below %d s (feedlab: 15 s)" % int(at) if held else None
                if not held:
                    return "breaks", "; ".join(notes + [f"cut after {b.get('cut_after_s')} s even with the 15 s heartbeat"])
    if t == "sse" and delivery:
        if delivery.get("ok"):
            notes.append(f"first event after {int(delivery['first_s'] * 1000)} ms")
            if delivery["bunched"]:
                notes.append("events published 200 ms apart arrive together (%s s)" % ", ".join(str(a) for a in delivery["arrivals_s"]))
                setting = setting or "no MSG_MORE hold (HAProxy: option http-no-delay)"
            if delivery["content_encoding"] != "identity":
                notes.append(f"proxy compressed it ({delivery['content_encoding']})")
        p50 = f.get("latency_p50_ms")
        if p50 is not None and p50 > 100:
            notes.append(f"loadgen p50 latency {p50} ms")
    if t in ("short-poll", "long-poll", "ws") and f.get("latency_p50_ms") and t != "short-poll" and f["latency_p50_ms"] > 100:
        notes.append(f"p50 latency {f['latency_p50_ms']} ms")
    if setting:
        return "works with " + setting, "; ".join(notes)
    return "works as is", "; ".join(notes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=330, help="how long idle probes wait for a cut (s)")
    ap.add_argument("--only", default=",".join(SOFTWARE))
    ap.add_argument("--skip-function", action="store_true", help="keep the function cells of the last matrix.json")
    ap.add_argument("--skip-probes", action="store_true", help="keep the probes of the last matrix.json")
    ap.add_argument("--skip-h2", action="store_true", help="keep the HTTP/2 cells of the last matrix.json")
    ap.add_argument("--h2-note", default="", help="said of the HTTP/2 cells' run (e.g. measured under load)")
    args = ap.parse_args()
    only = args.only.split(",")
    started = time.time()
    os.makedirs(OUT, exist_ok=True)
    previous = {}
    try:
        previous = json.load(open(os.path.join(OUT, "matrix.json")))
    except OSError:
        pass
    rows = {r["name"] + "/" + r["flavor"]: r for r in previous.get("rows", [])}

    def row(name, flavor):
        return rows.setdefault(name + "/" + flavor, {"name": name, "flavor": flavor})

    if not args.skip_function:
        runs = os.path.join(OUT, "runs")
        os.makedirs(runs, exist_ok=True)
        for name in only:
            for flavor in FLAVORS:
                print(f"function: {name} {flavor}", file=sys.stderr, flush=True)
                row(name, flavor)["function"] = function_cell(name, flavor, runs)

    h2_run = previous.get("h2_run")
    if not args.skip_h2:
        h2_started = time.time()
        runs = os.path.join(OUT, "runs")
        os.makedirs(runs, exist_ok=True)
        for name in [n for n in only if n in TLS_FRONT]:
            for flavor in FLAVORS:
                print(f"http/2: {name} {flavor}", file=sys.stderr, flush=True)
                row(name, flavor)["h2"] = function_cell(name, flavor, runs, h2=True)
        h2_run = {
            "command": ("python3 scripts/intermediaries/matrix.py " + shlex.join(sys.argv[1:])).strip(),
            "seconds": round(time.time() - h2_started),
            "note": args.h2_note,
        }

    if not args.skip_probes:
        quiet = Server(["--rate", "0", "--heartbeat", "3600s", "--ws-client-timeout", "7200s",
                        "--long-poll-timeout", "900s", "--long-poll-max", "900s", "--http-gzip", "off"])
        beat = Server(["--rate", "0", "--heartbeat", "15s"])
        # Its own server: the probe's events must not wake the quiet connections.
        deliv = Server(["--rate", "0", "--http-gzip", "off"])
        lock = threading.Lock()
        targets = [(n, f, None) for n in only for f in FLAVORS]
        if "nginx" in only:
            targets += [(e, "recommended", t) for e, (t, _) in EMULATIONS.items()]
        proxies, threads, results = [], [], {}
        try:
            for name, flavor, timeout in targets:
                software = "nginx" if timeout else name
                for label, srv in (("quiet", quiet), ("heartbeat", beat), ("delivery", deliv)):
                    try:
                        p = Proxy(software, flavor, srv.addr, timeout)
                    except RuntimeError as e:
                        results[(name, flavor, label)] = {"error": str(e)}
                        continue
                    proxies.append(p)
                    r = results.setdefault((name, flavor, label), {"version": p.version})
                    kinds = [("sse", probe_sse_idle), ("long-poll", probe_long_poll), ("ws", probe_ws_idle)]
                    if label == "quiet":
                        kinds.append(("ws-client-pongs", probe_ws_client_pongs))
                    if label == "delivery":
                        kinds = []
                    for kind, fn in kinds:
                        th = threading.Thread(target=lambda r=r, k=kind, fn=fn, p=p, s=srv: r.__setitem__(k, fn(p, s, args.window)))
                        th.start()
                        threads.append(th)
                    if label == "delivery":
                        th = threading.Thread(target=lambda r=r, p=p: r.__setitem__("sse-delivery", probe_sse_delivery(p, deliv, lock)))
                        th.start()
                        threads.append(th)
            print(f"probes: {len(proxies)} intermediaries, waiting up to {args.window} s", file=sys.stderr, flush=True)
            for th in threads:
                th.join()
        finally:
            for p in proxies:
                p.stop()
            quiet.stop()
            beat.stop()
            deliv.stop()
        for (name, flavor, label), r in results.items():
            rr = row(name, flavor)
            rr.setdefault("probes", {})[label] = r
            rr["probes"]["window_s"] = args.window
            if r.get("version"):
                rr["version"] = r["version"]

    # Verdicts and the table.
    out_rows = []
    order = [(n, f) for n in SOFTWARE for f in FLAVORS] + [(e, "recommended") for e in EMULATIONS]
    for name, flavor in order:
        r = rows.get(name + "/" + flavor)
        if r is None:
            continue
        probes = r.get("probes", {})
        fn = r.get("function")
        if name in EMULATIONS:
            # The emulation's function is nginx recommended's; only its idle behaviour differs.
            fn = (rows.get("nginx/recommended") or {}).get("function")
            r["label"] = EMULATIONS[name][1]
        quiet_p = probes.get("quiet")
        cells = {}
        for t in TRANSPORTS:
            v, why = verdict(name, flavor, t, fn, quiet_p, probes.get("heartbeat"),
                             probes.get("delivery", {}).get("sse-delivery"))
            cells[t] = {"verdict": v, "why": why}
        if name not in EMULATIONS:
            v, why = h2_verdict(name, r.get("h2"))
            cells["h2"] = {"verdict": v, "why": why}
        r["cells"] = cells
        r["config"] = CONFIG_FILES.get((name, flavor), "deploy/nginx.conf")
        out_rows.append(r)
    elapsed = round(time.time() - started)
    command = "python3 scripts/intermediaries/matrix.py " + " ".join(sys.argv[1:])
    window = args.window
    if args.skip_function and args.skip_probes and previous:
        # The function cells and probes are the last run's, with their command and time (the
        # HTTP/2 cells, when run alone, have their own: h2_run).
        command, elapsed, window = previous["command"], previous["seconds"], previous["window_s"]
    doc = {
        "command": command.strip(),
        "seconds": elapsed,
        "window_s": window,
        "h2_run": h2_run,
        "http2_to_client": "the HTTP/2 column: the four transports through the TLS front of the same configuration (loadgen --tls on --http 2), as browsers reach a proxy",
        "rows": out_rows,
    }
    json.dump(doc, open(os.path.join(OUT, "matrix.json"), "w"), indent=1)
    md = render(doc)
    open(os.path.join(OUT, "matrix.md"), "w").write(md)
    print(md)
    print(f"matrix: {elapsed} s", file=sys.stderr)


def render(doc):
    lines = [
        "# Intermediaries matrix",
        "",
        f"`{doc['command'].strip()}` — {doc['seconds']} s on this machine. Each cell: the verdict, then what was measured.",
        "Function: all four transports through the intermediary at once (loadgen, 3 clients each, 3 s, 5 events/s):",
        "every event once or it breaks. Idle: a stream / WebSocket / long poll held quiet (no events, heartbeats off,",
        f"long polls held 900 s) for up to {doc['window_s']:g} s, and again with feedlab's 15 s heartbeat. SSE: 5 events",
        "published 200 ms apart, read through the proxy. HTTP/2 to the client: " + doc["http2_to_client"] + ".",
        "",
    ]
    if doc.get("h2_run") and doc["h2_run"]["command"] != doc["command"]:
        lines += [
            f"The HTTP/2 column: `{doc['h2_run']['command']}`, {doc['h2_run']['seconds']} s"
            + (f" ({doc['h2_run']['note']})" if doc["h2_run"].get("note") else "") + ".",
            "",
        ]
    lines += [
        "<!-- matrix table -->",
        "| intermediary | config | short poll | long poll | SSE | WebSocket | over TLS with HTTP/2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        def c(t):
            cell = r["cells"].get(t)
            if cell is None:
                return "—"
            return f"**{cell['verdict']}**" + (f": {cell['why']}" if cell["why"] else "")
        lines.append(
            f"| {r['name']} | {r['flavor']} (`{r['config']}`) | {c('short-poll')} | {c('long-poll')} | {c('sse')} | {c('ws')} | {c('h2')} |"
        )
    lines.append("<!-- /matrix table -->")
    lines += ["", "Versions:", ""]
    seen = set()
    for r in doc["rows"]:
        v = r.get("version") or ((r.get("function") or {}).get("proxy_software") or "")
        if r["name"] not in seen and v:
            seen.add(r["name"])
            lines.append(f"- {r['name']}: {v}")
    emul = [r for r in doc["rows"] if r.get("label")]
    if emul:
        lines += ["", "Emulations (configured timeouts, not the services):", ""]
        for r in emul:
            lines.append(f"- {r['name']}: {r['label']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
