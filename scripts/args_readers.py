#!/usr/bin/env python3
"""Which of loadgen's files name the run's command line (`cli::Args`).

Why: the flags are read in one place, `Plan::build` (plan.rs), which turns them into plain
values; the run, the clients, the scenarios and the use cases take the plan (issue #25). When
code far below the command line reads `Args` again, a flag's meaning is spread over every file
that reads it, a scenario has to change the command line to change a setting, and nothing but
the parser can build a run. This script keeps it so in CI: it fails, listing file and line,
when a file other than the allowed ones names the type `Args`.

Allowed: cli.rs (defines it), plan.rs (reads it), lib.rs and main.rs (hand it over). Not
counted: comments, strings, `#[cfg(test)]` items (tests may build flags to check how they
parse) and `clap::Args` (the derive of a subcommand's own flags, such as `CostsArgs`). Only
names are seen: code that reaches the flags through `Cli` without naming `Args` is not caught.

Usage: scripts/args_readers.py [LOADGEN_SRC_DIR]   (default: loadgen/src)

Exit status: 0 when only the allowed files name it, 1 otherwise, 2 on a usage error. Python 3
standard library only.
"""

import os
import re
import sys

ALLOWED = {"cli.rs", "plan.rs", "lib.rs", "main.rs"}
ARGS_RE = re.compile(r"(?<![A-Za-z0-9_])Args(?![A-Za-z0-9_])")
CFG_TEST_RE = re.compile(r"#\[cfg\(test\)\]")


def code_only(text):
    """`text` with comments, string and char literals blanked (newlines kept, so line numbers
    stay), as Rust lexes them: nested block comments, raw strings, lifetimes left alone."""
    out, i, n = [], 0, len(text)

    def blank(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif m := re.compile(r'b?r(#*)"').match(text, i) if c in "br" else None:
            if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
                out.append(c)
                i += 1
                continue
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(blank(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F600}', '"'), or a lifetime ('a), left alone.
            m = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'").match(text, i)
            if m:
                out.append(blank(m.group(0)))
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_tests(code):
    """`code` with every `#[cfg(test)]` item (up to the end of its braces or `;`) blanked."""
    while True:
        m = CFG_TEST_RE.search(code)
        if not m:
            return code
        j, depth = m.end(), 0
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif code[j] == ";" and depth == 0:
                j += 1
                break
            j += 1
        code = code[: m.start()] + "".join(c if c == "\n" else " " for c in code[m.start() : j]) + code[j:]


def readers(src):
    """(path, line number, line) of every use of `Args` outside the allowed files."""
    found = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            if os.path.relpath(path, src) in ALLOWED:
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            code = without_tests(code_only(text))
            lines = text.splitlines()
            for m in ARGS_RE.finditer(code):
                if code[: m.start()].endswith("clap::"):
                    continue
                line = code.count("\n", 0, m.start())
                found.append((path, line + 1, lines[line].strip()))
    return found


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and not os.path.isdir(argv[1])):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = argv[1] if len(argv) == 2 else "loadgen/src"
    if not os.path.isfile(os.path.join(src, "plan.rs")):
        print(f"{src}: no plan.rs here", file=sys.stderr)
        return 2
    found = readers(src)
    if not found:
        print(f"{src}: the command line's Args is read only by {', '.join(sorted(ALLOWED))}")
        return 0
    print(f"{src}: Args is named outside {', '.join(sorted(ALLOWED))}; take the Plan instead:")
    for path, line, text in found:
        print(f"  {path}:{line}: {text}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
