#!/usr/bin/env bash
# results/networks/: the reference load (50 clients per transport, 20 events/s of 100 B, 10 s
# per phase; HTTP/1.1 and, for polling, 1.0) on loopback and across emulated LTE, 4G, 3G and 3G
# with 2% loss (`loadgen --network`, WebPageTest's profiles). Needs root, /dev/net/tun and
# iproute2. Usage: scripts/networks.sh [out-dir]   (default results/networks)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/networks}
cargo build --release -p loadgen -p server
# A longer drain than the default: on 3G the link is the bottleneck (below), and events queued
# in it at the end of publishing still arrive.
./target/release/loadgen \
  --network none --network lte --network 4g --network 3g --network '3g,loss=2%' \
  --clients 50 --rate 20 --duration 10s --http 1.1,1.0 --drain 5s --seed 13 \
  --out "$out"
