#!/usr/bin/env python3
"""Structure of the Grafana dashboards (scripts/checks/20-dashboards.sh, step 1).

    lint.py --schema DIR DASHBOARD.json...

uid = file name, tag `xenguard`, schemaVersion = @grafana/schema's default (DIR is that
package), no instance-specific `id`, the $datasource and $pool variables, every panel and target
on ${datasource}, unique numeric panel ids, panels inside the 24 columns and not overlapping, a
title and a description on every panel, only defined variables in queries, multi-value
variables matched with =~ / !~ only. Every problem is printed as `DASHBOARD.json: message`.

Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from dashboard import MACROS, Fail, all_panels, load, run, var_names, var_query, variables


def schema_version(schema_dir: str) -> int:
    """The schemaVersion of @grafana/schema's defaultDashboard (42 for 13.2.x)."""
    path = os.path.join(schema_dir, "dist", "esm", "raw", "dashboard", "x", "types.gen.mjs")
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r"\bschemaVersion:\s*(\d+)", f.read())
    except OSError as e:
        raise Fail(f"cannot read {path} ({e.strerror}): run scripts/setup.sh") from None
    if not m:
        raise Fail(f"{path}: no schemaVersion default found")
    return int(m.group(1))


def is_ds_ref(ds) -> bool:
    return isinstance(ds, dict) and ds.get("uid") in ("${datasource}", "$datasource")


def lint_variables(dash: dict) -> list[str]:
    errs = []
    vs = {v.get("name"): v for v in variables(dash)}
    ds = vs.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errs.append("no `datasource` variable of type datasource for prometheus")
    pool = vs.get("pool")
    if not pool or pool.get("type") != "query" or var_query(pool) != "label_values(xen_pool_up, pool)":
        errs.append("no `pool` variable with label_values(xen_pool_up, pool)")
    for v in variables(dash):
        if v.get("type") == "query" and not is_ds_ref(v.get("datasource")):
            errs.append(f"variable {v.get('name')}: datasource is not ${{datasource}}")
        for n in var_names(var_query(v)):
            if n not in vs and n not in MACROS:
                errs.append(f"variable {v.get('name')}: query uses undefined ${n}")
    return errs


def lint_layout(dash: dict) -> list[str]:
    """Unique numeric ids; integer gridPos inside 24 columns; no two panels on one cell."""
    errs = []
    ids, cells = {}, {}
    for p in all_panels(dash):
        title = p.get("title", "")
        where = f"panel {p.get('id')} {title!r}"
        pid = p.get("id")
        if not isinstance(pid, int):
            errs.append(f"{where}: no numeric id")
        elif pid in ids:
            errs.append(f"{where}: id {pid} also used by {ids[pid]!r}")
        else:
            ids[pid] = title
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "xywh"):
            errs.append(f"{where}: gridPos needs integer x, y, w, h")
            continue
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            errs.append(f"{where}: gridPos x {g['x']} + w {g['w']} exceeds 24 columns")
        overlap = next(((x, y) for x in range(g["x"], g["x"] + g["w"])
                        for y in range(g["y"], g["y"] + g["h"]) if (x, y) in cells), None)
        if overlap:
            x, y = overlap
            errs.append(f"{where}: overlaps panel {cells[overlap]!r} at x={x} y={y}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                cells.setdefault((x, y), title)
    return errs


def lint_panels(dash: dict) -> list[str]:
    """Title, description, ${datasource} and well-formed targets on every panel but rows."""
    errs = []
    vs = {v.get("name") for v in variables(dash)}
    multi = {v.get("name") for v in variables(dash) if v.get("multi") or v.get("includeAll")}
    for p in all_panels(dash):
        if p.get("type") == "row":
            continue
        title = p.get("title", "")
        where = f"panel {p.get('id')} {title!r}"
        if not title:
            errs.append(f"{where}: no title")
        if not p.get("description"):
            errs.append(f"{where}: no description (say what it shows and which metric feeds it)")
        if not is_ds_ref(p.get("datasource")):
            errs.append(f"{where}: datasource is not ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            errs.append(f"{where}: no targets")
        refs = set()
        for t in targets:
            ref = t.get("refId")
            if not ref or ref in refs:
                errs.append(f"{where}: missing or duplicate refId {ref!r}")
            refs.add(ref)
            if not is_ds_ref(t.get("datasource")):
                errs.append(f"{where} {ref}: target datasource is not ${{datasource}}")
            expr = t.get("expr", "")
            if not expr.strip():
                errs.append(f"{where} {ref}: no expr")
            for n in var_names(expr):
                if n not in vs and n not in MACROS and not n.isdigit():
                    errs.append(f"{where} {ref}: uses undefined variable ${n}")
            for n in multi:
                if re.search(r'="(\$%s|\$\{%s(:[\w-]+)?\})"' % (n, n), expr):
                    errs.append(f"{where} {ref}: multi-value ${n} needs =~ / !~, not = / !=")
    return errs


def lint_one(path: str, dash: dict, want_schema: int) -> list[str]:
    errs = []
    stem = os.path.splitext(os.path.basename(path))[0]
    if dash.get("uid") != stem:
        errs.append(f"uid {dash.get('uid')!r} is not the file name {stem!r}")
    if "xenguard" not in dash.get("tags", []):
        errs.append("tags lack 'xenguard'")
    if dash.get("schemaVersion") != want_schema:
        errs.append(f"schemaVersion {dash.get('schemaVersion')} is not @grafana/schema's {want_schema}")
    if dash.get("id") is not None:
        errs.append("a numeric `id` is instance-specific: leave it out")
    return errs + lint_variables(dash) + lint_layout(dash) + lint_panels(dash)


def lint(schema_dir: str, dashboards: list[str]) -> None:
    want = schema_version(schema_dir)
    bad = 0
    for path in dashboards:
        _, dash = load(path)
        for e in lint_one(path, dash, want):
            print(f"{path}: {e}", file=sys.stderr)
            bad += 1
    if bad:
        raise Fail(f"{bad} problem(s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schema", required=True, help="the @grafana/schema package directory")
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()
    return run("lint", lambda: lint(args.schema, args.dashboards))


if __name__ == "__main__":
    sys.exit(main())
