#!/usr/bin/env bash
# The slow-consumer measurement (README, "Slow consumers"): 1,000 connections that never read
# against a feed at 500 events/s of 1 KiB; the server's peak RSS with and without them, and a
# normal WebSocket client's latency (median over 5 s windows of each window's p99) alone and
# beside them. Two phases of FEEDLAB_SLOW_TEST_SECS seconds each (default 30): about a minute.
# A benchmark, not a test: it measures latency, so it runs on its own, on a quiet machine, in a
# release build. `./test.sh` checks the behaviour instead (server/tests/slow_consumers.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
FEEDLAB_SLOW_TEST_SECS="${FEEDLAB_SLOW_TEST_SECS:-30}" exec cargo bench -p server --bench slow_consumers "$@"
