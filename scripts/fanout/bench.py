#!/usr/bin/env python3
"""Fan-out cost: the server, the floor and Nchan side by side, on all four transports.

Why this exists: issue 17 asks that the server's cost per delivery (and, polling, per request)
stay within 1.3x of `floor`, the framework-free lower bound in this repository, and at or below
Nchan's (the nginx module people run in production), with p99 latency at or below Nchan's and
idle memory per connection within 1.2x of the floor's and at most half Nchan's. Absolute numbers
on a shared 2-core machine move from minute to minute, so every number here is read against the
others measured in the same run: within each cell the variants run back to back, repeated
`--repeats` times with the order rotated each round (so no variant always goes first), and the
tables show medians with their range.

What it runs (all on 127.0.0.1, every process started here is stopped here by PID, also on
Ctrl-C):

1. Matrix: ws, sse (1000 clients x 50 events/s, 100 x 200/s, 5000 x 20/s) and long-poll,
   short-poll (1000 x 50/s, 100 x 200/s; short polls every 1 s) x variants (`--variants`,
   default server, floor and Nchan) x repeats, one worker thread (Nchan: one nginx process).
   Each run starts the variant on a free port, drives it with `loadgen --url ... --transports
   T` (`--target nchan` for Nchan), and reads its utime/stime from /proc/<pid>/stat over
   exactly the publishing phase (see "Method" below).
2. Where the time goes: `perf record -e cpu-clock -g` of every variant during a long-poll, a
   short-poll and a ws run; `perf report --no-children` tops, trimmed. Falls back to
   valgrind's callgrind when perf cannot record.
3. Idle memory: 10,000 idle WS connections, then (another server run) 10,000 idle SSE
   connections, opened by this process (floor/scripts/idle_rss.py); RSS growth per connection.
4. On request (`--sections`): a client-count sweep chart (sweep) and the server's polling alone
   at the long-poll and short-poll cells (polling).

Method (the bracket): loadgen connects every client, then publishes for --duration, then lets
clients drain (1 s; 2 s for short polling), then disconnects them. A sampler thread lists /proc/<pid>/fd of the
server until it holds one descriptor per client more than before loadgen started (all clients
connected: loadgen starts publishing within ~10 ms of that), and from then reads
/proc/<pid>/stat every 50 ms. After loadgen exits, the window is [all connected, + publish_s +
drain - 0.1 s] (publish_s from loadgen's report), interpolated between samples. So connection
set-up and teardown are outside the window; the drain (idle streams, the last deliveries, the
last short polls) is inside. CPU per delivery = (utime + stime in the window) / deliveries.

Results go to --out (default results/fanout/): README.md (tables, the command, the machine),
results.json (every raw number), SVG charts, perf/ summaries. `--sections` reruns some sections
and keeps the others from the existing results.json. The binaries are copied at the start, so a
rebuild during the run does not change what is measured.

    cargo build --release -p loadgen -p server -p floor
    python3 scripts/fanout/bench.py --dry-run       # the plan, the variants, the duration
    python3 scripts/fanout/bench.py                 # the full benchmark (about 30 minutes)
    python3 scripts/fanout/bench.py --quick         # 3 s runs, small counts, 2 repeats
                                                    # (about 8 minutes), to $TMPDIR/feedlab-fanout-quick/
    python3 scripts/fanout/bench.py --sections perf --perf-kinds long-poll,short-poll
    python3 scripts/fanout/bench.py --variants server,floor,server-actix=server:--fast-path=false

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import html
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "floor" / "scripts"))
sys.path.insert(0, str(ROOT / "scripts" / "peers"))
import idle_rss  # noqa: E402  (floor/scripts/idle_rss.py: the idle-connection client)
import peers  # noqa: E402  (scripts/peers/peers.py: Pushpin, Socket.IO, the Node relays)

CLK_TCK = os.sysconf("SC_CLK_TCK")
# 2: repeats, per-cell medians (`cells`), Nchan as the peer; a results.json of 1 is not mixed in.
SCHEMA = "feedlab-fanout/2"
SECTIONS = ("matrix", "sweep", "polling", "perf", "idle")
# What a plain `bench.py` runs (the sweep and the server-only polling section on request).
DEFAULT_SECTIONS = ("matrix", "perf", "idle")
# Issue 17's targets for the server: CPU per delivery (and per request) <= 1.3x the floor's and
# <= Nchan's, p99 <= Nchan's, idle memory per connection <= 1.2x the floor's and <= 0.5x Nchan's.
TARGETS = {"cpu_ratio": 1.3, "p99_ratio": 1.2, "idle_kib_per_connection": 5.0,
           "cpu_vs_peer": 1.0, "p99_vs_peer": 1.0, "idle_ratio": 1.2, "idle_vs_peer": 0.5}
TRANSPORTS = ("ws", "sse", "long-poll", "short-poll")
POLLING = ("long-poll", "short-poll")
DEFAULT_VARIANTS = "server,floor,nchan,pushpin,socketio,node-http"

# Full and quick settings; every one can be overridden on the command line.
FULL = dict(
    duration=10.0,
    cells="1000x50,100x200,5000x20",
    poll_cells="1000x50,100x200",
    repeats=3,
    sweep_clients="100,300,1000,3000,5000",
    sweep_rate=20.0,
    long_poll="1000x50",
    short_poll="1000x50",
    idle_count=10_000,
    perf_duration=10.0,
    perf_ws="1000x50",
)
QUICK = dict(
    duration=3.0,
    cells="100x50,50x200",
    poll_cells="100x50",
    repeats=2,
    sweep_clients="100,300,1000",
    sweep_rate=20.0,
    long_poll="100x50",
    short_poll="100x50",
    idle_count=1000,
    perf_duration=3.0,
    perf_ws="100x50",
)

# How long a server gets to print its listening line, and to exit after SIGTERM.
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
# Sampler periods: fds while waiting for every client (only during connect, outside the
# window), /proc/<pid>/stat once publishing has started.
READY_POLL_S = 0.01
SAMPLE_S = 0.05
# The window ends this long before loadgen's drain does, so the clients' teardown is outside.
TEARDOWN_MARGIN_S = 0.1


# ---------------------------------------------------------------------------------------------
# Processes: every child is registered, and stopped on the way out whatever happens.


class Children:
    """Every process this script starts. Each runs in a session of its own, so a Ctrl-C in the
    terminal reaches only this script, which then stops them in order."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd, **kw) -> subprocess.Popen:
        p = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S) -> int | None:
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(self.procs):
            # perf writes its data on SIGINT; everything else stops on SIGTERM.
            self.stop(p, signal.SIGINT if "perf" in str(p.args[:1]) else signal.SIGTERM, timeout=5)


CHILDREN = Children()


def _on_sigterm(_sig, _frame):
    raise KeyboardInterrupt("SIGTERM")


# ---------------------------------------------------------------------------------------------
# /proc


def proc_stat(pid: int) -> tuple[int, int, int]:
    """(utime, stime, threads) of a process, utime/stime in clock ticks (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        line = f.read()
    rest = line[line.rindex(")") + 2 :].split()
    return int(rest[11]), int(rest[12]), int(rest[17])


def proc_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + cpu[4]  # idle + iowait
    total = sum(cpu[:8])  # guest time is already in user
    return total - idle, total


def machine_info() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    os_name = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "kernel": os.uname().release,
        "os": os_name,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "loadavg_at_start": [float(x) for x in load],
        "clk_tck": CLK_TCK,
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
    }


class Sampler(threading.Thread):
    """Waits until the server holds `ready_fds` descriptors (every client connected), then
    samples its CPU and RSS, loadgen's CPU and the machine's, every SAMPLE_S until stopped."""

    def __init__(self, server_pid: int | list[int], loadgen_pid: int, ready_fds: int):
        super().__init__(daemon=True)
        # A peer of several processes (Pushpin) is measured over all of them, summed.
        self.pids = server_pid if isinstance(server_pid, list) else [server_pid]
        self.pid, self.lg_pid, self.ready_fds = self.pids[0], loadgen_pid, ready_fds
        self.ready_t: float | None = None
        self.max_fds = 0
        self.samples: list[tuple] = []  # (t, utime, stime, rss_kib, loadgen ticks, busy, total)
        self._halt = threading.Event()

    def sample(self):
        t = time.monotonic()
        ut = st = rss = 0
        for pid in self.pids:
            u, s_, _ = proc_stat(pid)
            ut, st, rss = ut + u, st + s_, rss + proc_rss_kib(pid)
        try:
            lu, ls, _ = proc_stat(self.lg_pid)
        except (OSError, ValueError, IndexError):
            lu, ls = (self.samples[-1][4], 0) if self.samples else (0, 0)
        busy, total = machine_jiffies()
        self.samples.append((t, ut, st, rss, lu + ls, busy, total))

    def run(self):
        try:
            while not self._halt.is_set():
                if self.ready_t is None:
                    n = sum(fd_count(p) for p in self.pids)
                    self.max_fds = max(self.max_fds, n)
                    if n >= self.ready_fds:
                        self.ready_t = time.monotonic()
                        self.sample()
                    else:
                        self._halt.wait(READY_POLL_S)
                    continue
                self._halt.wait(SAMPLE_S)
                self.sample()
        except (OSError, ValueError, IndexError):
            pass  # the server is gone: what was sampled stands

    def stop(self):
        self._halt.set()
        self.join(timeout=5)

    def at(self, t: float) -> tuple:
        """Sampled values at time t, interpolated linearly between the two samples around it."""
        s = self.samples
        if not s:
            raise ValueError("no samples")
        if t <= s[0][0]:
            return s[0]
        for a, b in zip(s, s[1:]):
            if a[0] <= t <= b[0]:
                f = (t - a[0]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
                return tuple(x + (y - x) * f for x, y in zip(a, b))
        return s[-1]


# ---------------------------------------------------------------------------------------------
# Variants and servers


@dataclasses.dataclass
class Variant:
    label: str
    bin: Path
    args: list[str]
    help_text: str = ""
    available: bool = True
    problem: str = ""
    # The binary as given (`bin` may be a copy made at the start); what reports show.
    source: Path | None = None
    # "feedlab" (the server, the floor: `--bind`, /stats), "nchan" (nginx with Nchan, started
    # from deploy/nchan.conf, driven with `loadgen --target nchan`) or "peer" (one of
    # scripts/peers/peers.py's PEERS, named by `label`'s spec below).
    kind: str = "feedlab"
    spec: "peers.PeerSpec | None" = None
    # The peer while it runs (its publish address, its processes).
    running: "peers.Running | None" = None

    def serves(self, transport: str) -> bool:
        return self.spec is None or transport in self.spec.transports

    @property
    def is_floor(self) -> bool:
        return self.kind == "feedlab" and self.bin.name == "floor"

    @property
    def is_nchan(self) -> bool:
        return self.kind == "nchan"

    def has_flag(self, flag: str) -> bool:
        return re.search(rf"(^|\s){re.escape(flag)}[\s=<,]", self.help_text) is not None

    def command(self, workers: str, display: bool = False) -> list[str]:
        """The variant's command line: a free loopback port, no ticker, quiet logs, connection
        limits raised past any client count here (only the flags its --help lists). `display`:
        with the binary as given rather than its copy. Nchan: nginx in a temporary prefix
        (`<prefix>` in `display`), one process."""
        if self.is_nchan:
            return [str(self.bin), "-p", "<prefix>", "-c", "nginx.conf", "-e", "error.log", "(deploy/nchan.conf)"]
        if self.spec is not None:
            return [show_path(a) if "/" in a else a for a in self.spec.command()]
        cmd = [show_path(self.source or self.bin) if display else str(self.bin), "--bind", "127.0.0.1:0"]
        if self.has_flag("--rate"):
            cmd += ["--rate", "0"]
        if self.has_flag("--log"):
            cmd += ["--log", "warn"]
        for flag, value in (
            ("--max-connections", "100000"),
            ("--max-transport-connections", "100000"),
            ("--max-connections-per-ip", "0"),
        ):
            if self.has_flag(flag):
                cmd += [flag, value]
        if workers != "default":
            cmd += ["--workers", workers]
        return cmd + self.args


def parse_variants(spec: str, bin_dir: Path) -> list[Variant]:
    """`[LABEL=]BIN[:ARG[:ARG...]]`, comma-separated; BIN is a name in --bin-dir or a path."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        label = None
        head = item.split(":", 1)[0]
        if "=" in head:
            label, item = item.split("=", 1)
        parts = item.split(":")
        name, args = parts[0], [a for a in parts[1:] if a]
        if name == "nchan":
            nginx = Path(shutil.which("nginx") or "/usr/sbin/nginx")
            out.append(Variant(label or "nchan", nginx, [], source=nginx, kind="nchan"))
            continue
        if name in peers.PEERS:
            spec = peers.PEERS[name]
            cmd = Path(spec.command()[0])
            out.append(Variant(label or name, cmd, [], source=cmd, kind="peer", spec=spec))
            continue
        path = Path(name) if "/" in name else bin_dir / name
        out.append(Variant(label or " ".join([path.name, *args]), path, args, source=path))
    labels = [v.label for v in out]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"--variants: labels must differ, got {labels}")
    return out


