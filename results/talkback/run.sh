#!/usr/bin/env bash
# The committed talking-back runs (results/talkback/), on loopback, against the server loadgen
# starts. Run from the repository root after `cargo build --release -p loadgen -p server`.
# Each run writes its own directory here; the sweep's chart and table are made from the sweep's
# runs by scripts/talkback_sweep.py.
# No -e: a run that finds loss exits 1 and still writes its report; the next runs go on.
set -uo pipefail
cd "$(dirname "$0")/../.."
loadgen=target/release/loadgen
out=results/talkback

# A chat room: 100 clients, each sending one message every 10 s; no server-side feed.
"$loadgen" --send-rate 0.1 --rate 0 --clients 100 --duration 30s --http 1.1,2 --repeat 1 \
  --quiet --out "$out/chat-room"

# A busy bidirectional session: 20 clients × 20 messages/s each.
"$loadgen" --send-rate 20 --rate 0 --clients 20 --duration 10s --http 1.1,2 --repeat 3 \
  --quiet --out "$out/busy-session"

# The sweep over --send-rate (20 clients), for the crossover chart.
sweep=()
for r in 0.1 0.5 2 10 40; do
  "$loadgen" --send-rate "$r" --rate 0 --clients 20 --duration 10s --http 1.1,2 --repeat 1 \
    --quiet --out "$out/sweep/rate-$r"
  sweep+=("$out/sweep/rate-$r")
done
python3 scripts/talkback_sweep.py "$out/sweep" "${sweep[@]}"
