#!/usr/bin/env bash
# Runs every feedlab test. Installs what the tests need when it is missing: curl, Debian's chromium
# and firefox-esr (browser tests; Firefox is driven through Python's `marionette-driver`),
# redis-server and nginx (scale-out and proxy tests start their own), nginx's Nchan module
# (loadgen's --target nchan test), Pushpin and the Node peers' npm packages from
# scripts/peers/node/package-lock.json (loadgen's peer tests), Python's `websockets` (a real
# WebSocket client), iproute2
# (`ip`, `ss`: the emulated link of `loadgen --network`), and the page's npm packages from
# web/package-lock.json.
#
# Skips are counted, not hidden: a test that cannot run here says so (Rust: feedlab-testkit's
# `skip!`/`require!`, which append `FEEDLAB-SKIP <test>: <reason>` to $FEEDLAB_SKIP_LOG; the
# browser tests: node's `skip`, read back from a TAP report). The end prints "== skips" with the
# count and each reason. Where the machine can run everything (root, /dev/net/tun, and the
# packages above installed: CI), FEEDLAB_REQUIRE_ALL=1 and any skip fails the run; elsewhere
# (no root) the skips are listed and the run passes. FEEDLAB_REQUIRE_ALL=0 in the environment
# turns the rule off, =1 turns it on anywhere.
#
# Slow measurements are not here: benchmarks (`cargo bench -p server --bench slow_consumers`,
# scripts/) run on their own.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || missing+=(nginx-light)
# The intermediaries matrix (loadgen --proxy NAME, loadgen/tests/it/intermediaries.rs).
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/sbin/apache2 ] || missing+=(apache2)
[ -x /usr/bin/caddy ] || missing+=(caddy)
[ -x /usr/sbin/varnishd ] || missing+=(varnish)
[ -x /usr/sbin/squid ] || missing+=(squid)
# Nchan, the production peer in loadgen's --target nchan test and the fan-out benchmark.
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
# Pushpin, a peer in loadgen's --target pushpin test and the benchmarks (scripts/peers/).
command -v pushpin >/dev/null || missing+=(pushpin)
{ command -v ip && command -v ss; } >/dev/null || missing+=(iproute2)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
command -v node >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q websockets
# The Node peers (Socket.IO, uWebSockets.js, ws: loadgen/tests/it/peers.rs), locked in
# scripts/peers/node/package-lock.json.
( cd scripts/peers/node && { npm ls --silent >/dev/null 2>&1 || npm ci --no-audit --no-fund --silent; } )
python3 -c 'import marionette_driver' 2>/dev/null || python3 -m pip install -q marionette-driver
# The book (docs/): mdBook is not a Debian 12 package, so it comes from crates.io, pinned. Without
# its default `serve` and `watch` features (a web server and a file watcher the build does not
# need): a lighter install. `cargo install mdbook --version 0.4.52 --locked` adds `mdbook serve`.
MDBOOK_VERSION=0.4.52
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! mdbook --version 2>/dev/null | grep -qx "mdbook v$MDBOOK_VERSION"; then
  echo "test.sh: installing mdbook $MDBOOK_VERSION"
  cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --features search --quiet
fi

# /dev/net/tun for the emulated-link tests: root can create the device node when the kernel has
# the driver but the node is missing (a container without it passed through cannot).
if [ "$(id -u)" = 0 ] && [ ! -e /dev/net/tun ]; then
  mkdir -p /dev/net && mknod /dev/net/tun c 10 200 2>/dev/null && chmod 0666 /dev/net/tun || true
fi
if [ -z "${FEEDLAB_REQUIRE_ALL:-}" ]; then
  FEEDLAB_REQUIRE_ALL=0
  if [ "$(id -u)" = 0 ] && [ -e /dev/net/tun ] && command -v redis-server >/dev/null &&
    command -v nginx >/dev/null && [ -x /usr/bin/chromium ]; then
    FEEDLAB_REQUIRE_ALL=1
  fi
fi
export FEEDLAB_REQUIRE_ALL
FEEDLAB_SKIP_LOG="$(mktemp -t feedlab-skips.XXXXXX)"
export FEEDLAB_SKIP_LOG
web_tap="$(mktemp -t feedlab-web-tap.XXXXXX)"
started=$SECONDS

# The summary, also when a suite failed: what did not run, and why.
summary() {
  status=$?
  # node's TAP report: `ok N - name # SKIP reason` for each skipped test or suite.
  if [ -s "$web_tap" ]; then
    sed -nE 's/^ *(not )?ok [0-9]+ - (.*) # SKIP ?(.*)$/FEEDLAB-SKIP web\/\2: \3/p' "$web_tap" >>"$FEEDLAB_SKIP_LOG"
  fi
  skips=$(grep -c '^FEEDLAB-SKIP ' "$FEEDLAB_SKIP_LOG" || true)
  echo "== skips: $skips (FEEDLAB_REQUIRE_ALL=$FEEDLAB_REQUIRE_ALL)"
  sed 's/^FEEDLAB-SKIP /  /' "$FEEDLAB_SKIP_LOG"
  rm -f "$FEEDLAB_SKIP_LOG" "$web_tap"
  echo "== took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
  if [ "$status" = 0 ] && [ "$skips" != 0 ] && [ "$FEEDLAB_REQUIRE_ALL" = 1 ]; then
    echo "test.sh: FAILED: $skips test(s) skipped on a machine that should run them all" >&2
    status=1
  fi
  exit "$status"
}
trap summary EXIT

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The build loadgen/Cargo.toml promises: loadgen without the embedded server.
cargo check -p loadgen --no-default-features --quiet

echo "== import cycles (loadgen, feedlab-link, feedlab-report, server)"
for src in loadgen/src link/src report/src server/src; do python3 scripts/import_cycles.py "$src"; done
# The run's flags (`cli::Args`) are read by loadgen's plan.rs alone; everything below takes the plan.
python3 scripts/args_readers.py loadgen/src

echo "== the book (docs/) and the links of README.md, CONTRIBUTING.md and the book"
python3 scripts/check_links.py
mdbook build docs

echo "== Rust tests (server, loadgen)"
# Every suite runs, whichever fails first (the browser tests too): a red run lists all its
# failures, and fails at the end.
rust_status=0
cargo test --workspace --no-fail-fast || rust_status=$?

echo "== browser tests (web/)"
cargo build --quiet -p server
(
  cd web
  [ -d node_modules/playwright-core ] && npm ls --silent >/dev/null 2>&1 || npm ci --no-audit --no-fund --silent
  FEEDLAB_SERVER_BIN="$PWD/../target/debug/server" node --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$web_tap" tests/
)
exit "$rust_status"
