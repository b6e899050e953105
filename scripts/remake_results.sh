#!/usr/bin/env bash
# Remakes every committed result set (results/<set>/) with the current code, in sections named
# after the sets, each the command that made the set (read from its README or its reports'
# `command` field), then regenerates results/README.md (each set's record) and
# results/scenarios/decision.md. Run from anywhere; it works at the repository root.
#
#   scripts/remake_results.sh --list          the sections, each with its expected time, and the total
#   scripts/remake_results.sh                 every section, in order
#   scripts/remake_results.sh SECTION...      only those (e.g. `reference scenarios`)
#
# Expected times are the last measured run's own `duration_s` (or its README's), scaled where
# the command's repeats changed since (the scenarios: 3 → 4 runs, 17 min 11 s × 4/3; game and
# progress, not measured yet in it, as planned). A quiet 2-core machine is assumed; the whole
# takes about 5 h 30 min (`--list` adds them up). Sections that need what this
# machine may not have (root for the link emulator, nginx, Redis, Chromium, Python 2.7 for
# Autobahn) say so and are skipped when it is missing, and the summary lists them.
#
# No -e: a run that finds loss exits 1 and still writes its report; the next sections go on.
set -uo pipefail
cd "$(dirname "$0")/.."

# name|expected seconds|needs|what
SECTIONS=(
  "reference|300|-|the reference matrix (loopback, every transport, defaults; 225 s at 3 runs, × 4/3)"
  "scenarios|2455|root|loadgen --scenario all (six feed scenarios, 4 runs each, 17 min 11 s × 4/3; game 10 min as planned and a sixth for its links, progress 6 min 20 s as planned), then decision.md"
  "crossover-requests|273|-|polling's requests against the rate sweep (204 s at 3 runs, × 4/3)"
  "networks|900|root|the emulated-network matrix, run once as it was (492 s), and the link's own overhead (302 s at 3 runs, × 4/3)"
  "tls-http2|140|-|plain against TLS, HTTP/1.1, 1.0 and 2, one run as it was (137 s)"
  "talkback|1320|root|clients talking back: chat room, busy session, the --send-rate sweep, LTE (run.sh)"
  "scale-10k|30|-|10,000 SSE and WebSocket clients, one run each as it was"
  "storm|540|redis|the reconnect storm: 10,000 clients, a kill and a rolling restart, before and after its defences (scripts/storm/bench.py)"
  "beyond-one-process|460|nginx,redis|chaos (kill-restart, kill-one on Redis) and the nginx proxy timeout, one run each as they were"
  "wrk-comparison|120|wrk|loadgen against wrk on short polling (run.sh), one run a round as it was"
  "compression|860|-|every payload kind with compression off, shared and per connection (scripts/compression.py)"
  "fanout|2300|nchan,pushpin,node|the server against the floor, nchan and the peers (scripts/fanout/bench.py)"
  "capacity|650|pushpin,node|the bounded capacity run as it was (scripts/capacity/capacity.py --quick; the full plan: its --dry-run)"
  "fanout-tls|900|-|the server's fast path over TLS against the floor over TLS (scripts/fanout/tls.py)"
  "autobahn|900|python2|RFC 6455 conformance of /ws/echo (scripts/autobahn.sh, groups 12 and 13 on their own)"
  "tabs|120|chromium|eight tabs over HTTP/1.1 and HTTP/2 in Chromium (web/tests/tabs.test.mjs)"
  "background-tabs|1300|chromium|hidden, frozen and back tabs (18 min), then the headed check under Xvfb (4 min)"
  "model|2722|-|the cost model (loadgen costs, 1,346 s) and its check against direct whole sessions (loadgen costs --validate, 1,376 s)"
  "intermediaries|900|proxies|the intermediaries matrix with real nginx, HAProxy, Apache, Caddy, Varnish and Squid, plain and over TLS with HTTP/2 (scripts/intermediaries/matrix.py --window 330; 709 s before the HTTP/2 column)"
  "peers|600|nchan,pushpin,node|the peers' quick matrix (scripts/fanout/bench.py --quick --sections matrix --repeats 2; its time was not recorded, 10 min is an estimate)"
  "phones|1020|root|the NAT timeout and heartbeat sweep on per-phone LTE links (scripts/phones/nat_heartbeat_sweep.py, 875 s of cells plus set-up)"
  "usecases|720|root|the game and the job log on loopback, LTE and LTE with 2% loss (loadgen usecase game progress)"
  "beyond-100k|300|redis|100,000 WebSocket connections on 7 instances over one Redis, 7 loadgen processes merged (scripts/beyond/hundred_k.py)"
)