def start_server(cmd: list[str], log_path: Path, timeout: float = START_TIMEOUT_S) -> tuple[subprocess.Popen, str]:
    """Starts a server (output to `log_path`) and returns it with its address once it printed
    `feedlab listening on http://ADDR/` (its first line of stdout; under valgrind, stderr
    lines come first)."""
    log = open(log_path, "w")
    try:
        p = CHILDREN.start(cmd, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"^feedlab listening on http://([^/\s]+)/$", log_path.read_text(errors="replace"), re.M)
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.02)
    CHILDREN.stop(p)
    out = log_path.read_text(errors="replace").strip()
    raise RuntimeError(f"did not start: {out[-1500:] or 'no output'}")


NCHAN_CONF = ROOT / "deploy" / "nchan.conf"
NCHAN_PACKAGES = ["libnginx-mod-nchan", "nginx-light"]
# Where the idle section's connections go on Nchan (its channel `idle` is never published to).
NCHAN_IDLE_PATHS = {"ws": "/sub/idle", "sse": "/sub/idle", "long-poll": "/sub/idle", "short-poll": "/poll/idle"}


def nchan_module() -> Path:
    return Path(os.environ.get("NCHAN_MODULE", "/usr/lib/nginx/modules/ngx_nchan_module.so"))


def ensure_nchan() -> str:
    """Installs Debian's libnginx-mod-nchan (and nginx-light) when the module or nginx is
    missing: apt-get update, then install. Returns what was done, for the log."""
    if nchan_module().exists() and shutil.which("nginx"):
        return ""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *NCHAN_PACKAGES]):
        r = subprocess.run(sudo + cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()[-500:]}")
    return f"installed {' '.join(NCHAN_PACKAGES)}"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_of(master: int, timeout: float = START_TIMEOUT_S) -> int:
    """The pid of nginx's one worker process (the master's child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        line = f.read()
                except OSError:
                    continue
                if int(line[line.rindex(")") + 2 :].split()[1]) == master:
                    return int(d)
        time.sleep(0.02)
    raise RuntimeError(f"nginx {master} started no worker")


def start_nchan(nginx: Path, log_path: Path, work: Path) -> tuple[subprocess.Popen, str, int]:
    """nginx with Nchan from deploy/nchan.conf, in a prefix of its own under `work`, on a free
    loopback port: its master (stopped by PID with SIGTERM, which stops the worker), its
    address, and its one worker's pid (the process that serves, whose CPU, memory and
    descriptors are sampled). Not `master_process off`: Nchan 1.3.6 aborts on exit there
    (double free)."""
    port = free_port()
    prefix = Path(tempfile.mkdtemp(prefix="nchan-", dir=work))
    conf = (NCHAN_CONF.read_text().replace("__MODULE__", str(nchan_module()))
            .replace("__PORT__", str(port)).replace("__DIR__", str(prefix)))
    (prefix / "nginx.conf").write_text(conf)
    with open(log_path, "w") as log:
        p = CHILDREN.start([str(nginx), "-p", str(prefix), "-c", "nginx.conf", "-e", "error.log"],
                           stdout=log, stderr=subprocess.STDOUT)
    import socket
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, f"127.0.0.1:{port}", worker_of(p.pid)
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.02)
    CHILDREN.stop(p)
    err = (prefix / "error.log").read_text(errors="replace") if (prefix / "error.log").exists() else ""
    raise RuntimeError(f"did not start: {(err or log_path.read_text(errors='replace')).strip()[-1500:] or 'no output'}")


def start_variant(v: Variant, workers: str, log_path: Path, work: Path, timeout: float = START_TIMEOUT_S,
                  wrap: list[str] | None = None) -> tuple[subprocess.Popen, str, int]:
    """The variant's process (what is stopped), its address, and the pid that serves (what is
    measured: the process itself, or nginx's worker)."""
    if v.is_nchan:
        return start_nchan(v.bin, log_path, work)
    if v.spec is not None:
        v.running = peers.start(v.spec, log_path, popen=CHILDREN.start, wrap=wrap)
        return v.running.proc, v.running.addr, v.running.proc.pid
    p, addr = start_server([*(wrap or []), *v.command(workers)], log_path, timeout=timeout)
    return p, addr, p.pid


def preflight(variants: list[Variant], workers: list[str], work: Path):
    """Marks variants that cannot run (a missing binary or flag, e.g. --fast-path before it
    exists) unavailable, with the reason, instead of failing the whole benchmark."""
    for v in variants:
        if v.spec is not None:
            try:
                done = peers.ensure(v.spec)
                if done:
                    print(f"{v.label}: {done}")
                run = peers.start(v.spec, work / f"preflight-{safe(v.label)}.log", popen=CHILDREN.start)
                run.stop()
                CHILDREN.stop(run.proc)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                v.available, v.problem = False, str(e).splitlines()[0][:300] if str(e) else repr(e)
            continue
        if v.is_nchan:
            try:
                done = ensure_nchan()
                if done:
                    print(f"nchan: {done}")
                v.bin = v.source = Path(shutil.which("nginx") or "/usr/sbin/nginx")
                p, _, _ = start_nchan(v.bin, work / "preflight-nchan.log", work)
                CHILDREN.stop(p)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                v.available, v.problem = False, str(e).splitlines()[0][:300] if str(e) else repr(e)
            continue
        if not v.bin.exists():
            v.available, v.problem = False, f"{v.bin} does not exist"
            continue
        r = subprocess.run([str(v.bin), "--help"], capture_output=True, text=True, timeout=30)
        v.help_text = r.stdout
        for w in workers:
            if w != "default" and not v.has_flag("--workers"):
                v.available, v.problem = False, f"{v.bin.name} has no --workers flag"
                break
            try:
                p, _ = start_server(v.command(w), work / f"preflight-{safe(v.label)}.log")
                CHILDREN.stop(p)
            except RuntimeError as e:
                # One line (it goes into tables): the error, not the usage that follows it.
                lines = [l.strip() for l in str(e).splitlines() if l.strip()]
                first = next((l for l in lines if "error" in l.lower()), lines[0] if lines else str(e))
                where = "" if w == "default" else f" (with --workers {w})"
                v.available, v.problem = False, f"did not start{where}: {first.removeprefix('did not start: ')}"
                break


def snapshot_binaries(bin_dir: Path, variants: list[Variant], work: Path, copy: bool) -> dict:
    """Copies the binaries into the work directory (a rebuild during the run then cannot
    change what is measured) and records their hashes."""
    dest = work / "bin"
    dest.mkdir()
    info = {}
    paths = {"loadgen": bin_dir / "loadgen"}
    for v in variants:
        if not v.is_nchan and v.spec is None:  # a system binary or a script: run in place
            paths.setdefault(str(v.bin), v.bin)
    mapping = {}
    for key, src in paths.items():
        if not src.exists():
            continue
        target = src
        if copy:
            # One directory per binary: the file keeps its name (perf shows it, `floor` is
            # recognised by it).
            target = dest / str(len(mapping)) / src.name
            target.parent.mkdir()
            shutil.copy2(src, target)
        mapping[key] = target
        h = hashlib.sha256(target.read_bytes()).hexdigest()
        st = src.stat()
        info[show_path(src)] = {
            "sha256": h,
            "built": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).isoformat(timespec="seconds"),
            "bytes": st.st_size,
        }
    for v in variants:
        if str(v.bin) in mapping:
            v.bin = mapping[str(v.bin)]
    return {"loadgen": mapping.get("loadgen", bin_dir / "loadgen"), "files": info}


def show_path(p: Path | str) -> str:
    """A path relative to the workspace when it is inside it."""
    p = Path(p)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")


# ---------------------------------------------------------------------------------------------
# One measured run: a fresh server, one loadgen phase, the bracket.


@dataclasses.dataclass(frozen=True)
class Load:
    transport: str
    clients: int
    rate: float
    workers: str = "default"
    duration: float = 20.0
    drain: float = 1.0
    poll_interval: float = 1.0  # short-poll only
    repeat: int = 1

    def key(self, variant: str) -> tuple:
        return (variant, self.transport, self.clients, self.rate, self.workers, self.duration, self.repeat)


def seconds(s: float) -> str:
    """A duration for loadgen (humantime)."""
    return f"{round(s * 1000)}ms"


