#!/usr/bin/env bash
# Is loadgen the bottleneck? Short polling with keep-alive, 50 connections, 10 s, against one
# release server on 127.0.0.1: wrk (the Debian package) and loadgen in turn, twice each, on
# the same server process. Writes wrk-*.txt and loadgen-*/ here and prints the request rates.
#
#   results/wrk-comparison/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=results/wrk-comparison
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p server -p loadgen
out="$(mktemp)"
./target/release/server --bind 127.0.0.1:0 --rate 0 --log warn >"$out" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
url="$(head -1 "$out" | awk '{print $4}')"
rm -rf "$here"/loadgen-* "$here"/wrk-*.txt
for i in 1 2 3 4; do
  wrk -t2 -c50 -d10s "${url}poll" | tee "$here/wrk-$i.txt"
  sleep 1
  ./target/release/loadgen --url "$url" --transports short-poll --clients 50 \
    --poll-interval 0 --duration 10s --rate 0 --drain 0s --http 1.1 --seed 1 --quiet \
    --out "$here/loadgen-$i"
  sleep 1
done
python3 - "$here" <<'PY'
import json, re, sys, glob
here = sys.argv[1]
wrk = [float(re.search(r"Requests/sec:\s+([\d.]+)", open(f).read()).group(1)) for f in sorted(glob.glob(f"{here}/wrk-*.txt"))]
lg = []
for f in sorted(glob.glob(f"{here}/loadgen-*/report.json")):
    p = json.load(open(f))["phases"][0]
    window = p["connect_s"] + p["publish_s"] + p["drain_s"]
    lg.append((p["http_requests"] / window, p["server_check"]["ok"], p["loadgen_cpu_s"], p["server_cpu_s"]))
for i, (w, l) in enumerate(zip(wrk, lg), 1):
    print(f"round {i}: wrk {w:,.0f} req/s, loadgen {l[0]:,.0f} req/s ({l[0]/w:.0%} of wrk; /stats agreement {'ok' if l[1] else 'FAILED'}; loadgen CPU {l[2]:.1f} s, server CPU {l[3]:.1f} s)")
mw = sum(wrk) / len(wrk); ml = sum(l[0] for l in lg) / len(lg)
print(f"mean: wrk {mw:,.0f} req/s, loadgen {ml:,.0f} req/s = {ml/mw:.0%} of wrk")
PY
