"""Summarises an Autobahn fuzzingclient index.json as Markdown; exits 1 if any case failed,
other than those refused with 1009 because their messages are larger than the server's
--ws-max-message-bytes (the optional fourth argument), which are listed as failing by design."""
import collections
import json
import sys

index_path, url, command = sys.argv[1:4]
limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
results = json.load(open(index_path))["feedlab"]
passing = {"OK", "NON-STRICT", "INFORMATIONAL"}
behaviour = collections.Counter(r["behavior"] for r in results.values())
close = collections.Counter(r["behaviorClose"] for r in results.values())

# Message sizes of the permessage-deflate cases 12.x.y and 13.x.y, by y (Autobahn's
# case12_X_X.py / case13_X_X.py: 1,000 messages each, .11-.18 sent in 256- to 32,768-byte
# fragments).
DEFLATE_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072,
                 8192, 16384, 32768, 65536, 131072, 131072, 131072, 131072]
# Text payloads are cut by characters, not bytes: 12.4's file (data1.html) has 263,620
# characters in 263,647 bytes, so a "65,536-byte" message of it can take up to 27 bytes more
# (65,563 at most, and does, in 255 of 12.4.9's 1,000 messages). 12.1 and 13.x (data1.json)
# are ASCII.
EXTRA_UTF8_BYTES = {(12, 4): 27}


def message_size(case):
    """The largest message of a 12.x/13.x case, in bytes."""
    group, sub, y = (int(p) for p in case.split("."))
    if group not in (12, 13):
        return None
    return DEFLATE_SIZES[y - 1] + EXTRA_UTF8_BYTES.get((group, sub), 0)


def by_design(case):
    size = message_size(case)
    return (limit is not None and size is not None and size > limit
            and results[case].get("remoteCloseCode") == 1009)


failed_all = sorted((k for k, r in results.items() if r["behavior"] not in passing),
                    key=lambda k: [int(p) for p in k.split(".")])
failed = [k for k in failed_all if not by_design(k)]
designed = [k for k in failed_all if by_design(k)]
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
if designed:
    print(f"\n**Failed by the limit's design** ({len(designed)} cases, each closed by the server "
          f"with 1009: their messages of up to "
          f"{' or '.join(f'{n:,}' for n in sorted({message_size(k) for k in designed}))} bytes "
          f"are larger than "
          f"`--ws-max-message-bytes` {limit:,}): {', '.join(designed)}")
if failed:
    print(f"\n**Failed cases:** {', '.join(failed)}")
sys.exit(1 if failed else 0)