class Bench:
    def __init__(self, opts, variants: list[Variant], loadgen: Path, work: Path):
        self.opts, self.variants, self.loadgen, self.work = opts, variants, loadgen, work
        self.loadgen_source = opts.bin_dir / "loadgen"
        self.n = 0
        self.total_runs = 0
        self.cache: dict[tuple, dict] = {}
        # The runs of the section in progress (kept when it is interrupted).
        self.current: list[dict] = []

    def log(self, msg: str):
        print(msg, flush=True)

    def run_load(self, v: Variant, load: Load, section: str, profile: dict | None = None) -> dict:
        """Starts `v`, drives it with loadgen, stops it; returns every number of the run.
        `profile`: {"tool": "perf"|"callgrind", "data": path} records the server as well."""
        self.n += 1
        tag = f"{self.n:03d}-{safe(v.label)}-{load.transport}-{load.clients}x{load.rate:g}-w{load.workers}"
        wrap = None
        if profile and profile["tool"] == "callgrind":
            wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile['data']}"]
        result = {
            "section": section,
            "variant": v.label,
            "transport": load.transport,
            "clients": load.clients,
            "rate": load.rate,
            "workers": load.workers,
            "duration_s": load.duration,
            "drain_s": load.drain,
            "payload_bytes": self.opts.payload_bytes,
            "repeat": load.repeat,
            "server_command": v.command(load.workers, display=True),
            "problems": [],
        }
        if load.transport == "short-poll":
            result["poll_interval_s"] = load.poll_interval
        try:
            server, addr, pid = start_variant(v, load.workers, self.work / f"{tag}.server.log", self.work,
                                         timeout=120 if wrap else START_TIMEOUT_S, wrap=wrap)
        except RuntimeError as e:
            result["problems"].append(str(e).splitlines()[0][:500])
            result["ok"] = False
            self.print_run(result)
            return result
        perf = None
        try:
            time.sleep(0.2)
            # Every process of the server (Pushpin is several): CPU and memory summed.
            pids = peers.tree(server.pid) if v.spec is not None else [pid]
            base_fds = sum(fd_count(p) for p in pids)
            out_dir = self.work / tag
            lg_cmd = [
                str(self.loadgen), "--url", f"http://{addr}/", "--transports", load.transport,
                "--http", "1.1", "--clients", str(load.clients), "--rate", f"{load.rate:g}",
                "--payload-bytes", str(self.opts.payload_bytes), "--duration", seconds(load.duration),
                "--drain", seconds(load.drain), "--ready-timeout", "60s", "--seed", "1",
                # One phase per loadgen run: the repeats are this script's own (interleaved with
                # the other servers), and the CPU window brackets exactly one publishing phase.
                "--repeat", "1",
                "--out", str(out_dir), "--quiet",
            ]
            if load.transport == "short-poll":
                lg_cmd += ["--poll-interval", seconds(load.poll_interval)]
            if v.is_nchan:
                lg_cmd += ["--target", "nchan"]
            if v.running is not None:
                lg_cmd += v.running.loadgen_args()
                result["fairness"] = v.spec.fairness
            result["loadgen_command"] = [show_path(self.loadgen_source), *lg_cmd[1:]]
            with open(self.work / f"{tag}.loadgen.log", "w") as lg_log:
                lg = CHILDREN.start(lg_cmd, stdout=lg_log, stderr=subprocess.STDOUT)
            t_lg = time.monotonic()
            sampler = Sampler(pids, lg.pid, base_fds + load.clients)
            sampler.start()
            # Bounded: the ready timeout, the phase, the drain, loadgen's 30 s join, slack.
            deadline = t_lg + 60 + load.duration + load.drain + 30 + 30
            perf_stop_at = None
            while lg.poll() is None:
                now = time.monotonic()
                if now > deadline:
                    result["problems"].append("loadgen did not finish in time and was stopped")
                    CHILDREN.stop(lg, signal.SIGINT, timeout=15)
                    break
                if profile and profile["tool"] == "perf" and perf is None and sampler.ready_t:
                    with open(self.work / f"{tag}.perf.log", "w") as perf_log:
                        perf = CHILDREN.start(
                            ["perf", "record", "-e", "cpu-clock", "-g", "-F", "999",
                             "-p", str(pid), "-o", str(profile["data"])],
                            stdout=subprocess.DEVNULL, stderr=perf_log,
                        )
                    perf_stop_at = sampler.ready_t + load.duration
                if perf is not None and perf_stop_at and now >= perf_stop_at:
                    result["perf_rc"] = CHILDREN.stop(perf, signal.SIGINT, timeout=30)
                    perf_stop_at = None
                time.sleep(0.02)
            result["loadgen_rc"] = lg.wait()
            CHILDREN.stop(lg)  # exited: just forget it
            sampler.stop()
            if v.running is not None:
                # Slow-consumer drops and versions, where the peer reports them.
                result["peer_stats"] = v.running.stats()
        finally:
            if perf is not None and perf.poll() is None:
                result["perf_rc"] = CHILDREN.stop(perf, signal.SIGINT, timeout=30)
            # Graceful, so a callgrind run writes its data.
            rc = CHILDREN.stop(server, timeout=60 if profile and profile["tool"] == "callgrind" else STOP_TIMEOUT_S)
            result["server_exit"] = rc
        self.measure(result, sampler, t_lg, out_dir, load)
        self.print_run(result)
        return result

    def measure(self, r: dict, sampler: Sampler, t_lg: float, out_dir: Path, load: Load):
        """Reads loadgen's report and cuts the sampled CPU to the publishing window."""
        try:
            report = json.loads((out_dir / "report.json").read_text())
            tr = report["transports"][load.transport]
        except (OSError, KeyError, ValueError) as e:
            r["problems"].append(f"no loadgen report ({e}); see the loadgen log")
            r["ok"] = False
            return
        lat = tr.get("latency_us") or {}
        r["loadgen"] = {
            k: tr.get(k)
            for k in (
                "events_published", "events_expected", "events_received", "events_unique",
                "gaps", "duplicates", "out_of_order", "missed_reported", "http_requests",
                "empty_responses", "connections_opened", "reconnects", "bytes_down",
                "bytes_per_event", "requests_per_event", "connect_s", "publish_s", "drain_s",
                "server_cpu_s", "loadgen_cpu_s", "errors",
            )
        }
        r["loadgen"]["server_check_ok"] = (tr.get("server_check") or {}).get("ok")
        r["loadgen"]["loss"] = report.get("loss")
        r["loadgen"]["warnings"] = report.get("warnings", [])
        r["latency_us"] = {k: lat.get(k) for k in ("p50", "p90", "p99", "p999", "max", "mean")}
        lgr = r["loadgen"]
        r["deliveries"] = deliveries = lgr["events_received"] or 0
        r["gaps"], r["duplicates"] = lgr["gaps"], lgr["duplicates"]

        # The window: every client connected .. the end of the drain (minus the teardown margin).
        if sampler.ready_t is not None:
            start, method = sampler.ready_t, "server fds = clients + before"
        else:
            start = t_lg + 0.1 + (lgr["connect_s"] or 0)
            method = "approximate: loadgen start + connect_s"
            r["problems"].append(
                f"the server never held every client's connection at once (max {sampler.max_fds} fds); "
                "window approximated from loadgen's connect_s"
            )
        end = start + (lgr["publish_s"] or load.duration) + load.drain - TEARDOWN_MARGIN_S
        if not sampler.samples:
            r["problems"].append("no CPU samples of the server")
            r["ok"] = False
            return
        if end > sampler.samples[-1][0] + SAMPLE_S:
            r["problems"].append("the sampler stopped before the window ended")
        a, b = sampler.at(start), sampler.at(end)
        length = end - start
        user_s, sys_s = (b[1] - a[1]) / CLK_TCK, (b[2] - a[2]) / CLK_TCK
        server_cores = (user_s + sys_s) / length
        lg_cores = (b[4] - a[4]) / CLK_TCK / length
        machine_cores = (b[5] - a[5]) / max(b[6] - a[6], 1) * (os.cpu_count() or 1)
        r["window"] = {
            "method": method,
            "start_after_loadgen_s": round(start - t_lg, 3),
            "length_s": round(length, 3),
            "samples": len(sampler.samples),
        }
        r["server_cpu_s"] = {"user": user_s, "system": sys_s, "total": user_s + sys_s}
        r["cores"] = {
            "server": round(server_cores, 3),
            "loadgen": round(lg_cores, 3),
            "machine": round(machine_cores, 3),
            "others": round(max(machine_cores - server_cores - lg_cores, 0.0), 3),
        }
        inside = [s[3] for s in sampler.samples if start <= s[0] <= end]
        r["server_rss_kib"] = {"start": round(a[3]), "end": round(b[3]), "peak": max(inside, default=round(b[3]))}
        if deliveries:
            r["us_per_delivery"] = {k: v * 1e6 / deliveries for k, v in r["server_cpu_s"].items()}
        if load.transport in ("short-poll", "long-poll"):
            # A short-poll client's first request is made while it connects, before the window.
            requests = (lgr["http_requests"] or 0) - (load.clients if load.transport == "short-poll" else 0)
            r["requests_in_window"] = requests
            if requests > 0:
                r["us_per_request"] = {k: v * 1e6 / requests for k, v in r["server_cpu_s"].items()}

        p = r["problems"]
        if lgr["gaps"]:
            p.append(f"{lgr['gaps']} gaps")
        if lgr["duplicates"]:
            p.append(f"{lgr['duplicates']} duplicates")
        if lgr["events_expected"] != lgr["events_received"]:
            p.append(f"received {lgr['events_received']} of {lgr['events_expected']} expected deliveries")
        if lgr["out_of_order"]:
            p.append(f"{lgr['out_of_order']} out of order")
        if lgr["errors"]:
            p.append(f"client errors: {lgr['errors']}")
        if lgr["server_check_ok"] is False:
            p.append("loadgen and the server's /stats disagree")
        if lgr["loss"]:
            p.append("loadgen reported LOSS")
        # The Nchan target's standing note (no /stats) is expected, not a problem.
        p.extend(f"loadgen: {w}" for w in lgr["warnings"] if not w.startswith("Target "))
        drops = (r.get("peer_stats") or {}).get("drops")
        if drops:
            p.append(f"the peer dropped {drops} messages to slow consumers")
        if r.get("loadgen_rc") not in (0, None):
            p.append(f"loadgen exited with {r['loadgen_rc']}")
        if r.get("server_exit") not in (0, None):
            p.append(f"the server exited with {r['server_exit']} on SIGTERM")
        r["ok"] = not p

    def print_run(self, r: dict):
        head = (
            f"[{self.n}/{self.total_runs}] {r['transport']:10} {r['clients']:>5} x {r['rate']:g}/s "
            f"workers={r['workers']:7} {r['variant']:14}"
        )
        if "us_per_delivery" not in r:
            self.log(f"{head} FAILED: {'; '.join(r['problems'])}")
            return
        u = r["us_per_delivery"]
        line = (
            f"{head} {r['deliveries']:>9,} deliveries  {u['total']:6.2f} us/delivery "
            f"(user {u['user']:.2f}, sys {u['system']:.2f})  p99 {fmt_latency(r['latency_us']['p99'])}"
        )
        if "us_per_request" in r:
            line += f"  {r['us_per_request']['total']:.1f} us/request"
        others = r["cores"]["others"]
        if others >= 0.2:
            line += f"  [other processes: {others:.2f} cores]"
        self.log(line + ("" if r["ok"] else "  PROBLEM: " + "; ".join(r["problems"])))

    # -----------------------------------------------------------------------------------------
    # Sections

    def available(self) -> list[Variant]:
        return [v for v in self.variants if v.available]

    def server_variant(self) -> Variant | None:
        """The variant polling and the polling profiles run against: the first available one
        that is neither the floor nor Nchan (the server-only polling section)."""
        return next((v for v in self.available() if not v.is_floor and not v.is_nchan and v.spec is None), None)

    def plan(self, sections: list[str]) -> dict[str, int]:
        o = self.opts
        nv = len(self.available())
        nf = len([v for v in self.available() if v.spec is None])  # the peers are not profiled or idled
        counts = {
            "matrix": sum(len(self.cells_of(t)) * sum(v.serves(t) for v in self.available())
                          for t in o.transports) * len(o.workers) * o.repeats,
            "sweep": len(o.sweep_clients) * len(self.streaming()) * nv,
            "polling": 2 if self.server_variant() else 0,
            "perf": len(o.perf_kinds) * nf,
            "idle": len(o.transports) * nf,
        }
        if "matrix" in sections and o.repeats == 1:  # the sweep reuses the matrix's identical cells
            cells = {(c, r) for c, r in o.cells}
            counts["sweep"] -= sum(
                len(self.streaming()) * nv for c in o.sweep_clients if (c, o.sweep_rate) in cells and "default" in o.workers
            )
        return {s: counts[s] for s in sections}

    def estimate_s(self, plan: dict[str, int]) -> float:
        o = self.opts
        per_run = o.duration + 1.0 + 2.0 + o.pause  # phase, drain, start/connect/stop, pause
        est = (plan.get("matrix", 0) + plan.get("sweep", 0)) * per_run
        est += plan.get("polling", 0) * (o.duration + 5 + o.pause)
        est += plan.get("perf", 0) * (o.perf_duration + 8)
        # Short polling drains for two intervals.
        est += plan.get("matrix", 0) / max(len(o.transports), 1) * ("short-poll" in o.transports) * o.poll_interval
        est += plan.get("idle", 0) * (4 + o.idle_count / 1500)
        return est

    def streaming(self) -> list[str]:
        return [t for t in self.opts.transports if t not in POLLING]

    def cells_of(self, transport: str) -> list[tuple[int, float]]:
        return self.opts.poll_cells if transport in POLLING else self.opts.cells

    def matrix(self) -> list[dict]:
        """Every transport at its cells; within a cell, round after round (`--repeats`), the
        variants back to back, in an order that rotates each round: every variant of a round runs
        within a minute of the others, and each takes each place in turn."""
        o, runs = self.opts, self.current
        for transport in o.transports:
            # Polls catch up in steps (a request per batch): two seconds for the last ones to land
            # even on a busy machine; an idle stream or held poll costs next to nothing meanwhile.
            drain = max(2.0, 2 * o.poll_interval) if transport in POLLING else 1.0
            for clients, rate in self.cells_of(transport):
                for workers in o.workers:
                    order = [v for v in self.available() if v.serves(transport)]
                    for repeat in range(1, o.repeats + 1):
                        # Each round starts one variant later: none always runs first or last
                        # in its round, after the same neighbour, on a machine just so warm.
                        shift = (repeat - 1) % max(1, len(order))
                        for v in order[shift:] + order[:shift]:
                            load = Load(transport, clients, rate, workers, o.duration, drain, o.poll_interval, repeat)
                            r = self.run_load(v, load, "matrix")
                            self.cache[load.key(v.label)] = r
                            runs.append(r)
                            time.sleep(o.pause)
        return runs

    def sweep(self) -> list[dict]:
        o, runs = self.opts, self.current
        for clients in o.sweep_clients:
            for transport in self.streaming():
                for v in self.available():
                    if not v.serves(transport):
                        continue
                    load = Load(transport, clients, o.sweep_rate, "default", o.duration)
                    if load.key(v.label) in self.cache:
                        r = dict(self.cache[load.key(v.label)], section="sweep", reused_from="matrix")
                    else:
                        r = self.run_load(v, load, "sweep")
                        time.sleep(o.pause)
                    runs.append(r)
        return runs

    def polling(self) -> list[dict]:
        o, v = self.opts, self.server_variant()
        if v is None:
            self.log("polling: no server variant available, skipped")
            return []
        runs = self.current
        for transport, (clients, rate) in (("long-poll", o.long_poll), ("short-poll", o.short_poll)):
            # Short polls go on for two intervals after the last publish (loadgen's default drain).
            drain = 2 * o.poll_interval if transport == "short-poll" else 1.0
            load = Load(transport, clients, rate, "default", o.duration, drain, o.poll_interval)
            runs.append(self.run_load(v, load, "polling"))
            time.sleep(o.pause)
        return runs

    def perf(self, perf_dir: Path) -> list[dict]:
        """Profiles of the server: which functions the CPU time of a run goes to."""
        o = self.opts
        tool = o.profiler
        if tool == "auto":
            tool = "perf" if perf_works(self.work) else "callgrind"
            if tool == "callgrind":
                self.log("perf: `perf record` gives no samples here; using valgrind --tool=callgrind")
        perf_dir.mkdir(parents=True, exist_ok=True)
        for old in perf_dir.glob("*.txt"):
            old.unlink()
        runs = self.current
        for kind in o.perf_kinds:
            # The server's profile reads against the floor's and Nchan's (the peers are not
            # profiled here: perf would need their runtimes' symbols to say anything).
            targets = [v for v in self.available() if v.spec is None]
            if kind in ("ws", "sse"):
                clients, rate = o.perf_ws
            else:
                clients, rate = o.long_poll if kind == "long-poll" else o.short_poll
            duration = o.perf_duration
            if tool == "callgrind":  # 20-50x slower under valgrind: a small, short run
                clients, rate, duration = min(clients, 50), min(rate, 20.0), min(duration, 5.0)
            for v in targets:
                name = f"{kind}-{safe(v.label)}"
                data = self.work / f"{name}.{tool}.data"
                drain = 2 * o.poll_interval if kind == "short-poll" else 1.0
                # The matrix's first worker setting, so a profile reads beside its numbers.
                load = Load(kind, clients, rate, o.workers[0], duration, drain, o.poll_interval)
                for attempt in (1, 2):  # perf, now and then, attaches and records nothing
                    r = self.run_load(v, load, "perf", {"tool": tool, "data": data})
                    r["profiler"] = tool
                    text, samples = summarize_profile(tool, data, r)
                    if samples or attempt == 2:
                        break
                    self.log(f"  {tool} recorded nothing; once more")
                    time.sleep(o.pause)
                r["profile_samples"] = samples
                if not samples:
                    r["problems"].append(f"{tool} recorded nothing")
                    r["ok"] = False
                (perf_dir / f"{name}.txt").write_text(text)
                r["profile_file"] = f"perf/{name}.txt"
                runs.append(r)
                time.sleep(o.pause)
        return runs

    def idle(self) -> list[dict]:
        """RSS growth per idle connection: one server run per transport and variant, the
        connections opened by this process (floor/scripts/idle_rss.py)."""
        o, runs = self.opts, self.current
        idle_rss.raise_fd_limit(o.idle_count + 64)
        for transport in o.transports:
            # idle_rss speaks feedlab's and Nchan's paths; the peers' idle memory is not measured here.
            for v in [v for v in self.available() if v.spec is None]:
                self.n += 1
                server, addr, pid = start_variant(v, "default", self.work / f"{self.n:03d}-idle-{transport}-{safe(v.label)}.log",
                                             self.work)
                path = NCHAN_IDLE_PATHS[transport] if v.is_nchan else None
                held = []
                try:
                    host, port = addr.rsplit(":", 1)
                    idle_rss.warm_up((host, int(port)), [transport], path=path)
                    base = idle_rss.settle(pid)
                    held, r = idle_rss.open_idle((host, int(port)), pid, transport, o.idle_count, path=path)
                    threads = proc_stat(pid)[2]
                finally:
                    for s in held:
                        s.close()
                    rc = CHILDREN.stop(server)
                r.update(
                    variant=v.label, server_command=v.command("default", display=True), rss_base_kib=base, threads=threads,
                    kib_per_connection=r["bytes_per_connection"] / 1024, server_exit=rc,
                )
                runs.append(r)
                self.log(
                    f"[{self.n}/{self.total_runs}] idle {transport:3} {v.label:14} {o.idle_count:,} connections: "
                    f"RSS {r['rss_before_kib']:,} -> {r['rss_after_kib']:,} KiB, "
                    f"{r['kib_per_connection']:.2f} KiB per connection"
                )
                time.sleep(o.pause)
        return runs


