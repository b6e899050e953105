#!/usr/bin/env python3
"""Fan-out cost over TLS: the server's fast path over rustls against the floor over rustls.

Why: a server that terminates TLS itself is what most deployments without a separate proxy
run, and until issue 29 the server's TLS connections all went through actix-web (21-24 KiB per
idle stream). Issue 29's targets over TLS: idle memory per connection at most 1.5x the TLS
floor's and at most 10 KiB, CPU per delivery at most 1.15x the floor's.

This is scripts/fanout/bench.py with TLS variants, not a second benchmark: it imports bench.py
and runs its sections (matrix, idle, perf, ...) with every option it takes, changing only
what TLS needs:

- one certificate for the run (ECDSA P-256 for localhost and 127.0.0.1, made with openssl,
  the key type the server's --tls-self-signed makes), given to every variant as
  `--tls-cert`/`--tls-key`;
- the variants (default): `server` (the fast path over rustls), `floor` (the floor over
  rustls) and `server-actix` (`--fast-path=false`: actix-tls and actix-http, for reference);
- loadgen reaches them at `https://` with `--ca` (HTTP/1.1 by ALPN: bench.py passes
  `--http 1.1`), and the idle section opens its connections over TLS (floor/scripts/
  idle_rss.py's `use_tls`);
- results to results/fanout-tls/ (README.md, results.json, perf/), 2,000 idle connections
  per server by default (the issue's figure; Python's TLS client holds far more memory per
  connection than a plain socket).

    cargo build --release -p loadgen -p server -p floor
    python3 scripts/fanout/tls.py --dry-run
    python3 scripts/fanout/tls.py                          # matrix and idle (about 25 minutes)
    python3 scripts/fanout/tls.py --sections idle          # idle memory only (about 3 minutes)
    python3 scripts/fanout/tls.py --sections perf --perf-kinds sse,ws
    python3 scripts/fanout/tls.py --quick

`--tls-variants server,floor` picks among the three; every other option is bench.py's
(`--help`). Python 3.11 standard library, and openssl.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (scripts/fanout/bench.py)
import idle_rss  # noqa: E402  (floor/scripts/idle_rss.py, put on the path by bench)

OUT = bench.ROOT / "results" / "fanout-tls"
IDLE_COUNT = 2_000
DEFAULT_SECTIONS = "matrix,idle"
# The variants, by name (`--tls-variants`); `{tls}` is the run's certificate and key flags.
VARIANTS = {
    "server": "server=server:{tls}",
    "floor": "floor=floor:{tls}",
    "server-actix": "server-actix=server:{tls}:--fast-path=false",
}


def make_certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, and its key (PEM)."""
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "7", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         # An end-entity certificate: webpki refuses a CA certificate as the server's own.
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def start_server(cmd, log_path, timeout=bench.START_TIMEOUT_S):
    """bench.start_server for a server that prints `https://`."""
    log = open(log_path, "w")
    try:
        p = bench.CHILDREN.start(cmd, stdout=log, stderr=bench.subprocess.STDOUT)
    finally:
        log.close()
    deadline = bench.time.monotonic() + timeout
    while bench.time.monotonic() < deadline:
        m = bench.re.search(r"^feedlab listening on https?://([^/\s]+)/$", log_path.read_text(errors="replace"), bench.re.M)
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
        bench.time.sleep(0.02)
    bench.CHILDREN.stop(p)
    out = log_path.read_text(errors="replace").strip()
    raise RuntimeError(f"did not start: {out[-1500:] or 'no output'}")


class TlsChildren(bench.Children):
    """bench.Children that sends loadgen to `https://`, trusting the run's certificate."""

    def __init__(self, cert: Path):
        super().__init__()
        self.cert = cert

    def start(self, cmd, **kw):
        cmd = list(cmd)
        if "--url" in cmd:
            at = cmd.index("--url") + 1
            cmd[at] = cmd[at].replace("http://", "https://", 1)
            cmd += ["--ca", str(self.cert)]
        return super().start(cmd, **kw)


def has(argv: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    shown = list(argv)
    # `--tls-variants server,floor,server-actix`: which of the three (bench.py's --variants
    # would need the run's certificate, which does not exist yet).
    names = list(VARIANTS)
    if "--tls-variants" in argv:
        at = argv.index("--tls-variants")
        names = [n for n in argv[at + 1].split(",") if n]
        del argv[at : at + 2]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            raise SystemExit(f"--tls-variants: any of {','.join(VARIANTS)}, got {unknown}")
    work = Path(tempfile.mkdtemp(prefix="feedlab-fanout-tls-"))
    cert, key = make_certificate(work)
    tls = f"--tls-cert:{cert}:--tls-key:{key}"
    defaults = []
    if not has(argv, "--variants"):
        defaults += ["--variants", ",".join(VARIANTS[n].format(tls=tls) for n in names)]
    if not has(argv, "--out") and not has(argv, "--quick"):
        defaults += ["--out", str(OUT)]
    if not has(argv, "--sections"):
        defaults += ["--sections", DEFAULT_SECTIONS]
    if not has(argv, "--idle-count") and not has(argv, "--quick"):
        defaults += ["--idle-count", str(IDLE_COUNT)]
    bench.start_server = start_server
    bench.CHILDREN = TlsChildren(cert)
    idle_rss.use_tls(cert)
    print("python3 scripts/fanout/tls.py " + shlex.join(shown), flush=True)
    try:
        rc = bench.main(defaults + argv)
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else (None if has(argv, "--quick") else OUT)
        readme = out / "README.md" if out else None
        if readme and readme.exists() and "--dry-run" not in argv:
            readme.write_text(
                "# Fan-out over TLS\n\n"
                f"Made by `python3 scripts/fanout/tls.py {shlex.join(shown)}`: bench.py's sections with "
                "TLS variants (see scripts/fanout/tls.py). The commands below are what it passed to "
                "bench.py; the certificate was a temporary one, and every loadgen command also had "
                "`https://` and `--ca CERT`. The ✓ and ✗ below are bench.py's targets (issue 17); issue 29's "
                "over TLS are CPU per delivery at most 1.15x the floor's and idle memory at most 1.5x the "
                "floor's and at most 10 KiB.\n\n" + readme.read_text()
            )
        return rc
    finally:
        for f in (cert, key):
            f.unlink(missing_ok=True)
        work.rmdir()


if __name__ == "__main__":
    sys.exit(main())
