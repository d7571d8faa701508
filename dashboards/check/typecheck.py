#!/usr/bin/env python3
"""Type check of the Grafana dashboards against @grafana/schema (scripts/checks/20-dashboards.sh,
step 2).

    typecheck.py --tsc TSC --node-modules DIR --out DIR DASHBOARD.json...

Writes one .ts file per dashboard into --out that assigns the JSON as a typed `Dashboard` object
literal (dashboard.ts.tmpl, loose.ts; --node-modules holds @grafana/schema) and runs
`tsc --noEmit --strict` on them; errors are shown as DASHBOARD.json:LINE:COL. Deliberately
broken copies of a small dashboard (the canaries) are compiled in the same run and must fail,
or the check itself is broken.

Standard library only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys

from dashboard import Fail, load, run

HERE = os.path.dirname(os.path.abspath(__file__))

# The canaries: a small valid dashboard (it must type-check) and copies of it with one mistake
# each (tsc must reject every one, with a message containing the fragment). They prove that the
# type check bites, e.g. that '@grafana/schema' resolved and Loose<> did not erase the types.
CANARY_BASE = {
    "uid": "canary", "title": "canary", "schemaVersion": 42, "graphTooltip": 1, "tags": ["xenguard"],
    "templating": {"list": [{"type": "query", "name": "pool", "query": "label_values(xen_pool_up, pool)",
                             "datasource": {"type": "prometheus", "uid": "${datasource}"}, "refresh": 2}]},
    "panels": [{"type": "stat", "id": 1, "title": "t", "gridPos": {"h": 4, "w": 4, "x": 0, "y": 0},
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "fieldConfig": {"defaults": {"thresholds": {"mode": "absolute",
                                                            "steps": [{"color": "red", "value": None}]}},
                                "overrides": []},
                "targets": [{"refId": "A", "expr": "xen_pool_up"}]}],
}


def _mut_gridpos(d):
    p = d["panels"][0]
    p["gridpos"] = p.pop("gridPos")


def _mut_var_type(d):
    d["templating"]["list"][0]["type"] = "queyr"


def _mut_cursor(d):
    d["graphTooltip"] = "yes"


def _mut_threshold(d):
    d["panels"][0]["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"


def _mut_no_schema(d):
    del d["schemaVersion"]


# (name, mutation, a fragment tsc's message must contain; None: the copy must type-check)
CANARIES = [
    ("valid", lambda d: None, None),
    ("misspelled-key", _mut_gridpos, 'gridpos"\' does not exist'),
    ("bad-variable-type", _mut_var_type, '"queyr"'),
    ("bad-cursor-sync", _mut_cursor, "DashboardCursorSync"),
    ("bad-thresholds-mode", _mut_threshold, '"absolut"'),
    ("missing-schema-version", _mut_no_schema, "schemaVersion"),
]

TSC_LINE = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\): (?P<rest>error .*)$")


def write_sources(out: str, node_modules: str, dashboards: list[str]):
    """The .ts files in OUT: {.ts path: (dashboard path or None, (canary, fragment) or None)},
    and where the JSON starts in each (line, columns before it on that line)."""
    os.makedirs(out, exist_ok=True)
    link = os.path.join(out, "node_modules")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(node_modules), link)
    with open(os.path.join(HERE, "loose.ts"), encoding="utf-8") as f:
        loose = f.read()
    with open(os.path.join(out, "loose.ts"), "w", encoding="utf-8") as f:
        f.write(loose)
    with open(os.path.join(HERE, "dashboard.ts.tmpl"), encoding="utf-8") as f:
        tmpl = f.read()
    head = tmpl.split("@DASHBOARD_JSON@")[0]
    line0 = head.count("\n") + 1  # the JSON's first line in the .ts file
    col0 = len(head) - (head.rfind("\n") + 1)  # columns before it on that line

    sources = {}
    for path in dashboards:
        text, _ = load(path)
        ts = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".ts")
        with open(ts, "w", encoding="utf-8") as f:
            f.write(tmpl.replace("@SOURCE@", path).replace("@DASHBOARD_JSON@", text.rstrip("\n")))
        sources[ts] = (path, None)
    for name, mutate, fragment in CANARIES:
        d = copy.deepcopy(CANARY_BASE)
        mutate(d)
        ts = os.path.join(out, f"canary-{name}.ts")
        with open(ts, "w", encoding="utf-8") as f:
            f.write(tmpl.replace("@SOURCE@", f"typecheck.py's canary ({name})")
                    .replace("@DASHBOARD_JSON@", json.dumps(d, indent=2)))
        sources[ts] = (None, (name, fragment))
    return sources, line0, col0


def tsc_errors(out: str, output: str) -> dict[str, list[list]]:
    """tsc's messages by .ts path: [[path, line, col, message], ...]; "(tsc)" for the others."""
    errors = {}
    current = None
    for raw in output.splitlines():
        m = TSC_LINE.match(raw)
        if m:
            ts = os.path.normpath(os.path.join(out, m.group("file")))
            current = [ts, int(m.group("line")), int(m.group("col")), m.group("rest")]
            errors.setdefault(ts, []).append(current)
        elif current is not None and raw.startswith(" "):
            current[3] += "\n" + raw
        elif raw.strip():
            errors.setdefault("(tsc)", []).append([None, 0, 0, raw])
    return errors


