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
print(f"Command: `{command}` against `{url}`; {len(results)} cases "
      "(groups 12 and 13, permessage-deflate, excluded: the server offers no compression).\n")
print("| protocol behaviour | cases |\n|---|---|")
for k, v in sorted(behaviour.items()):
    print(f"| {k} | {v} |")
print("\n| close behaviour | cases |\n|---|---|")
for k, v in sorted(close.items()):
    print(f"| {k} | {v} |")
print("\nNON-STRICT is Autobahn's word for behaviour RFC 6455 allows but that is not the "
      "strictest reading: in 3.x, 4.x and 5.15 the connection is failed with 1002 as required, "
      "but the echo of a valid message sent just before the bad frame may not go out first; in "
      "6.4.x invalid UTF-8 is caught at the end of a fragmented message, not at the first bad "
      "byte. FAILED BY CLIENT (close column) means Autobahn dropped TCP before the server did: "
      "the server closes ~0.5 s after the close handshake (`--close-timeout`).")
if failed:
    print(f"\n**Failed cases:** {', '.join(failed)}")
sys.exit(1 if failed else 0)
