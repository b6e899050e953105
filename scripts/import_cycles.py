#!/usr/bin/env python3
"""Import cycles between a Rust crate's top-level modules.

Why: a crate whose modules import each other in a circle cannot be read, tested or split one
layer at a time (issue #25). This script keeps the layering honest in CI: it builds the graph of
top-level modules of one crate from its `crate::...` paths (and `super::...` paths that climb to
the crate root), and fails, listing them, when any strongly connected component has more than one
module.

Usage: scripts/import_cycles.py CRATE_SRC_DIR [--graph]
  CRATE_SRC_DIR  the crate's `src/` (the folder holding lib.rs or main.rs)
  --graph        also print every edge (module -> modules it imports)

Exit status: 0 without a cycle, 1 with one, 2 on a usage error. Python 3 standard library only.
"""

import os
import re
import sys

# `crate::a::b`, `crate::{a, b::c}`; `super::...` is resolved per file below.
PATH_RE = re.compile(r"\b(crate|super)((?:\s*::\s*super)*)\s*::\s*(\{|[A-Za-z_][A-Za-z0-9_]*)")
LINE_COMMENT_RE = re.compile(r"//.*")
BLOCK_COMMENT_RE = re.compile(r"/\*.*?\*/", re.S)
STRING_RE = re.compile(r'"(?:\\.|[^"\\])*"')


def strip(source):
    """The source without comments and string literals (doc comments name modules freely)."""
    source = BLOCK_COMMENT_RE.sub(" ", source)
    source = STRING_RE.sub('""', source)
    return "\n".join(LINE_COMMENT_RE.sub("", line) for line in source.splitlines())


def module_path(src, file):
    """The module path of `file` below the crate root, e.g. ['run', 'phase'] for run/phase.rs."""
    rel = os.path.relpath(file, src)
    parts = rel[:-3].split(os.sep)  # drop ".rs"
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts in (["lib"], ["main"]):
        return []
    return parts


def brace_group(text, start):
    """The text between the brace at `start` and its matching close brace."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return text[start + 1 :]


def split_top(group):
    """The comma-separated items of a `{...}` group, nested groups kept whole."""
    items, depth, cur = [], 0, []
    for ch in group:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return [i.strip() for i in items if i.strip()]


def first_segments(text, after):
    """The first path segment(s) named after `crate::` (several for `crate::{a, b}`)."""
    rest = text[after:].lstrip()
    if rest.startswith("{"):
        names = []
        for item in split_top(brace_group(rest, 0)):
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", item)
            if m:
                names.append(m.group(0))
        return names
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", rest)
    return [m.group(0)] if m else []


def imports(src, file, modules):
    """The top-level modules `file` refers to through `crate::` or a root-reaching `super::`."""
    here = module_path(src, file)
    with open(file, encoding="utf-8") as f:
        text = strip(f.read())
    found = set()
    for m in PATH_RE.finditer(text):
        kind, supers = m.group(1), m.group(2)
        after = m.start(3)
        if kind == "crate":
            names = first_segments(text, after)
        else:
            # `super` from a file's module climbs one level per `super`.
            levels = 1 + supers.count("super")
            base = here[: len(here) - levels] if len(here) >= levels else None
            if base is None:
                continue
            if base:
                # Still inside a top-level module: the import stays within it.
                names = [base[0]]
            else:
                names = first_segments(text, after)
        for name in names:
            if name in modules:
                found.add(name)
    return found


def top_level_modules(src):
    modules = set()
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            modules.add(entry[:-3])
        elif os.path.isdir(path) and os.path.exists(os.path.join(path, "mod.rs")):
            modules.add(entry)
    return modules


def graph(src):
    modules = top_level_modules(src)
    edges = {m: set() for m in modules}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            file = os.path.join(root, name)
            here = module_path(src, file)
            if not here:
                continue  # lib.rs / main.rs: the crate root declares every module
            owner = here[0]
            if owner not in edges:
                continue
            for target in imports(src, file, modules):
                if target != owner:
                    edges[owner].add(target)
    return edges


def strongly_connected(edges):
    """Tarjan's algorithm, iterative; components in reverse topological order."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(sorted(comp))
    return result


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1 or not os.path.isdir(args[0]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = args[0]
    edges = graph(src)
    if "--graph" in argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m])) or '(nothing)'}")
    cycles = [c for c in strongly_connected(edges) if len(c) > 1]
    if not cycles:
        print(f"{src}: {len(edges)} top-level modules, no import cycle")
        return 0
    total = sum(len(c) for c in cycles)
    print(f"{src}: {len(cycles)} import cycle(s) among {total} of {len(edges)} top-level modules")
    for comp in cycles:
        members = set(comp)
        print(f"  cycle of {len(comp)}: {', '.join(comp)}")
        for m in comp:
            inside = sorted(edges[m] & members)
            print(f"    {m} -> {', '.join(inside)}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
