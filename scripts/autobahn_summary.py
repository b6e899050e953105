"""Summarises an Autobahn fuzzingclient index.json as Markdown; exits 1 if any case failed."""
import collections
import json
import sys

index_path, url, command = sys.argv[1:4]
results = json.load(open(index_path))["feedlab"]
passing = {"OK", "NON-STRICT", "INFORMATIONAL"}
behaviour = collections.Counter(r["behavior"] for r in results.values())
close = collections.Counter(r["behaviorClose"] for r in results.values())
failed = sorted((k for k, r in results.items() if r["behavior"] not in passing),
                key=lambda k: [int(p) for p in k.split(".")])
print("# RFC 6455 conformance of `/ws/echo` (Autobahn testsuite)\n")
deflate = any(k.startswith(("12.", "13.")) for k in results)
print(f"Command: `{command}` against `{url}`; {len(results)} cases"
      + (" (permessage-deflate, groups 12 and 13).\n" if deflate else
         " (groups 12 and 13, permessage-deflate, run on their own: `scripts/autobahn.sh "
         "'12.*,13.*'`).\n"))
print("| protocol behaviour | cases |\n|---|---|")
for k, v in sorted(behaviour.items()):
    print(f"| {k} | {v} |")
print("\n| close behaviour | cases |\n|---|---|")
for k, v in sorted(close.items()):
    print(f"| {k} | {v} |")
def case_key(k):
    return [int(p) for p in k.split(".")]


not_ok = sorted((k for k, r in results.items()
                 if r["behavior"] != "OK" or r["behaviorClose"] != "OK"), key=case_key)
if not_ok:
    print("\n| case | protocol | close |\n|---|---|---|")
    for k in not_ok:
        print(f"| {k} | {results[k]['behavior']} | {results[k]['behaviorClose']} |")
print("\nNON-STRICT is Autobahn's word for behaviour RFC 6455 allows but that is not the "
      "strictest reading (in 6.4.x, invalid UTF-8 in a fragmented text message is caught when "
      "the message is complete, not at the first bad byte); INFORMATIONAL cases have no verdict. "
      "FAILED BY CLIENT (close column) means Autobahn dropped TCP before the server did. "
      "With the default `--fast-path`, `/ws/echo` is served by the fast path; "
      "`scripts/autobahn.sh` passes extra server flags through `FEEDLAB_AUTOBAHN_ARGS` "
      "(e.g. `--fast-path=false` for the actix-ws path).")
if failed:
    print(f"\n**Failed cases:** {', '.join(failed)}")
sys.exit(1 if failed else 0)