def perf_works(work: Path) -> bool:
    """Whether `perf record -e cpu-clock` gets samples of a process it attaches to here (two
    tries: now and then an attach records nothing)."""
    if not shutil.which("perf"):
        return False
    return any(perf_probe(work) for _ in range(2))


def perf_probe(work: Path) -> bool:
    busy = CHILDREN.start([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    data = work / "perf-probe.data"
    try:
        time.sleep(0.2)
        p = CHILDREN.start(["perf", "record", "-e", "cpu-clock", "-F", "999", "-p", str(busy.pid), "-o", str(data)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        CHILDREN.stop(p, signal.SIGINT)
        out = subprocess.run(["perf", "report", "-i", str(data), "--stdio"], capture_output=True, text=True, timeout=60)
        return perf_samples(out.stdout) > 0
    finally:
        CHILDREN.stop(busy)


def perf_samples(report: str) -> int:
    m = re.search(r"^# Samples: (\d+)([KM]?)", report, re.M)
    if not m:
        return 0
    return int(m.group(1)) * {"": 1, "K": 1000, "M": 1_000_000}[m.group(2)]


# Self time by component: which layer of a server the samples fall in (first match wins).
COMPONENTS = [
    (r"^\[kernel", None, "kernel (TCP, epoll, scheduler)"),
    (r"^libc", None, "libc (malloc/free, memcpy)"),
    (None, r"server::(transport|feed)\b", "server: the transport handlers and the feed"),
    (None, r"server::(app::account|accounting)", "server: the accounting wrapper"),
    (None, r"fast_path", "server: the fast path (front door, streams)"),
    (None, r"actix|regex_lite|http::header", "actix-web, actix-http, actix-server (routing, heads, dispatch)"),
    (None, r"httparse", "httparse (request heads)"),
    (None, r"hashbrown", "hashbrown (request extensions, header maps)"),
    (None, r"tokio|mio", "tokio, mio"),
    (r"nchan", None, "Nchan module"),
    (r"^nginx$|ngx_", None, "nginx"),
]


def components(report: str) -> list[str]:
    """`perf report --sort dso,sym` rows summed by [`COMPONENTS`]; the rest by shared object."""
    groups: dict[str, float] = {}
    for line in report.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        name = next((n for d, y, n in COMPONENTS
                     if (d and re.search(d, dso)) or (y and re.search(y, sym))), f"other in {dso}")
        groups[name] = groups.get(name, 0.0) + pct
    return [f"{p:7.2f}%  {n}" for n, p in sorted(groups.items(), key=lambda x: -x[1])]


def summarize_profile(tool: str, data: Path, r: dict) -> tuple[str, int]:
    """The profile's top as text (about 60 lines): which shared objects and which functions
    the server's samples fell in, self time (`--no-children`)."""
    cpu = r.get("server_cpu_s", {})
    head = [
        f"# variant {r['variant']}: {r['transport']}, {r['clients']} clients x {r['rate']:g} events/s, "
        f"{r['duration_s']:g} s, {r['workers']} workers",
        f"# command: {shlex.join(r['server_command'])}",
        f"# server CPU in the window: user {cpu.get('user', 0):.2f} s, system {cpu.get('system', 0):.2f} s; "
        f"{r.get('deliveries', 0):,} deliveries",
    ]
    if tool == "perf":
        if not data.exists():
            return "\n".join(head + ["# perf recorded nothing"]) + "\n", 0
        base = ["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none"]
        # -n: exact sample counts (the "# Samples: 8K" header is rounded).
        by_dso = subprocess.run(base + ["--sort", "dso", "-n"], capture_output=True, text=True, timeout=600).stdout
        by_sym = subprocess.run(base + ["--sort", "dso,sym", "--percent-limit", "0.3"],
                                capture_output=True, text=True, timeout=600).stdout
        samples = sum(int(m.group(1)) for m in re.finditer(r"^\s+[\d.]+%\s+(\d+)\s", by_dso, re.M))
        every_sym = subprocess.run(base + ["--sort", "dso,sym"], capture_output=True, text=True, timeout=600).stdout
        head.append(f"# perf record -e cpu-clock -g -F 999 -p <server>: {samples:,} samples; "
                    "perf report --stdio --no-children -g none")
        # Rows without perf's comments; Rust's generic names cut to a readable width.
        rows = lambda s: [clip(l.rstrip()) for l in s.splitlines() if l.strip() and not l.startswith("#")]
        text = head + ["", "## by shared object (--sort dso)"] + rows(by_dso)[:8]
        text += ["", "## by component (self time of every symbol, summed)"] + components(every_sym)
        text += ["", "## by function (--sort dso,sym), self time"] + rows(by_sym)[: 60 - len(text)]
        return "\n".join(text) + "\n", samples
    # callgrind
    if not data.exists():
        return "\n".join(head + ["# callgrind wrote nothing"]) + "\n", 0
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", str(data)],
                         capture_output=True, text=True, timeout=600).stdout
    # From the totals on, with shorter paths: crates.io sources by crate, std by `std/`, and
    # binaries by name.
    i = out.find("PROGRAM TOTALS")
    if i >= 0:
        out = out[out.rfind("\n", 0, i) + 1 :]
    out = re.sub(r"/\S*/\.cargo/registry/src/[^/]+/", "", out)
    out = re.sub(r"/rustc/[0-9a-f]+/library/", "std/", out)
    out = re.sub(r"\[[^\]\n]*/([^/\]\n]+)\]", r"[\1]", out)
    lines = [l.rstrip() for l in out.splitlines() if l.strip() and not set(l.strip()) <= set("-")]
    m = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", out)
    samples = int(m.group(1).replace(",", "")) if m else 0
    head.append("# valgrind --tool=callgrind (instructions, not time); callgrind_annotate --inclusive=no")
    return "\n".join(head + [""] + [clip(l) for l in lines[:56]]) + "\n", samples


def clip(line: str, width: int = 200) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Ratios to the floor


def ratio(a, b):
    return a / b if a is not None and b else None


def cell_key(r: dict) -> tuple:
    return (r["transport"], r["clients"], r["rate"], r["workers"])


def add_ratios(runs: list[dict], reference: str):
    """Each run's costs divided by the reference's (the floor's) in the same cell and round."""
    cells: dict[tuple, dict[str, dict]] = {}
    for r in runs:
        cells.setdefault((*cell_key(r), r.get("repeat", 1)), {})[r["variant"]] = r
    for r in runs:
        ref = cells[(*cell_key(r), r.get("repeat", 1))].get(reference)
        r["vs_reference"] = None
        if ref is None or "us_per_delivery" not in ref or "us_per_delivery" not in r:
            continue
        u, f = r["us_per_delivery"], ref["us_per_delivery"]
        r["vs_reference"] = {
            "variant": reference,
            "cpu_total": ratio(u["total"], f["total"]),
            "cpu_user": ratio(u["user"], f["user"]),
            "cpu_system": ratio(u["system"], f["system"]),
            "p50": ratio(r["latency_us"]["p50"], ref["latency_us"]["p50"]),
            "p99": ratio(r["latency_us"]["p99"], ref["latency_us"]["p99"]),
        }


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def spread(values: list) -> dict | None:
    """Median, min and max of a cell's repeats (None values, from failed runs, left out)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def aggregate(runs: list[dict], reference: str, peer: str | None) -> list[dict]:
    """One entry per cell: per variant the median and range of its repeats, and the medians'
    ratios to the reference's (the floor's) and to the peer's (Nchan's)."""
    cells: dict[tuple, dict[str, list[dict]]] = {}
    for r in runs:
        cells.setdefault(cell_key(r), {}).setdefault(r["variant"], []).append(r)
    out = []
    for (t, c, rate, w), by_variant in cells.items():
        variants = {}
        for v, rs in by_variant.items():
            variants[v] = {
                "runs": len(rs),
                "ok": all(x.get("ok") for x in rs),
                "deliveries": sum(x.get("deliveries", 0) for x in rs),
                "gaps": sum(x.get("gaps") or 0 for x in rs),
                "duplicates": sum(x.get("duplicates") or 0 for x in rs),
                "cpu_total": spread([(x.get("us_per_delivery") or {}).get("total") for x in rs]),
                "cpu_user": spread([(x.get("us_per_delivery") or {}).get("user") for x in rs]),
                "cpu_per_request": spread([(x.get("us_per_request") or {}).get("total") for x in rs]),
                "requests_per_delivery": spread([
                    (x.get("requests_in_window") or 0) / x["deliveries"] if x.get("deliveries") else None
                    for x in rs]) if t in POLLING else None,
                "p50": spread([(x.get("latency_us") or {}).get("p50") for x in rs]),
                "p99": spread([(x.get("latency_us") or {}).get("p99") for x in rs]),
                "others": spread([(x.get("cores") or {}).get("others") for x in rs]),
            }
        for v, a in variants.items():
            for name, other in (("vs_reference", reference), ("vs_peer", peer)):
                o = variants.get(other) if other else None
                a[name] = None if o is None or v == other else {
                    k: ratio((a[k] or {}).get("median"), (o[k] or {}).get("median"))
                    for k in ("cpu_total", "cpu_user", "cpu_per_request", "p99")
                }
        out.append({"transport": t, "clients": c, "rate": rate, "workers": w, "variants": variants})
    return out


def add_idle_ratios(runs: list[dict], reference: str, peer: str | None = None):
    for r in runs:
        for name, other in (("vs_reference", reference), ("vs_peer", peer)):
            ref = next((x for x in runs if x["transport"] == r["transport"] and x["variant"] == other), None)
            r[name] = ratio(r["bytes_per_connection"], ref["bytes_per_connection"]) if ref and other else None


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_latency(us) -> str:
    if us is None:
        return "–"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 10_000:
        return f"{us / 1000:.2f} ms"
    if us < 100_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1000:.0f} ms"


def fmt_x(x, target=None) -> str:
    if x is None:
        return "–"
    s = f"{x:.2f}×"
    if target is not None:
        s += " ✓" if x <= target else " ✗"
    return s


def fmt_us(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def fmt_rate(rate: float) -> str:
    return f"{rate:g}/s"


def table(header: list[str], rows: list[list], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------------------------------------
# SVG: a line chart written as text

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
DASHES = {"ws": "", "sse": "7 4", "long-poll": "2 3", "short-poll": "10 3 2 3"}


def nice_ticks(top: float, n: int = 6) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(top / step)) + 1)]


def line_chart(title: str, x_label: str, y_label: str, series: list[dict], note: str = "") -> str:
    """Lines over a logarithmic x axis (client counts), y from 0. `series`: dicts with name,
    color, dash, points [(x, y)]."""
    W, H, L, R, T, B = 760, 460, 70, 190, 50, 60
    pw, ph = W - L - R, H - T - B
    xs = sorted({x for s in series for x, _ in s["points"]})
    ys = [y for s in series for _, y in s["points"] if y is not None]
    if not xs or not ys:
        return ""
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    yt = nice_ticks(max(ys) * 1.05)
    ytop = yt[-1]
    px = lambda x: L + (math.log10(x) - lo) / (hi - lo) * pw
    py = lambda y: T + ph - y / ytop * ph
    e = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{L + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{e(title)}</text>',
    ]
    for y in yt:
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{L + pw}" y2="{py(y):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{T + ph}" stroke="#f0f0f0"/>')
        out.append(f'<text x="{px(x):.1f}" y="{T + ph + 18}" text-anchor="middle">{x:,}</text>')
    out.append(f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="black"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="black"/>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">{e(x_label)}</text>')
    out.append(
        f'<text x="18" y="{T + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {T + ph / 2})">{e(y_label)}</text>'
    )
    for i, s in enumerate(series):
        pts = [(px(x), py(y)) for x, y in sorted(s["points"]) if y is not None]
        dash = f' stroke-dasharray="{s["dash"]}"' if s["dash"] else ""
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{s["color"]}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s["color"]}"/>')
        ly = T + 10 + i * 20
        out.append(
            f'<line x1="{L + pw + 15}" y1="{ly}" x2="{L + pw + 45}" y2="{ly}" stroke="{s["color"]}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{L + pw + 52}" y="{ly + 4}">{e(s["name"])}</text>')
    if note:
        out.append(f'<text x="{W - 8}" y="{H - 4}" text-anchor="end" font-size="10" fill="#666">{e(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def sweep_charts(runs: list[dict], variants: list[str], reference: str, note: str) -> dict[str, str]:
    charts = {}
    others = [v for v in variants if v != reference]
    colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(others)} | {reference: "#555555"}
    for part, name in (("total", "sweep_cpu_total.svg"), ("user", "sweep_cpu_user.svg")):
        series = []
        for v in variants:
            for t in sorted({r["transport"] for r in runs}, key=lambda t: (t != "ws", t)):
                pts = [
                    (r["clients"], r["us_per_delivery"][part])
                    for r in runs
                    if r["variant"] == v and r["transport"] == t and "us_per_delivery" in r
                ]
                if pts:
                    series.append({"name": f"{v} {t}", "color": colors[v],
                                   "dash": DASHES.get(t, ""), "points": pts})
        rate = runs[0]["rate"] if runs else 0
        what = "user + system" if part == "total" else "user only"
        svg = line_chart(
            f"Server CPU per delivered event ({what}), {rate:g} events/s",
            "clients (log scale)", "CPU µs per delivery", series, note,
        )
        if svg:
            charts[name] = svg
    return charts


# ---------------------------------------------------------------------------------------------
# README

METHOD = """\
- **A fresh server for every run** (one per variant, cell and round), started by the script on
  `--bind 127.0.0.1:0` with `--rate 0 --log warn` and its connection limits raised past the
  largest client count (`--max-connections`, `--max-transport-connections`,
  `--max-connections-per-ip 0`; only flags its `--help` lists). loadgen drives it over
  `--url` (`--transports T --http 1.1 --clients N --rate R --payload-bytes 100 --drain 1s`, 2 s for polls) and
  publishes every event itself with `POST /publish`, so the same events reach every variant.
- **Interleaved, repeated**: within a cell the variants run back to back, round after round
  (`--repeats`), then the next cell; the order rotates each round (server, floor, Nchan; then
  floor, Nchan, server; …), so no variant always runs first or last. Every ratio compares
  medians of runs less than a few minutes apart on the same machine, and the range shows the
  spread.
- **Nchan** (Debian's `libnginx-mod-nchan`, installed by the script when missing: apt-get
  update, then install with `nginx-light`) runs from `deploy/nchan.conf` in a temporary prefix
  of its own, on a free loopback port, with one worker process: the worker's CPU, memory and
  descriptors are what is sampled (the master only waits), and the master is stopped by its
  PID. (`master_process off` would make it one process, but Nchan 1.3.6 aborts on exit there.)
  loadgen drives it with `--target nchan`: a channel per run, the publisher sending the whole
  feedlab envelope (its own seq and send time inside) as the message body, WebSocket and
  EventSource on `/sub/<channel>`, long polling there too (several messages per answer:
  `nchan_longpoll_multipart_response raw`), short polling on `/poll/<channel>` (Nchan's
  interval-poll answers one message per request, so a client that is behind asks again at
  once until it gets `304`: about one request per delivery at these rates). Nchan has no
  `/stats`: its runs are checked by loadgen's own integrity counts only.
- **The bracket**: loadgen connects every client, publishes for the duration, drains, then
  disconnects. The script lists `/proc/<pid>/fd` of the server until it holds one descriptor per
  client more than before loadgen started (every client connected; loadgen starts publishing
  within ~10 ms of that), then reads `utime`/`stime` from `/proc/<pid>/stat` (all threads) every
  50 ms. The window is [all connected, + `publish_s` (from loadgen's report) + drain − 0.1 s],
  interpolated between samples: connection set-up and teardown are outside it; the drain (the
  last deliveries, idle streams, the last short polls) is inside. No idle baseline is
  subtracted: an idle server with idle connections uses next to nothing in the drain.
  CPU per delivery = CPU in the window / deliveries (`events_received`). `/proc` counts CPU in
  ticks of 10 ms: over a 10 s run that is about 1% or less. The user/system split is the
  kernel's tick sampling (each tick is charged to the mode it interrupted, scaled to the exact
  total), so it is statistical: steady over a 10 s run, noisy over a 3 s one.
- **Loopback**: on 127.0.0.1 the kernel does the receiver's TCP work (softirq) in the sender's
  system call, so the server's *system* time includes much of the clients' receive path, and
  it is the same kernel work for every variant that writes the same bytes. *User* time is where
  the server's own overhead (framework, encoding, per-connection bookkeeping) shows; read the
  user ratio next to the total one.
- **Latency** is loadgen's: publish (its send time is inside the event) to receipt, on its own
  clock, over every delivery of the run.
- **Shared machine**: 2 cores run the server and loadgen at once, and other people's builds
  may run too. "other procs" is the CPU the rest of the machine used in the window
  (`/proc/stat` busy − server − loadgen, in cores): a run with much of it is suspect; rerun it
  with `--sections` rather than trust it.
- **Integrity**: every run must deliver every event to every client exactly once (0 gaps,
  0 duplicates, loadgen's counts equal to the server's `/stats`); a run that does not is
  flagged below and in `results.json` (`ok`, `problems`).
- **Idle memory**: a fresh server per transport and variant; this script's own process (not the
  server's) opens the idle connections (`floor/scripts/idle_rss.py`: 50 warm-up connections
  opened and closed, then N held, RSS read once it stops moving). Growth per connection =
  (VmRSS after − VmRSS before) / N. An idle WebSocket or SSE stream is subscribed; an idle long
  poll is held (`timeout_ms=120000`; on Nchan a plain GET of the subscriber location); an idle
  short-poll connection is kept alive after one answered poll. Each transport is a separate
  server run: the hard open-file limit here is 20,000 per process.
"""


def section_header(sec: dict) -> list[str]:
    return [
        f"Run {sec['started_at']} – {sec['finished_at']}:",
        "",
        "```sh",
        sec["command"],
        "```",
        "",
    ]


def write_readme(doc: dict, out: Path) -> str:
    m, secs, ref = doc["machine"], doc["sections"], doc["reference"]
    L = ["# Cost of fan-out: the server, the floor and Nchan side by side", ""]
    if doc["mode"] == "quick":
        L += [
            "> **Quick mode** (`--quick`: 3 s runs, small client counts). This proves the harness",
            "> works end to end; the numbers are not a measurement. The benchmark is",
            "> `python3 scripts/fanout/bench.py` (no `--quick`).",
            "",
        ]
    missing = [s for s in SECTIONS if s not in secs]
    if missing:
        L += [f"Sections not in this directory yet: {', '.join(missing)} (see `--sections`).", ""]
    L += [
        "Written by [`scripts/fanout/bench.py`](../../scripts/fanout/bench.py) (its docstring says why "
        "and how); every raw number is in [`results.json`](results.json).",
        "",
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gib']} GiB, {m['os']}, "
        f"kernel {m['kernel']}; open-file limit {m['nofile_limit'][0]:,} (hard {m['nofile_limit'][1]:,}).",
        "",
        "Targets from issue 17, for the server: CPU per delivery (and, polling, per request) ≤ "
        f"{TARGETS['cpu_ratio']}× the floor's and ≤ Nchan's, p99 latency ≤ Nchan's, idle memory per "
        f"connection ≤ {TARGETS['idle_ratio']}× the floor's and ≤ {TARGETS['idle_vs_peer']}× Nchan's.",
        "",
    ]
    any_sec = next(iter(secs.values()), None)
    if any_sec:
        L += ["Variants (each started with the flags in *Method*, plus):", ""]
        L += table(
            ["variant", "command", "available"],
            [[f"`{v['label']}`" + (" (reference)" if v["label"] == ref else ""),
              f"`{shlex.join(v['command'])}`", "yes" if v["available"] else f"no: {v['problem'][:300]}"]
             for v in any_sec["variants"]],
            "lll",
        )
        L += ["", "Binaries (copied before the run, so a rebuild during it changes nothing):", ""]
        L += table(["binary", "built (mtime)", "sha256"],
                   [[f"`{k}`", b["built"], b["sha256"][:16]] for k, b in any_sec["binaries"].items()], "lll")
        L.append("")

    peer = doc.get("peer")
    if "matrix" in secs and "cells" in secs["matrix"]:
        L += targets_table(secs["matrix"]["cells"], ref, peer)
    L += ["## Method", "", METHOD]

    if "matrix" in secs:
        sec = secs["matrix"]
        L += ["## The matrix", ""] + section_header(sec)
        L += [
            f"Every cell ran {sec['settings'].get('repeats', 1)} time(s) per variant, the variants back to back in each round;",
            "numbers are the median of the rounds with the range (min–max) in brackets. CPU is the server's µs per",
            "delivered event (user + system; user alone beside it) and, for polling, per request; × columns divide",
            f"medians by `{ref}`'s{f' and `{peer}`' + chr(39) + 's' if peer else ''} in the same cell. p50/p99: delivery latency. Other procs:",
            "CPU (cores) the rest of the machine used meanwhile (median).",
            "",
        ]
        for cell in sec.get("cells", []):
            w = cell["workers"]
            L += [f"### {cell['transport']}: {cell['clients']:,} clients × {fmt_rate(cell['rate'])}, "
                  f"{'default worker threads' if w == 'default' else w + ' worker thread'}", ""]
            L += cell_table(cell, ref, peer) + [""]

    if "sweep" in secs:
        sec = secs["sweep"]
        L += ["## CPU per delivery against client count", ""] + section_header(sec)
        for name in ("sweep_cpu_total.svg", "sweep_cpu_user.svg"):
            if (out / name).exists():
                L += [f"![{name}]({name})", ""]
        variants = list(dict.fromkeys(r["variant"] for r in sec["runs"]))
        transports = list(dict.fromkeys(r["transport"] for r in sec["runs"]))
        header = ["clients"] + [f"{v} {t}" for t in transports for v in variants]
        rows = []
        for c in sorted({r["clients"] for r in sec["runs"]}):
            row = [f"{c:,}"]
            for t in transports:
                for v in variants:
                    r = next((x for x in sec["runs"] if (x["clients"], x["transport"], x["variant"]) == (c, t, v)), None)
                    u = (r or {}).get("us_per_delivery")
                    x = (r or {}).get("vs_reference") or {}
                    cell = f"{u['total']:.2f} ({u['user']:.2f})" if u else "–"
                    if u and v != ref and x.get("cpu_total"):
                        cell += f" {x['cpu_total']:.2f}×"
                    row.append(cell)
            rows.append(row)
        L += [f"Server CPU µs per delivery, total (user), and total × {ref}; "
              f"{fmt_rate(sec['runs'][0]['rate'] if sec['runs'] else 0)}, default worker threads"
              + ("; cells also in the matrix are that run, not a new one" if any(r.get("reused_from") for r in sec["runs"]) else "")
              + ".", ""]
        L += table(header, rows) + [""]

    if "polling" in secs:
        sec = secs["polling"]
        L += ["## Polling", ""] + section_header(sec)
        L += [
            "Against the server only (the matrix has every variant). Short polling: each client polls every",
            f"{sec['runs'][0].get('poll_interval_s', 1) if sec['runs'] else 1:g} s (HTTP/1.1 keep-alive); requests are those in the window (a short-poll",
            "client's first request is made while connecting, before it). µs columns: user / system / total.",
            "",
        ]
        rows = []
        for r in sec["runs"]:
            d, q = r.get("us_per_delivery"), r.get("us_per_request")
            rows.append([
                r["transport"], f"`{r['variant']}`", f"{r['clients']:,} × {fmt_rate(r['rate'])}",
                f"{r.get('deliveries', 0):,}", f"{r.get('requests_in_window', 0):,}",
                f"{d['user']:.2f} / {d['system']:.2f} / **{d['total']:.2f}**" if d else "–",
                f"{q['user']:.1f} / {q['system']:.1f} / **{q['total']:.1f}**" if q else "–",
                fmt_latency(r.get("latency_us", {}).get("p50")), fmt_latency(r.get("latency_us", {}).get("p99")),
                integrity(r), others(r),
            ])
        L += table(["transport", "variant", "clients × rate", "deliveries", "requests", "µs / delivery",
                    "µs / request", "p50", "p99", "gaps / dups", "other procs"], rows, "llrrrrrrrrr") + [""]

    if "idle" in secs:
        sec = secs["idle"]
        L += ["## Idle memory", ""] + section_header(sec)
        rows = []
        for r in sec["runs"]:
            own = r["variant"] not in (ref, peer)
            rows.append([
                r["transport"], f"`{r['variant']}`", f"{r['count']:,}", f"{r['rss_before_kib']:,}",
                f"{r['rss_after_kib']:,}", f"**{r['kib_per_connection']:.2f}**",
                fmt_x(r.get("vs_reference"), TARGETS["idle_ratio"] if own else None),
                fmt_x(r.get("vs_peer"), TARGETS["idle_vs_peer"] if own else None), f"{r['open_s']:.1f} s",
            ])
        L += table(["transport", "variant", "idle connections", "RSS before (KiB)", "RSS after (KiB)",
                    "KiB per connection", f"× {ref} (≤ {TARGETS['idle_ratio']})",
                    f"× {peer or 'peer'} (≤ {TARGETS['idle_vs_peer']})", "time to open"],
                   rows, "llrrrrrrr") + [""]

    if "perf" in secs:
        sec = secs["perf"]
        L += ["## Where the time goes", ""] + section_header(sec)
        tool = sec["runs"][0].get("profiler", "perf") if sec["runs"] else "perf"
        if tool == "perf":
            L += ["`perf record -e cpu-clock -g -F 999 -p <server pid>` over the publishing phase of a run of its own",
                  "(not one of the measured runs: sampling costs CPU), then `perf report --stdio --no-children -g none`",
                  "by shared object and by function (self time), trimmed to about 60 lines. `[kernel.kallsyms]` is",
                  "system time; on loopback much of it is the clients' TCP receive path (see *Method*).", ""]
        else:
            L += ["`perf record` gave no samples here, so these are `valgrind --tool=callgrind` runs (small and short:",
                  "valgrind is 20–50× slower), `callgrind_annotate --inclusive=no` tops: instructions, not time.", ""]
        rows = [[f"[{r['transport']} `{r['variant']}`]({r['profile_file']})", f"{r['clients']:,} × {fmt_rate(r['rate'])}",
                 f"{r['duration_s']:g} s", f"{r.get('profile_samples', 0):,}"] for r in sec["runs"]]
        L += table(["profile", "clients × rate", "duration", "samples" if tool == "perf" else "instructions"], rows) + [""]

    problems = []
    for name, sec in secs.items():
        for v in sec.get("variants", []):
            if not v["available"] and name == next(iter(secs)):
                problems.append(f"variant `{v['label']}` not run: {v['problem'][:300]}")
        for r in sec.get("runs", []):
            if r.get("problems") and not r.get("reused_from"):
                problems.append(
                    f"{name}: {r['transport']} {r.get('clients', r.get('count'))} × {fmt_rate(r.get('rate', 0))} "
                    f"workers={r.get('workers', 'default')} `{r['variant']}`: " + "; ".join(r["problems"])
                )
    L += ["## Problems", ""]
    L += [f"- {p}" for p in problems] if problems else ["None: every run delivered every event exactly once, "
                                                        "and every variant ran."]
    L.append("")
    text = "\n".join(L)
    (out / "README.md").write_text(text)
    return text


def fmt_spread(st: dict | None, f=None) -> str:
    f = f or fmt_us
    if not st:
        return "–"
    if st["n"] == 1 or st["min"] == st["max"]:
        return f(st["median"])
    return f"{f(st['median'])} ({f(st['min'])}–{f(st['max'])})"


def cell_table(cell: dict, ref: str, peer: str | None) -> list[str]:
    polling = cell["transport"] in POLLING
    rows = []
    for v, a in cell["variants"].items():
        x, y = a.get("vs_reference") or {}, a.get("vs_peer") or {}
        row = [f"`{v}`", str(a["runs"]), f"{a['deliveries']:,}", f"**{fmt_spread(a['cpu_total'])}**",
               fmt_us((a["cpu_user"] or {}).get("median"))]
        if polling:
            row += [fmt_spread(a["cpu_per_request"], lambda u: f"{u:.1f}"),
                    fmt_us((a["requests_per_delivery"] or {}).get("median"))]
        row += [fmt_latency((a["p50"] or {}).get("median")), fmt_spread(a["p99"], fmt_latency),
                "1" if v == ref else fmt_x(x.get("cpu_total"), TARGETS["cpu_ratio"] if v != peer else None)]
        if polling:
            row.append("1" if v == ref else fmt_x(x.get("cpu_per_request")))
        if peer:
            row += ["1" if v == peer else fmt_x(y.get("cpu_total"), TARGETS["cpu_vs_peer"] if v != ref else None),
                    "1" if v == peer else fmt_x(y.get("p99"), TARGETS["p99_vs_peer"] if v != ref else None)]
        ok = f"{a['gaps']} / {a['duplicates']}"
        row += [ok if a["ok"] else f"**{ok} ✗**", fmt_us((a["others"] or {}).get("median"))]
        rows.append(row)
    head = ["variant", "runs", "deliveries", "µs / delivery", "user µs"]
    if polling:
        head += ["µs / request", "requests / delivery"]
    head += ["p50", "p99", f"× {ref} (CPU)"]
    if polling:
        head.append(f"× {ref} (per request)")
    if peer:
        head += [f"× {peer} (CPU)", f"× {peer} (p99)"]
    head += ["gaps / dups", "other procs"]
    return table(head, rows)


def targets_table(cells: list[dict], ref: str, peer: str | None) -> list[str]:
    """The issue's targets, for every variant that is neither the floor nor the peer: CPU per
    delivery (and per request) <= 1.3x the floor's and <= the peer's, p99 <= the peer's."""
    rows = []
    for cell in cells:
        for v, a in cell["variants"].items():
            if v in (ref, peer):
                continue
            x, y = a.get("vs_reference") or {}, a.get("vs_peer") or {}
            polling = cell["transport"] in POLLING
            rows.append([
                cell["transport"], f"{cell['clients']:,} × {fmt_rate(cell['rate'])}", f"`{v}`",
                fmt_x(x.get("cpu_total"), TARGETS["cpu_ratio"]),
                fmt_x(x.get("cpu_per_request"), TARGETS["cpu_ratio"]) if polling else "–",
                fmt_x(y.get("cpu_total"), TARGETS["cpu_vs_peer"]) if peer else "–",
                fmt_x(y.get("p99"), TARGETS["p99_vs_peer"]) if peer else "–",
                fmt_x(x.get("p99")),
                "yes" if a["ok"] else "**no**",
            ])
    if not rows:
        return []
    return ["## Summary: the targets", "",
            f"Medians of the repeats, as ratios (✓ meets the target). `{ref}` is the floor"
            + (f", `{peer}` the production peer." if peer else "."), ""] + table(
        ["transport", "clients × rate", "variant", f"CPU / delivery × {ref} (≤ {TARGETS['cpu_ratio']})",
         f"CPU / request × {ref} (≤ {TARGETS['cpu_ratio']})", f"CPU / delivery × {peer or 'peer'} (≤ 1)",
         f"p99 × {peer or 'peer'} (≤ 1)", f"p99 × {ref}", "every event, once"], rows, "lllrrrrrl") + [""]


def integrity(r: dict) -> str:
    if "gaps" not in r:
        return "–"
    s = f"{r['gaps']} / {r['duplicates']}"
    return s if r.get("ok") else f"**{s} ✗**"


def others(r: dict) -> str:
    c = r.get("cores", {}).get("others")
    return "–" if c is None else f"{c:.2f}"


def streaming_table(rows: list[dict], ref: str) -> list[str]:
    out = []
    for r in rows:
        u, x, lat = r.get("us_per_delivery"), r.get("vs_reference") or {}, r.get("latency_us", {})
        is_ref = r["variant"] == ref
        out.append([
            f"`{r['variant']}`", f"{r.get('deliveries', 0):,}",
            fmt_us(u and u["user"]), fmt_us(u and u["system"]), f"**{fmt_us(u and u['total'])}**",
            "1" if is_ref else fmt_x(x.get("cpu_total"), TARGETS["cpu_ratio"]),
            "1" if is_ref else fmt_x(x.get("cpu_user")),
            fmt_latency(lat.get("p50")), fmt_latency(lat.get("p99")),
            "1" if is_ref else fmt_x(x.get("p99"), TARGETS["p99_ratio"]),
            integrity(r), others(r),
        ])
    return table(["variant", "deliveries", "user µs", "system µs", "total µs", f"× {ref} (total)",
                  f"× {ref} (user)", "p50", "p99", f"× {ref} (p99)", "gaps / dups", "other procs"], out)


def summary_table(runs: list[dict], ref: str) -> list[str]:
    """One row per cell and non-reference variant: the ratios the issue sets targets for."""
    rows = []
    for r in runs:
        if r["variant"] == ref:
            continue
        x = r.get("vs_reference") or {}
        rows.append([
            r["transport"], f"{r['clients']:,} × {fmt_rate(r['rate'])}", r["workers"], f"`{r['variant']}`",
            fmt_x(x.get("cpu_total"), TARGETS["cpu_ratio"]), fmt_x(x.get("cpu_user")),
            fmt_x(x.get("p99"), TARGETS["p99_ratio"]), integrity(r),
        ])
    if not rows:
        return []
    return ["## Summary: ratios to the floor", ""] + table(
        ["transport", "clients × rate", "workers", "variant", f"CPU/delivery × {ref} (≤ {TARGETS['cpu_ratio']})",
         f"user CPU × {ref}", f"p99 × {ref} (≤ {TARGETS['p99_ratio']})", "gaps / dups"], rows, "lrllrrrr") + [""]


# ---------------------------------------------------------------------------------------------
# Command line and the whole run


def cells_arg(s: str) -> list[tuple[int, float]]:
    """`1000x50,100x200` -> [(1000, 50.0), (100, 200.0)]: clients x events per second."""
    out = []
    for item in filter(None, (x.strip() for x in s.split(","))):
        m = re.fullmatch(r"(\d+)\s*[x×]\s*([\d.]+)", item)
        if not m:
            raise argparse.ArgumentTypeError(f"expected CLIENTSxRATE, got {item!r}")
        out.append((int(m.group(1)), float(m.group(2))))
    return out


def list_arg(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Cost of fan-out: the server, the floor and Nchan side by side "
        "(see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help=f"3 s runs and small counts, to check the harness (settings: {QUICK}); "
                        "writes to a temporary directory unless --out is given")
    p.add_argument("--out", type=Path, help="results directory (default results/fanout, or "
                   "$TMPDIR/feedlab-fanout-quick with --quick)")
    p.add_argument("--sections", type=list_arg, default=list(DEFAULT_SECTIONS),
                   help="which parts to run; the others are kept from an existing results.json "
                        f"of the same mode. Any of {','.join(SECTIONS)}")
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help="servers to compare, run in this order within each cell: comma-separated "
                        "[LABEL=]BIN[:ARG[:ARG...]], BIN a name in --bin-dir or a path. A variant "
                        "whose binary or flag does not exist (yet) is reported and skipped")
    p.add_argument("--reference", help="label of the variant the others are divided by "
                   "(default: the one whose binary is `floor`)")
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release",
                   help="where server, floor and loadgen are (build: cargo build --release -p "
                        "loadgen -p server -p floor)")
    p.add_argument("--no-snapshot", action="store_true",
                   help="run the binaries in place instead of copies made at the start")
    p.add_argument("--transports", type=list_arg, default=list(TRANSPORTS),
                   help="transports of the matrix (and the sweep and idle sections, streaming ones only)")
    p.add_argument("--poll-cells", type=cells_arg, help=f"matrix cells of long and short polling (default {FULL['poll_cells']})")
    p.add_argument("--repeats", type=int, help=f"runs per variant and cell, interleaved (default {FULL['repeats']})")
    p.add_argument("--duration", type=float, help=f"seconds of publishing per run (default {FULL['duration']:g})")
    p.add_argument("--cells", type=cells_arg, help=f"matrix cells, CLIENTSxRATE (default {FULL['cells']})")
    p.add_argument("--workers", type=list_arg, default=["1"],
                   help="worker-thread settings per cell: `default` (one per core) or a number "
                        "(Nchan runs one nginx process whatever this says)")
    p.add_argument("--sweep-clients", type=lambda s: [int(x) for x in list_arg(s)],
                   help=f"client counts of the chart (default {FULL['sweep_clients']})")
    p.add_argument("--sweep-rate", type=float, help=f"events/s of the chart (default {FULL['sweep_rate']:g})")
    p.add_argument("--long-poll", type=lambda s: cells_arg(s)[0], help=f"CLIENTSxRATE (default {FULL['long_poll']})")
    p.add_argument("--short-poll", type=lambda s: cells_arg(s)[0], help=f"CLIENTSxRATE (default {FULL['short_poll']})")
    p.add_argument("--poll-interval", type=float, default=1.0, help="short-poll interval, seconds (loadgen's default)")
    p.add_argument("--idle-count", type=int, help=f"idle connections per server (default {FULL['idle_count']})")
    p.add_argument("--perf-kinds", type=list_arg, default=["long-poll", "short-poll", "ws"],
                   help="profiles to record: long-poll and short-poll of the server, ws/sse of every variant")
    p.add_argument("--perf-ws", type=lambda s: cells_arg(s)[0], help=f"CLIENTSxRATE of the ws/sse profiles (default {FULL['perf_ws']})")
    p.add_argument("--perf-duration", type=float, help=f"seconds per profiled run (default {FULL['perf_duration']:g})")
    p.add_argument("--profiler", choices=["auto", "perf", "callgrind"], default="auto",
                   help="auto: perf when `perf record` gets samples here, else valgrind's callgrind")
    p.add_argument("--payload-bytes", type=int, default=100, help="padding in each event's data")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    p.add_argument("--keep-work", action="store_true", help="keep the work directory (logs, loadgen reports, perf data)")
    p.add_argument("--dry-run", action="store_true", help="check the variants, print the plan and its duration, stop")
    o = p.parse_args(argv)
    base = QUICK if o.quick else FULL
    for k, v in base.items():
        if getattr(o, k) is None:
            parse = {"cells": cells_arg, "poll_cells": cells_arg, "long_poll": lambda s: cells_arg(s)[0], "short_poll": lambda s: cells_arg(s)[0],
                     "perf_ws": lambda s: cells_arg(s)[0],
                     "sweep_clients": lambda s: [int(x) for x in list_arg(s)]}.get(k, lambda x: x)
            setattr(o, k, parse(v))
    bad = [s for s in o.sections if s not in SECTIONS]
    if bad:
        p.error(f"--sections: unknown {bad}; pick from {','.join(SECTIONS)}")
    bad = [t for t in o.transports if t not in TRANSPORTS]
    if bad:
        p.error(f"--transports: any of {','.join(TRANSPORTS)}; got {bad}")
    if o.repeats < 1:
        p.error("--repeats must be at least 1")
    bad = [k for k in o.perf_kinds if k not in ("long-poll", "short-poll", "ws", "sse")]
    if bad:
        p.error(f"--perf-kinds: long-poll, short-poll, ws, sse; got {bad}")
    if o.out is None:
        o.out = Path(tempfile.gettempdir()) / "feedlab-fanout-quick" if o.quick else ROOT / "results" / "fanout"
    return o


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def load_existing(out: Path, mode: str, sections: list[str]) -> dict:
    """Sections of an earlier results.json of the same mode that this run does not redo."""
    path = out / "results.json"
    if set(sections) >= set(SECTIONS) or not path.exists():
        return {}
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return {}
    if old.get("schema") != SCHEMA or old.get("mode") != mode:
        print(f"note: {path} is from another mode or version; its sections are not kept")
        return {}
    return {k: v for k, v in old.get("sections", {}).items() if k not in sections}


