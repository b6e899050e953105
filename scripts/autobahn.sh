#!/usr/bin/env bash
# RFC 6455 conformance of /ws/echo with the Autobahn test suite (fuzzingclient mode).
#
#   scripts/autobahn.sh [CASES]        CASES: comma-separated case ids or patterns ("*" matches
#                                      anything, and a pattern matches as a prefix: "12.*.1" is
#                                      also 12.1.10-18); "*" (the default) is all but the
#                                      permessage-deflate groups 12 and 13, which take long and
#                                      are run on their own: "12.*,13.*"
#
# FEEDLAB_AUTOBAHN_LIMIT: the server's --ws-max-message-bytes (default 16777216: the 9.x cases
# send messages of up to 16 MiB); `default` runs the server on its own default (64 KiB), where
# the 12.x/13.x cases with 131,072-byte messages fail by the limit's design (1009), and the
# summary says so;
# FEEDLAB_AUTOBAHN_ARGS: extra server flags (e.g. `--ws-deflate context`, `--fast-path=false`);
# FEEDLAB_AUTOBAHN_OUT: where the results go (default results/autobahn);
# FEEDLAB_AUTOBAHN_SERVER: a server binary to test instead of building the release one.
#
# Needs Python 2.7 (pyenv 2.7.18 here); installs `autobahntestsuite` for it when missing.
# Writes results/autobahn/summary.md and the suite's own index.json.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-*}"
py2="${PYTHON2:-}"
if [ -z "$py2" ]; then
  for candidate in "$(pyenv root 2>/dev/null)"/versions/2.7*/bin/python python2.7 python2; do
    if "$candidate" -c 'import sys; assert sys.version_info[0] == 2' 2>/dev/null; then py2="$candidate"; break; fi
  done
fi
[ -n "$py2" ] || { echo "autobahn.sh: needs Python 2.7 (set PYTHON2)" >&2; exit 2; }
wstest="$("$py2" -c 'import site,os;print(os.path.join(site.USER_BASE,"bin","wstest"))')"
[ -x "$wstest" ] || "$py2" -m pip install --user -q autobahntestsuite

server="${FEEDLAB_AUTOBAHN_SERVER:-}"
if [ -z "$server" ]; then
  cargo build --release -q -p server
  server=./target/release/server
fi
work="$(mktemp -d)"
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
limit="${FEEDLAB_AUTOBAHN_LIMIT:-16777216}"
limit_args=(--ws-max-message-bytes "$limit")
if [ "$limit" = default ]; then limit_args=(); limit=65536; fi
"$server" --bind 127.0.0.1:0 --rate 0 --log warn \
  "${limit_args[@]}" ${FEEDLAB_AUTOBAHN_ARGS:-} >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 50); do grep -q listening "$work/server.out" && break; sleep 0.1; done
url="$(head -1 "$work/server.out" | awk '{print $4}' | sed 's#^http#ws#; s#/$##')/ws/echo"

case_list="$(printf '%s' "$cases" | sed 's/[^,][^,]*/"&"/g')"
exclude='"12.*", "13.*"'
[ "$cases" = "*" ] || exclude=''
cat >"$work/spec.json" <<JSON
{"outdir": "$work/reports", "servers": [{"agent": "feedlab", "url": "$url"}],
 "cases": [$case_list], "exclude-cases": [$exclude], "exclude-agent-cases": {}}
JSON
(cd "$work" && "$wstest" -m fuzzingclient -s spec.json >"$work/wstest.log" 2>&1)

out="${FEEDLAB_AUTOBAHN_OUT:-results/autobahn}"
mkdir -p "$out"
cp "$work/reports/index.json" "$out/index.json"
command="scripts/autobahn.sh $cases"
[ -z "${FEEDLAB_AUTOBAHN_LIMIT:-}" ] || command="FEEDLAB_AUTOBAHN_LIMIT=$FEEDLAB_AUTOBAHN_LIMIT $command"
[ -z "${FEEDLAB_AUTOBAHN_ARGS:-}" ] || command="FEEDLAB_AUTOBAHN_ARGS='$FEEDLAB_AUTOBAHN_ARGS' $command"
[ -z "${FEEDLAB_AUTOBAHN_SERVER:-}" ] || command="FEEDLAB_AUTOBAHN_SERVER=$FEEDLAB_AUTOBAHN_SERVER $command"
status=0
python3 scripts/autobahn_summary.py "$out/index.json" "$url" "$command" "$limit" > "$out/summary.md" || status=$?
cat "$out/summary.md"
exit "$status"
