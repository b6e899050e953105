#!/usr/bin/env python3
"""Checks that every relative link in the project's Markdown resolves.

Files: README.md, CONTRIBUTING.md and docs/src/**/*.md (the book's sources). For each inline
link or image `[text](target)` outside code: the target file or directory exists (relative to
the file that links it), and a `#anchor` names a heading of the target (or of the file itself),
as GitHub and mdBook make heading ids: lower case, spaces to `-`, punctuation dropped, a
repeated heading's id suffixed `-1`, `-2`. External links (`http:`, `https:`, `mailto:`) are
not fetched. Exits 1 and lists every broken link.

    python3 scripts/check_links.py            # from anywhere in the repository
    python3 scripts/check_links.py FILE...    # only these files
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def files(args):
    if args:
        return [Path(a).resolve() for a in args]
    found = [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    found += sorted((ROOT / "docs" / "src").rglob("*.md"))
    return [f for f in found if f.exists()]


def prose_lines(text, blank_code=True):
    """(line number, line) outside fenced code, with inline code blanked unless asked not to."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line) if blank_code else line


def slug(heading):
    text = re.sub(r"<[^>]+>", "", heading)  # HTML tags
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = text.replace("`", "").lower()
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


_anchors = {}


def anchors(path):
    if path not in _anchors:
        seen = {}
        ids = set()
        for _, line in prose_lines(path.read_text(encoding="utf-8"), blank_code=False):
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            ids.add(s if n == 0 else f"{s}-{n}")
        _anchors[path] = ids
    return _anchors[path]


def check(path):
    problems = []
    for n, line in prose_lines(path.read_text(encoding="utf-8")):
        for m in LINK.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{n}"
            if not dest.exists():
                problems.append(f"{where}: {target}: no such file")
                continue
            if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: {target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    return problems


def main():
    checked = files(sys.argv[1:])
    problems = [p for f in checked for p in check(f)]
    for p in problems:
        print(p)
    print(f"check_links: {len(checked)} files, {len(problems)} broken link(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