def write_outputs(doc: dict, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out / "results.json")
    if "sweep" in doc["sections"]:
        sec = doc["sections"]["sweep"]
        variants = [v["label"] for v in sec["variants"] if v["available"]]
        note = f"{doc['machine']['cores']} cores, {doc['machine']['cpu_model']}; {sec['finished_at']}"
        if doc["mode"] == "quick":
            note = "QUICK MODE, not a measurement; " + note
        for name, svg in sweep_charts(sec["runs"], variants, doc["reference"], note).items():
            (out / name).write_text(svg)
    write_readme(doc, out)


def main(argv=None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (`cmd &` in a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="feedlab-fanout-"))
    mode = "quick" if opts.quick else "full"
    command = shlex.join(["python3", "scripts/fanout/bench.py", *(sys.argv[1:] if argv is None else argv)])
    rc = 0
    try:
        variants = parse_variants(opts.variants, opts.bin_dir)
        bins = snapshot_binaries(opts.bin_dir, variants, work, copy=not (opts.no_snapshot or opts.dry_run))
        if not Path(bins["loadgen"]).exists():
            raise SystemExit(f"no loadgen in {opts.bin_dir}: cargo build --release -p loadgen -p server -p floor")
        preflight(variants, opts.workers, work)
        reference = opts.reference or next((v.label for v in variants if v.is_floor), None)
        # The production peer the server is also held against: Nchan, when it runs.
        peer = next((v.label for v in variants if v.is_nchan and v.available), None)
        if reference not in [v.label for v in variants if v.available]:
            raise SystemExit(f"the reference variant {reference!r} is not available: "
                             + "; ".join(f"{v.label}: {v.problem}" for v in variants if not v.available))
        for v in variants:
            if not v.available:
                print(f"variant {v.label!r} skipped: {v.problem}")
        bench = Bench(opts, variants, Path(bins["loadgen"]), work)
        plan = bench.plan(opts.sections)
        bench.total_runs = sum(plan.values())
        est = bench.estimate_s(plan)
        print(f"{mode} run: {', '.join(f'{s} {n}' for s, n in plan.items())} runs; "
              f"about {est / 60:.0f} min; results to {opts.out}", flush=True)
        if opts.dry_run:
            for v in variants:
                print(f"  {v.label}: {shlex.join(v.command('default', display=True))}"
                      + ("" if v.available else f"  (skipped: {v.problem})"))
            return 0
        doc = {
            "schema": SCHEMA,
            "mode": mode,
            "generated_at": now_utc(),
            "machine": machine_info(),
            "targets": TARGETS,
            "reference": reference,
            "peer": peer,
            "sections": load_existing(opts.out, mode, opts.sections),
        }
        variants_doc = [
            {"label": v.label, "command": v.command("default", display=True), "available": v.available,
             "problem": v.problem}
            for v in variants
        ]
        settings = {k: (show_path(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()}
        for section in SECTIONS:
            if section not in opts.sections:
                continue
            started = now_utc()
            bench.current = []
            interrupted = None
            try:
                if section == "perf":
                    getattr(bench, section)(opts.out / "perf")
                else:
                    getattr(bench, section)()
            except KeyboardInterrupt as e:
                interrupted = e
            runs = bench.current
            if section == "idle":
                add_idle_ratios(runs, reference, peer)
            else:
                add_ratios(runs, reference)
            doc["sections"][section] = {
                "started_at": started,
                "finished_at": now_utc(),
                "command": command,
                "settings": settings,
                "variants": variants_doc,
                "binaries": bins["files"],
                "interrupted": interrupted is not None,
                "runs": runs,
            }
            if section == "matrix":
                doc["sections"][section]["cells"] = aggregate(runs, reference, peer)
            write_outputs(doc, opts.out)
            if interrupted is not None:
                raise interrupted
        bad = [r for s in doc["sections"].values() for r in s["runs"] if not r.get("ok", True)]
        rc = 1 if bad else 0
        print(f"done: {opts.out / 'README.md'}" + (f"; {len(bad)} run(s) with problems (see README)" if bad else ""))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started here; what was measured is written", file=sys.stderr)
        rc = 130
    finally:
        CHILDREN.stop_all()
        if opts.keep_work:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
