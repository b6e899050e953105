"""The production peers beside feedlab, as the benchmark scripts start, measure and stop them.

One entry per peer in PEERS: the command that starts it (each prints feedlab's `feedlab
listening on http://ADDR/` line first), the loadgen `--target` that drives it, the transports
it serves, and its fairness settings (named in every result that used it). `start()` runs one
on free loopback ports; `Running.pids()` is every process of the peer (Pushpin is several), so
CPU and memory are summed over all of them; `stop()` sends SIGTERM to the process started
(Pushpin's launcher stops the processes it started) and waits.

Installing: `ensure(name)` runs `apt-get install pushpin` or `npm ci` in scripts/peers/node
(from package-lock.json) when what the peer needs is missing; test.sh does the same.

    python3 scripts/peers/peers.py list           # the peers, installed or not, and versions
    python3 scripts/peers/peers.py serve socketio # start one in the foreground (Ctrl-C stops it)

Python 3.11 standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclasses.dataclass(frozen=True)
class PeerSpec:
    name: str
    target: str  # loadgen --target
    transports: tuple[str, ...]
    fairness: str
    # "node" (needs scripts/peers/node/node_modules/<package>) or "apt" (a Debian package).
    needs: tuple[str, str]

    def command(self) -> list[str]:
        if self.name == "pushpin":
            return [sys.executable, str(HERE / "pushpin.py"), "--port", "0"]
        script = {"socketio": "socketio.js", "node-http": "http.js"}[self.name]
        return [shutil.which("node") or "node", str(NODE_DIR / script), "--port", "0"]


PEERS = {
    p.name: p
    for p in (
        PeerSpec(
            "pushpin", "pushpin", ("sse", "ws"),
            "message_rate and message_hwm lifted to 10,000,000; no Grip-Keep-Alive (no heartbeats); "
            "compression off; SSE records `id: N\\ndata: <envelope>\\n\\n` as feedlab's; "
            "a GRIP origin (Python, in the launcher) answers each subscription",
            ("apt", "pushpin"),
        ),
        PeerSpec(
            "socketio", "socketio", ("ws", "long-poll"),
            "perMessageDeflate and httpCompression off; pingInterval/pingTimeout 1e9 ms (heartbeats off); "
            "first HTTP request discarded (its memory advice); bufferutil and utf-8-validate installed; "
            "each event framed as 42[\"message\",<envelope>] (14 bytes more than feedlab's frame)",
            ("node", "socket.io"),
        ),
        PeerSpec(
            "node-http", "node", ("sse", "ws"),
            "node:http for SSE (feedlab's bytes), ws for WebSockets with perMessageDeflate off; "
            "no heartbeats; buffers without bound (no drops)",
            ("node", "ws"),
        ),
    )
}


def missing(spec: PeerSpec) -> str | None:
    """Why the peer cannot start here, or None."""
    kind, what = spec.needs
    if kind == "apt":
        return None if shutil.which(what) else f"{what} is not installed (apt-get install {what})"
    if not shutil.which("node"):
        return "node is not installed (apt-get install nodejs npm)"
    if not (NODE_DIR / "node_modules" / what).is_dir():
        return f"{what} is not installed (cd scripts/peers/node && npm ci)"
    return None


def ensure(spec: PeerSpec) -> str:
    """Installs what the peer needs when it is missing; returns what was done ("" if nothing)."""
    if missing(spec) is None:
        return ""
    kind, what = spec.needs
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if kind == "apt":
        cmds = [sudo + ["apt-get", "update", "-qq"], sudo + ["apt-get", "install", "-y", "-qq", what]]
        cwd = None
    else:
        if not shutil.which("npm"):
            cmds = [sudo + ["apt-get", "update", "-qq"], sudo + ["apt-get", "install", "-y", "-qq", "nodejs", "npm"]]
        else:
            cmds = []
        cmds.append(["npm", "ci", "--no-audit", "--no-fund"])
        cwd = NODE_DIR
    for cmd in cmds:
        r = subprocess.run(cmd, env=env, cwd=cwd if cmd[0] == "npm" else None,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()[-500:]}")
    why = missing(spec)
    if why:
        raise RuntimeError(why)
    return "ran " + "; ".join(" ".join(c) for c in cmds)


def children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += children(p)
    return seen


@dataclasses.dataclass
class Running:
    spec: PeerSpec
    proc: subprocess.Popen
    addr: str
    publish_url: str | None
    lines: list[str]

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def loadgen_args(self) -> list[str]:
        args = ["--target", self.spec.target]
        if self.publish_url:
            args += ["--publish-url", self.publish_url]
        return args

    def stats(self) -> dict | None:
        """The Node peers' GET /peer/stats (drops, versions), else None."""
        if self.spec.name == "pushpin":
            return None
        try:
            with urllib.request.urlopen(f"http://{self.addr}/peer/stats", timeout=5) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for p in reversed(self.pids()):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait()
        return self.proc.returncode


def start(spec: PeerSpec, log_path: Path, popen=subprocess.Popen, wrap: list[str] | None = None) -> Running:
    """Starts `spec` on free loopback ports; its output goes to `log_path`. `popen` lets a caller
    register the process (bench.py's CHILDREN.start)."""
    log = open(log_path, "w")
    try:
        p = popen([*(wrap or []), *spec.command()], stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        m = re.search(r"^feedlab listening on http://([^/\s]+)/$", text, re.M)
        publish = re.search(r"^pushpin publish on (http://\S+/)$", text, re.M)
        if m and (spec.name != "pushpin" or publish):
            return Running(spec, p, m.group(1), publish.group(1) if publish else None, text.splitlines())
        if p.poll() is not None:
            break
        time.sleep(0.05)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    raise RuntimeError(f"{spec.name} did not start: {log_path.read_text(errors='replace').strip()[-1500:] or 'no output'}")


def versions(spec: PeerSpec) -> dict:
    """What runs: package versions (Node: from the lockfile's installed packages; Pushpin: its
    own --version and Debian's package version)."""
    if spec.name == "pushpin":
        out = {}
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "pushpin"], capture_output=True, text=True)
        out["debian_package"] = r.stdout.strip() or None
        r = subprocess.run([sys.executable, str(HERE / "pushpin.py"), "--print-settings"], capture_output=True, text=True)
        try:
            s = json.loads(r.stdout)
            out["version"], out["settings"] = s["version"], s["settings"]["handler"]
        except (ValueError, KeyError):
            pass
        return out
    out = {}
    node = shutil.which("node")
    if node:
        out["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    for pkg in ("socket.io", "engine.io", "ws", "bufferutil", "utf-8-validate"):
        f = NODE_DIR / "node_modules" / pkg / "package.json"
        if f.exists():
            out[pkg] = json.loads(f.read_text()).get("version")
    return out


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    s = sub.add_parser("serve")
    s.add_argument("name", choices=sorted(PEERS))
    a = ap.parse_args()
    if a.cmd == "list":
        for spec in PEERS.values():
            why = missing(spec)
            print(f"{spec.name:10} --target {spec.target:9} {','.join(spec.transports):14} "
                  f"{'not installed: ' + why if why else json.dumps(versions(spec))}")
        return 0
    spec = PEERS[a.name]
    os.execvp(spec.command()[0], spec.command())
    return 0


if __name__ == "__main__":
    sys.exit(main())