def typecheck(tsc: str, node_modules: str, out: str, dashboards: list[str]) -> None:
    out = os.path.abspath(out)
    sources, line0, col0 = write_sources(out, node_modules, dashboards)
    tsc = os.path.abspath(tsc) if os.sep in tsc else tsc
    cmd = [tsc, "--noEmit", "--strict", "--pretty", "false", "--skipLibCheck",
           "--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022",
           *sorted(sources)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
    except OSError as e:
        raise Fail(f"cannot run {tsc} ({e.strerror}): run scripts/setup.sh") from None
    errors = tsc_errors(out, proc.stdout + proc.stderr)

    problems = []
    for ts, errs in errors.items():
        src = sources.get(ts)
        if src and src[1]:
            continue  # canaries are judged below
        for _, line, col, msg in errs:
            if src:  # a dashboard: the position in its JSON file
                jline = line - line0 + 1
                jcol = col - col0 if jline == 1 else col
                where = f"{src[0]}:{jline}:{jcol}" if jline >= 1 else f"{ts}:{line}:{col}"
            else:
                where = ts if line == 0 else f"{ts}:{line}:{col}"
            problems.append(f"{where}: {msg}")
    for ts, (_, canary) in sources.items():
        if not canary:
            continue
        name, fragment = canary
        msgs = [e[3] for e in errors.get(ts, [])]
        if fragment is None:
            if msgs:
                problems.append(f"canary {name}: the valid canary {ts} does not type-check: {msgs}")
        elif not any(fragment in m for m in msgs):
            problems.append(f"canary {name}: tsc did not reject the broken copy {ts} with a message "
                            f"containing {fragment!r} (got: {msgs or 'no error'}); the type check is not "
                            f"effective")
    if proc.returncode == 0:
        problems.append("tsc exited 0 although the canaries are broken on purpose")
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        raise Fail(f"{len(problems)} problem(s) ({' '.join(cmd[:2])} ...)")
    print(f"typecheck: {len(dashboards)} dashboard(s) type-check against @grafana/schema; "
          f"{len(CANARIES) - 1} broken canaries rejected")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tsc", required=True, help="the tsc executable")
    ap.add_argument("--node-modules", required=True, help="a node_modules directory with @grafana/schema")
    ap.add_argument("--out", required=True, help="where the .ts files are written")
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()
    return run("typecheck", lambda: typecheck(args.tsc, args.node_modules, args.out, args.dashboards))


if __name__ == "__main__":
    sys.exit(main())
