"""Where a benchmark script's result was made: the commit (and whether the tree held changes)
and the machine. One copy for the scripts that write a result set's README by hand
(scripts/storm/bench.py, scripts/beyond/hundred_k.py); loadgen's own reports carry the same
record from Rust (feedlab-report's `Record`)."""

import os
import platform
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def git(*args):
    try:
        return subprocess.check_output(["git", *args], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def commit():
    """The short commit, marked when tracked files differ from it."""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores, {model}{mem}, Linux {platform.release()}"
