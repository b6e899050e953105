"""What the processes of a run cost, read from /proc: shared by burst_cost.py and hundred_k.py.

Why /proc and not loadgen's own figure: loadgen reads the servers' CPU from before its clients
connect until after they have gone, so at one event every few seconds its "server CPU per
delivery" carries every connection's set-up and teardown. Sampling the servers' CPU and their open
files (one per connection) splits the run in two: connecting (from the start until every client
holds its connection) and the bursts (while every client is connected, so that window's CPU over
its deliveries is what a delivery costs). Both scripts read the windows the same way, here.

Python 3 standard library only.
"""

import os
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, grace, sig=signal.SIGTERM):
    """Sends `sig` to `proc` (by its PID), SIGKILL after `grace` s; reaps it."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def cpu_s(pid):
    """utime + stime of `pid`, seconds (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def open_files(pid):
    """Open file descriptors of `pid` (0 once it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class Sample:
    """One reading: when, the servers' CPU and open files (summed), the others' CPU, and the RSS
    of every process (summed). A CPU is None when one of its processes was gone."""

    __slots__ = ("t", "servers_cpu", "servers_fds", "others_cpu", "rss")

    def __init__(self, t, servers_cpu, servers_fds, others_cpu, rss):
        self.t, self.servers_cpu, self.servers_fds = t, servers_cpu, servers_fds
        self.others_cpu, self.rss = others_cpu, rss


def _sum(values):
    return None if any(v is None for v in values) else sum(values)


class Sampler(threading.Thread):
    """Every `interval` s: the servers' CPU and open files, and the CPU of the processes `others()`
    names, keyed by name (e.g. {"redis": [pid], "loadgen": [pids]}). Reading the open files lists
    /proc/PID/fd, about a millisecond per 10,000 connections: keep `interval` at 0.1 s for one
    server, longer for 100,000 connections."""

    def __init__(self, servers, others=lambda: {}, interval=0.1):
        super().__init__(daemon=True)
        self.servers, self.others, self.interval = servers, others, interval
        self.samples = []
        self.done = threading.Event()

    def read(self):
        servers = self.servers()
        others = self.others()
        every = list(servers) + [p for pids in others.values() for p in pids]
        return Sample(time.time(), _sum([cpu_s(p) for p in servers]), sum(open_files(p) for p in servers),
                      {name: _sum([cpu_s(p) for p in pids]) for name, pids in others.items()},
                      sum(rss_bytes(p) for p in every))

    def run(self):
        while not self.done.is_set():
            self.samples.append(self.read())
            self.done.wait(self.interval)

    def finish(self):
        self.done.set()
        if self.is_alive():
            self.join()

    def peak_rss(self):
        return max((s.rss for s in self.samples), default=0)

    def all_connected(self, base_fds, clients):
        """The readings in which the servers held at least `clients` connections more than the
        `base_fds` files they had open before any client came."""
        return [s for s in self.samples if s.servers_fds >= base_fds + clients]

    def cpu_between(self, t0, t1, name=None):
        """CPU of the servers (or of `others[name]`) from the last reading at or before `t0` (the
        first reading when `t0` came before it) to the first at or after `t1`: (seconds of CPU,
        seconds of wall clock), or None without a reading at or after `t1`."""
        def cpu(s):
            return s.servers_cpu if name is None else s.others_cpu.get(name)
        known = [s for s in self.samples if cpu(s) is not None]
        before = [s for s in known if s.t <= t0]
        after = [s for s in known if s.t >= t1]
        if not known or not after:
            return None
        a, b = (before[-1] if before else known[0]), after[0]
        return cpu(b) - cpu(a), b.t - a.t


def split(sampler, base_fds, clients, start, window=None):
    """Connecting and bursts, from `sampler`'s readings: connecting from `start` (when the clients
    began to connect) to the first reading with every client connected; the bursts over `window`
    ((t0, t1), every client connected throughout, else None) or, without one, from that first
    reading to the last with every client connected. Returns a dict of CPU seconds and times (s
    after `start`); `bursts_cpu_s` is None when every client was never connected at once, or
    some left inside `window`."""
    full = sampler.all_connected(base_fds, clients)
    out = {"all_connected_after_s": None, "connect_cpu_s": None, "bursts_cpu_s": None,
           "bursts_window_s": None, "fewest_connected_in_window": None}
    if not full:
        return out
    out["all_connected_after_s"] = round(full[0].t - start, 1)
    connect = sampler.cpu_between(start, full[0].t)
    if connect is not None:
        out["connect_cpu_s"] = round(connect[0], 2)
    t0, t1 = window if window is not None else (full[0].t, full[-1].t)
    inside = [s for s in sampler.samples if t0 <= s.t <= t1]
    if inside:
        out["fewest_connected_in_window"] = min(s.servers_fds for s in inside) - base_fds
    if not inside or any(s.servers_fds < base_fds + clients for s in inside):
        return out
    bursts = sampler.cpu_between(t0, t1)
    if bursts is not None:
        out["bursts_cpu_s"], out["bursts_window_s"] = round(bursts[0], 2), round(bursts[1], 1)
    return out
