#!/usr/bin/env python3
"""Pushpin (Debian's `pushpin`) as a fan-out peer, with the GRIP origin it needs, in one command.

Pushpin is a proxy: a client's request goes through it to an origin, and the origin's answer
tells Pushpin to hold the connection and subscribe it to a channel (GRIP). This script writes
a configuration of its own into a temporary directory, starts a small origin (in this process)
and Pushpin's runner (which starts its several processes), and prints

    feedlab listening on http://127.0.0.1:PORT/       (clients: GET /sub/<channel>)
    pushpin publish on http://127.0.0.1:PUBLISH/       (POST /publish/, Pushpin's HTTP API)

SIGTERM or SIGINT stops Pushpin (by its runner's PID: the runner stops the processes it
started) and the origin, and removes the directory. Drive it with

    loadgen --target pushpin --url http://127.0.0.1:PORT/ --publish-url http://127.0.0.1:PUBLISH/

The origin answers `GET /sub/<channel>` with `Grip-Hold: stream` and `Grip-Channel` (an SSE
stream: loadgen publishes each event's `http-stream` content as `id: N\\ndata: <envelope>\\n\\n`,
the bytes feedlab's server sends), and a WebSocket (WebSocket-over-HTTP, `over_http` in the
route) with a `subscribe` control message. It sets no `Grip-Keep-Alive`: no heartbeats, as
feedlab sends none on a busy stream.

Fairness: Pushpin's handler limits deliveries per second (`message_rate`, 2,500 by default)
and queues at most `message_hwm` (25,000) past that rate, dropping the rest; both are lifted
here (MESSAGE_RATE, MESSAGE_HWM below: a fan-out to 10,000 clients at 20 events/s is 200,000
deliveries a second) and reported by `--print-settings`. Compression off
(`allow_compression=false`). Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import configparser
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHIPPED_CONF = Path("/etc/pushpin/pushpin.conf")
# Lifted per-subscriber-fan-out limits (see the module doc): deliveries per second, and how many
# may wait past that rate.
MESSAGE_RATE = 10_000_000
MESSAGE_HWM = 10_000_000
CLIENT_MAXCONN = 50_000
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CHANNEL = re.compile(r"^/sub/([A-Za-z0-9_-]{1,100})(?:\?.*)?$")


def settings(port: int, publish_port: int, work: Path) -> dict[str, dict[str, str]]:
    """What this script sets in Pushpin's configuration, over the shipped file's values."""
    return {
        "global": {"rundir": str(work / "run"), "ipc_prefix": f"pushpin-{os.getpid()}-"},
        "runner": {
            "http_port": str(port),
            "logdir": str(work / "log"),
            "log_level": os.environ.get("FEEDLAB_PUSHPIN_LOG_LEVEL", "1"),
            "client_maxconn": str(CLIENT_MAXCONN),
            "allow_compression": "false",
            # zurl makes the requests to the origin: Debian's file expects a system-wide zurl
            # service; here the runner starts one of this instance's own.
            "services": "condure,zurl,pushpin-proxy,pushpin-handler",
        },
        "proxy": {
            "routesfile": str(work / "routes"),
            "debug": "false",
            "updates_check": "off",
            "zurl_out_specs": "ipc://{rundir}/{ipc_prefix}zurl-in",
            "zurl_out_stream_specs": "ipc://{rundir}/{ipc_prefix}zurl-in-stream",
            "zurl_in_specs": "ipc://{rundir}/{ipc_prefix}zurl-out",
        },
        "handler": {
            "push_in_http_addr": "127.0.0.1",
            "push_in_http_port": str(publish_port),
            "message_rate": str(MESSAGE_RATE),
            "message_hwm": str(MESSAGE_HWM),
            # The shipped file puts these on fixed TCP ports: two instances (a test beside a
            # benchmark) would clash, so they go to sockets in this instance's own directory.
            "push_in_spec": "ipc://{rundir}/{ipc_prefix}push-in",
            "push_in_sub_specs": "ipc://{rundir}/{ipc_prefix}push-in-sub",
            "command_spec": "ipc://{rundir}/{ipc_prefix}handler-command",
        },
    }


def write_config(port: int, publish_port: int, origin_port: int, work: Path) -> Path:
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.optionxform = str  # keys as written
    conf.read(SHIPPED_CONF)
    for section, values in settings(port, publish_port, work).items():
        if not conf.has_section(section):
            conf.add_section(section)
        for k, v in values.items():
            conf.set(section, k, v)
    # The shipped file names its internal.conf relative to {libdir}: keep it as it is.
    (work / "run").mkdir()
    (work / "log").mkdir()
    (work / "routes").write_text(f"* 127.0.0.1:{origin_port},over_http\n")
    path = work / "pushpin.conf"
    with open(path, "w") as f:
        conf.write(f, space_around_delimiters=False)
    return path


class Origin(http.server.BaseHTTPRequestHandler):
    """The GRIP origin: holds SSE streams and subscribes WebSockets to the channel in the path."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def reply(self, status: int, headers: dict[str, str], body: bytes = b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        m = CHANNEL.match(self.path)
        if not m:
            self.reply(404, {"Content-Type": "text/plain"}, b"GET /sub/<channel>\n")
            return
        self.reply(200, {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Grip-Hold": "stream",
            "Grip-Channel": m.group(1),
        })

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        m = CHANNEL.match(self.path)
        if not m or "websocket-events" not in (self.headers.get("Content-Type") or ""):
            self.reply(404, {"Content-Type": "text/plain"}, b"WebSocket-over-HTTP at /sub/<channel>\n")
            return
        events = b""
        if body.startswith(b"OPEN"):
            control = b'c:' + json.dumps({"type": "subscribe", "channel": m.group(1)}).encode()
            events = b"OPEN\r\n" + b"TEXT %x\r\n" % len(control) + control + b"\r\n"
        elif b"CLOSE" in body:
            # Acknowledge the client's close with the same event.
            events = body[body.index(b"CLOSE"):]
        self.reply(200, {
            "Content-Type": "application/websocket-events",
            "Sec-WebSocket-Extensions": "grip",
        }, events)


class OriginServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def version(binary: str) -> str:
    try:
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="client port (0: a free one)")
    ap.add_argument("--publish-port", type=int, default=0, help="publish API port (0: a free one)")
    ap.add_argument("--print-settings", action="store_true",
                    help="print what this script sets over the shipped configuration, and the version, as JSON")
    a = ap.parse_args()
    binary = shutil.which("pushpin")
    if a.print_settings:
        print(json.dumps({"version": version(binary) if binary else None,
                          "settings": settings(7999, 5561, Path("<work>")),
                          "routes": "* 127.0.0.1:<origin>,over_http"}, indent=1))
        return 0
    if not binary or not SHIPPED_CONF.exists():
        print("pushpin is not installed: apt-get install pushpin (test.sh does)", file=sys.stderr)
        return 3
    port = a.port or free_port()
    publish_port = a.publish_port or free_port()
    work = Path(tempfile.mkdtemp(prefix="feedlab-pushpin-"))
    origin = OriginServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    conf = write_config(port, publish_port, origin.server_address[1], work)
    log = open(work / "runner.log", "w")
    # --port with an address: clients on loopback only (the file's http_port listens on all).
    proc = subprocess.Popen([binary, "--config", str(conf), "--port", f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, cwd=work)

    def stop(*_):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        origin.shutdown()
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    deadline = time.monotonic() + START_TIMEOUT_S
    if not (wait_port(port, proc, deadline) and wait_port(publish_port, proc, deadline)):
        log.flush()
        tail = (work / "runner.log").read_text(errors="replace")[-1500:]
        print(f"pushpin did not start: {tail or 'no output'}", file=sys.stderr)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        return 1
    print(f"feedlab listening on http://127.0.0.1:{port}/", flush=True)
    print(f"pushpin publish on http://127.0.0.1:{publish_port}/", flush=True)
    print(f"pushpin {version(binary)}; message_rate={MESSAGE_RATE} message_hwm={MESSAGE_HWM}", flush=True)
    while proc.poll() is None:
        time.sleep(0.5)
    print(f"pushpin exited with {proc.returncode}", file=sys.stderr)
    origin.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