fmt() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

list() {
  local total=0
  for s in "${SECTIONS[@]}"; do
    IFS='|' read -r name secs needs what <<<"$s"
    printf '%-20s %12s  needs: %-12s %s\n' "$name" "$(fmt "$secs")" "$needs" "$what"
    total=$((total + secs))
  done
  printf '%-20s %12s\n' total "$(fmt "$total")"
}

loadgen=target/release/loadgen
have() { command -v "$1" >/dev/null 2>&1; }
root() { [ "$(id -u)" = 0 ] || have sudo; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

section_reference() { "$loadgen" --out results/reference --quiet; }

section_scenarios() {
  as_root "$loadgen" --scenario all --out results/scenarios
}

section_crossover-requests() {
  "$loadgen" --transports short-poll,long-poll --rates 0.5,1,2,5,10 --clients 50 --duration 4s \
    --http 1.1 --out results/crossover-requests
}

section_networks() {
  as_root env LOADGEN_REPEAT=1 scripts/networks.sh
  as_root "$loadgen" --network none --network rtt=0ms --http 1.1 --out results/networks/overhead --quiet
}

section_tls-http2() {
  "$loadgen" --tls both --http 1.1,1.0,2 --clients 50 --duration 5s --seed 1 --repeat 1 --out results/tls-http2
}

section_talkback() {
  results/talkback/run.sh
  as_root "$loadgen" --send-rate 1 --rate 0 --clients 20 --duration 10s --http 1.1,2 --network lte \
    --repeat 3 --out results/talkback/lte --quiet
}

section_scale-10k() {
  "$loadgen" --transports sse --clients 10000 --duration 10s --rate 5 --http 1.1 --repeat 1 --out results/scale-10k/sse --quiet
  "$loadgen" --transports ws --clients 10000 --duration 10s --rate 5 --http 1.1 --repeat 1 --out results/scale-10k/ws --quiet
}

section_storm() { python3 scripts/storm/bench.py; }

section_beyond-one-process() {
  local out=results/beyond-one-process common=(--clients 100 --duration 20s --http 1.1 --seed 1 --repeat 1)
  "$loadgen" --chaos kill-restart --chaos-at 40% --chaos-outage 2s "${common[@]}" --out "$out/kill-restart"
  local port=$((30000 + RANDOM % 20000))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  local redis=$!
  sleep 1
  "$loadgen" --spawn 3 --redis "redis://127.0.0.1:$port" --chaos kill-one --chaos-at 40% "${common[@]}" \
    --out "$out/kill-one"
  kill "$redis"
  local proxy=(--proxy nginx --proxy-read-timeout 1s --rate 0.5)
  "$loadgen" "${proxy[@]}" "${common[@]}" --out "$out/proxy-timeout"
  "$loadgen" "${proxy[@]}" "${common[@]}" --server-arg=--heartbeat=300ms --out "$out/proxy-heartbeat"
  "$loadgen" "${proxy[@]}" "${common[@]}" --server-arg=--heartbeat=300ms --long-poll-timeout 800ms \
    --out "$out/proxy-heartbeat-long-poll-hold"
}

section_wrk-comparison() { LOADGEN_REPEAT=1 results/wrk-comparison/run.sh; }

section_compression() { python3 scripts/compression.py --duration 5 --kinds tick,chat,metrics; }

section_fanout() { python3 scripts/fanout/bench.py; }

section_capacity() { python3 scripts/capacity/capacity.py --quick --budget-min 15 --out results/capacity; }
section_fanout-tls() { python3 scripts/fanout/tls.py; }

section_autobahn() {
  scripts/autobahn.sh '*'
  FEEDLAB_AUTOBAHN_ARGS='--ws-deflate shared' FEEDLAB_AUTOBAHN_OUT=results/autobahn/deflate-shared scripts/autobahn.sh '12.*,13.*'
  FEEDLAB_AUTOBAHN_ARGS='--ws-deflate context' FEEDLAB_AUTOBAHN_OUT=results/autobahn/deflate-context scripts/autobahn.sh '12.*,13.*'
}

section_tabs() { (cd web && FEEDLAB_TABS_RESULTS=../results/tabs node --test tests/tabs.test.mjs); }

section_background-tabs() {
  node scripts/background_tabs/run.mjs --visible-s 120 --hidden-s 600 --frozen-s 240 --back-s 120
  xvfb-run -a node scripts/background_tabs/run.mjs --headed --visible-s 30 --hidden-s 150 \
    --hidden-split-s 150 --frozen-s 40 --back-s 20 --out results/background-tabs/headed-check
}

section_model() {
  "$loadgen" costs
  "$loadgen" costs --validate
  echo "the model changed: paste \`$loadgen decide --markdown\` between the README's decide markers"
}

section_intermediaries() {
  cargo build -q -p loadgen --bins --example intermediary -p server || return 1
  python3 scripts/intermediaries/matrix.py --window 330
}

section_peers() { python3 scripts/fanout/bench.py --quick --sections matrix --repeats 2 --out results/peers; }

section_phones() { as_root python3 scripts/phones/nat_heartbeat_sweep.py; }

section_usecases() {
  as_root "$loadgen" usecase game progress --network 'none;lte;lte,loss=2%' --repeat 4 --clients 10 \
    --duration 6s --jobs 10 --quiet 2s --out results/usecases
}

section_beyond-100k() { python3 scripts/beyond/hundred_k.py; }

# Whether a section's needs are met here.
ready() {
  local needs=$1
  [ "$needs" = - ] && return 0
  local n
  for n in ${needs//,/ }; do
    case $n in
      root) root || return 1 ;;
      nginx | redis | wrk) have "${n/redis/redis-server}" || return 1 ;;
      python2) have python2.7 || have pyenv || [ -n "${PYTHON2:-}" ] || return 1 ;;
      chromium) have chromium || have node || return 1 ;;
      nchan) have nginx || return 1 ;;
      proxies) for b in nginx haproxy apache2 caddy varnishd squid; do have "$b" || [ -x "/usr/sbin/$b" ] || return 1; done ;;
      pushpin | node) have "$n" || return 1 ;;
    esac
  done
}

if [ "${1:-}" = --list ]; then
  list
  exit 0
fi

want=("$@")
cargo build --release -p loadgen -p server -p floor || exit 2
start=$(date +%s)
skipped=()
failed=()
for s in "${SECTIONS[@]}"; do
  IFS='|' read -r name secs needs what <<<"$s"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  if ! ready "$needs"; then
    echo "== $name: skipped (needs $needs)"
    skipped+=("$name")
    continue
  fi
  echo "== $name: $what (expected $(fmt "$secs"))"
  t0=$(date +%s)
  "section_$name" || failed+=("$name")
  echo "== $name: took $(fmt $(($(date +%s) - t0)))"
done
# The scenario verdicts from the reports as they are now, and every set's record.
"$loadgen" render results/scenarios
FEEDLAB_WRITE_RESULTS_INDEX=1 cargo test -q -p feedlab-report --test it results_index
total=$(($(date +%s) - start))
echo "remade in $(fmt "$total")${skipped:+; skipped: ${skipped[*]}}${failed:+; exited non-zero: ${failed[*]}}"
