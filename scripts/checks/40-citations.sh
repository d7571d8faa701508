#!/usr/bin/env bash
# Section citations stay inside the repository (contract: scripts/checks/README.md).
#
# Comments, docs, tests and scripts cite documents by section: `xapi-notes.md §6.6`,
# `architecture.md §8`. Every such citation must resolve to a heading of a file in this
# repository. In README.md, CHANGELOG.md, docs, src, tests, scripts, benches, alerts,
# dashboards and helm (tracked files and new untracked ones), this fails on:
#
#   1. any path through `shared/` (a sibling directory a clone does not have);
#   2. any mention of a design or reference file kept outside the repository (DESIGN.md,
#      reference/*.md: xapi.md, ecosystem.md, peers.md, aesthetics.md);
#   3. a citation `<name>.md §N[.M]` (and the `§` numbers listed after it: `, §5.1`, `/§9`,
#      `–§3.3`, `and §6`) whose document is not docs/<name>.md, the given path or a top-level
#      <name>.md, or whose number is not a heading there: a `#` line starting `N.` or `N.M`
#      (`## 6. Pool recovery calls`, `### 6.5b Plain getters`);
#   4. a bare `§N` that names no document, unless its file declares one with the words
#      `§ numbers cite <name>.md` (then it is checked against that document as in 3).
#
# Usage: scripts/checks/40-citations.sh   (from anywhere; reads the repository it lives in)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly SELF=scripts/checks/40-citations.sh
readonly SCOPE=(README.md CHANGELOG.md docs src tests scripts benches alerts dashboards helm)

mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${SCOPE[@]}" |
    grep -v -x -F "$SELF" | LC_ALL=C sort -u)

python3 - "${files[@]}" <<'PY'
import os
import re
import sys

OUTSIDE = "shared" + "/"
FOREIGN = re.compile(r"(?<![\w-])(?:reference/)?(?:DESIGN|xapi|ecosystem|peers|aesthetics)\.md")
NUMBER = r"§\d+(?:\.\d+[a-z]?)?"
CITATION = re.compile(
    r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.md)`?\]?(?:\([^)\s]*\))?\)?"
    r"((?:\s*(?:,|;|/|–|-|and|or)?\s*" + NUMBER + r")+)"
)
SECTION = re.compile(NUMBER)
DEFAULT = re.compile(r"§ numbers cite \[?`?((?:[\w.-]+/)*[\w-]+\.md)")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+[a-z]?)?)(?:\.|\s|$)")

problems = []
headings_cache = {}
checked = 0


def document(name):
    """The repository file a cited name stands for, or None."""
    for path in (name, os.path.join("docs", os.path.basename(name)), os.path.basename(name)):
        if os.path.isfile(path):
            return path
    return None


def headings(path):
    if path not in headings_cache:
        found, fenced = set(), False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.lstrip().startswith("```"):
                    fenced = not fenced
                    continue
                m = None if fenced else HEADING.match(line)
                if m:
                    found.add(m.group(1))
        headings_cache[path] = found
    return headings_cache[path]


def check(where, name, numbers):
    global checked
    path = document(name)
    if path is None:
        problems.append(f"{where}: cites {name}, which is no file of this repository")
        return
    for number in numbers:
        checked += 1
        if number not in headings(path):
            problems.append(f"{where}: cites {name} §{number}, but {path} has no heading '{number}'")


for file in sys.argv[1:]:
    try:
        with open(file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        continue  # binary or vanished: nothing to cite from
    default = next((m.group(1) for line in lines for m in [DEFAULT.search(line)] if m), None)
    for n, line in enumerate(lines, 1):
        where = f"{file}:{n}"
        if OUTSIDE in line:
            problems.append(f"{where}: points into a sibling '{OUTSIDE}' directory a clone does not have")
        for m in FOREIGN.finditer(line):
            problems.append(f"{where}: names {m.group(0)}, which is not in this repository")
        covered = []
        for m in CITATION.finditer(line):
            check(where, m.group(1), [s[1:] for s in SECTION.findall(m.group(2))])
            covered.append(m.span(2))
        for m in SECTION.finditer(line):
            if any(a <= m.start() < b for a, b in covered):
                continue
            if default is None:
                problems.append(f"{where}: {m.group(0)} names no document: write <name>.md {m.group(0)}")
            else:
                check(where, default, [m.group(0)[1:]])

if problems:
    print("40-citations: FAILED: citations that do not resolve inside the repository:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    print(f"40-citations: {len(problems)} problem(s); cite a numbered heading of a docs/*.md file "
          "(docs/xapi-notes.md, docs/architecture.md)", file=sys.stderr)
    sys.exit(1)
print(f"40-citations: ok: {checked} section citations in {len(sys.argv) - 1} files resolve to "
      "headings in the repository; nothing points outside it")
PY
