#!/usr/bin/env python3
"""Every query of the Grafana dashboards against a live Prometheus (scripts/checks/20-dashboards.sh,
step 3).

    queries.py --prom URL [--scenario NAME=VALUE[,NAME=VALUE...]]... [--verbose] DASHBOARD.json...

Resolves every template variable against Prometheus (label_values: the metric and label exist;
query_result: the expression returns series and the regex matches; a scenario picks the value,
which must be among the options, else the first option is used), substitutes variables and
Grafana's macros in every panel target, and runs each through /api/v1/query (and
/api/v1/query_range for range targets), once per scenario: it must parse in every scenario and
return at least one series in one of them (a dead host's resource panels are empty, a live
host's failure panels may be).

It sends a hundred-odd queries, so it talks to Prometheus's HTTP API itself (urllib, one process)
rather than through `promtool query` (one process, about 60 ms, per query).

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from dashboard import MACROS, VAR_RE, Fail, all_panels, load, run, var_query, variables


class Prom:
    """Prometheus's HTTP API: the decoded JSON answer, errors included."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def api(self, path: str, params: dict) -> dict:
        data = urllib.parse.urlencode(params, doseq=True).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400 / 422 carry the API's error JSON
            try:
                return json.load(e)
            except ValueError:
                return {"status": "error", "errorType": f"http {e.code}", "error": e.reason}
        except (urllib.error.URLError, OSError) as e:
            raise Fail(f"Prometheus at {self.url} did not answer: {e}") from None

    def query(self, expr: str, at: float) -> dict:
        return self.api("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})

    def query_range(self, expr: str, start: float, end: float, step: str) -> dict:
        return self.api("/api/v1/query_range",
                        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step})


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """TEXT with Grafana's macros and the variables' VALUES in place of their references."""
    def rep(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in MACROS:
            return MACROS[name]
        if name in values:
            return values[name]
        if name.isdigit():  # label_replace's "$1"
            return m.group(0)
        raise Fail(f"{where}: undefined variable ${name}")

    return VAR_RE.sub(rep, text)


def grafana_regex(regex: str) -> re.Pattern:
    """A Grafana variable regex (/.../flags) as a Python pattern."""
    m = re.fullmatch(r"/(.*)/([gimsuy]*)", regex, re.S)
    body, flags = (m.group(1), m.group(2)) if m else (regex, "")
    body = body.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    return re.compile(body, re.I if "i" in flags else 0)


def variable_lines(prom: Prom, q: str, now: float, where: str) -> tuple[list[str], str]:
    """What Grafana lists for the variable query Q (before its regex), and what was asked."""
    m_lv = re.fullmatch(r"\s*label_values\(\s*(?:(?P<sel>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*", q)
    m_qr = re.fullmatch(r"\s*query_result\((?P<expr>.+)\)\s*", q, re.S)
    if m_lv and m_lv.group("sel"):
        sel, label = m_lv.group("sel"), m_lv.group("label")
        body = prom.api("/api/v1/series", {"match[]": sel, "start": f"{now - 300:.3f}", "end": f"{now:.3f}"})
        if body.get("status") != "success":
            raise Fail(f"{where}: {q!r}: {body.get('errorType')}: {body.get('error')}")
        if not body["data"]:
            raise Fail(f"{where}: {q!r}: no series match {sel!r} (the exporter does not emit it?)")
        lines = sorted({s[label] for s in body["data"] if label in s})
        if not lines:
            raise Fail(f"{where}: {q!r}: series of {sel!r} carry no label {label!r}")
        return lines, f"series match[]={sel}"
    if m_lv:
        label = m_lv.group("label")
        body = prom.api(f"/api/v1/label/{label}/values", {})
        lines = sorted(body.get("data") or [])
        if not lines:
            raise Fail(f"{where}: {q!r}: label {label!r} has no values")
        return lines, f"label {label} values"
    if m_qr:
        expr = m_qr.group("expr")
        body = prom.query(expr, now)
        if body.get("status") != "success":
            raise Fail(f"{where}: {q!r}: {body.get('errorType')}: {body.get('error')}")
        if not body["data"]["result"]:
            raise Fail(f"{where}: {q!r}: empty result")
        lines = []
        for s in body["data"]["result"]:  # as Grafana's query_result formats each series
            labels = dict(s["metric"])
            name = labels.pop("__name__", "")
            inner = ",".join(f'{k}="{val}"' for k, val in labels.items())
            lines.append(f"{name}{{{inner}}} {s['value'][1]} {int(float(s['value'][0]) * 1000)}")
        return lines, f"query {expr}"
    raise Fail(f"{where}: unsupported variable query {q!r} (label_values or query_result)")


def resolve_variable(prom: Prom, v: dict, values: dict[str, str], now: float,
                     where: str) -> tuple[list[tuple[str, str]], str]:
    """The (value, text) options of one variable, from Prometheus; raises Fail when empty."""
    lines, kind = variable_lines(prom, substitute(var_query(v), values, where), now, where)
    options = []
    rx = grafana_regex(v["regex"]) if v.get("regex") else None
    for line in lines:
        if rx is None:
            options.append((line, line))
            continue
        m = rx.search(line)
        if not m:
            continue
        g = m.groupdict()
        value = g.get("value") or g.get("text") or (m.group(1) if m.groups() else m.group(0))
        options.append((value, g.get("text") or value))
    if not options:
        raise Fail(f"{where}: regex {v.get('regex')!r} matches none of {lines}")
    return options, kind


def check_dashboard(prom: Prom, path: str, overrides: dict[str, str], verbose: bool,
                    counts: dict[str, int]) -> tuple[list[str], dict[str, str]]:
    """Runs one dashboard's variable queries and targets with OVERRIDES. Returns the failures
    that hold whatever the scenario (errors, undefined variables, an override that is not an
    option) and, per target, why it was empty (absent when it returned data)."""
    _, dash = load(path)
    name = os.path.basename(path)
    now = time.time()
    values, failures, empty = {}, [], {}
    for v in variables(dash):
        vname = v.get("name")
        where = f"{name}: variable ${vname}"
        if v.get("type") == "datasource":
            values[vname] = "prometheus"
            continue
        if v.get("type") != "query":
            raise Fail(f"{where}: type {v.get('type')!r} is not handled by this check")
        try:
            options, kind = resolve_variable(prom, v, values, now, where)
        except Fail as e:
            failures.append(str(e))
            values[vname] = "__unresolved__"
            continue
        counts["variable"] += 1
        if vname in overrides:
            if overrides[vname] not in [o[0] for o in options]:
                failures.append(f"{where}: {overrides[vname]!r} is not among its options {options}")
            values[vname] = overrides[vname]
        else:
            values[vname] = options[0][0]
        if verbose:
            print(f"ok    {where} ({kind}): {len(options)} option(s), using {values[vname]!r}")
    for p in all_panels(dash):
        for t in p.get("targets", []) or []:
            expr = t.get("expr")
            if not expr:
                continue
            where = f"{name}: panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}"
            try:
                q = substitute(expr, values, where)
            except Fail as e:
                failures.append(str(e))
                continue
            runs = [("instant", lambda: prom.query(q, now))]
            if t.get("range", not t.get("instant", False)):
                runs.append(("range", lambda: prom.query_range(q, now - 60, now, "1s")))
            for kind, ask in runs:
                body = ask()
                counts[kind] += 1
                if body.get("status") != "success":
                    failures.append(f"{where} ({kind}): {body.get('errorType')}: {body.get('error')}\n"
                                    f"      query: {q}")
                elif not body["data"]["result"]:
                    empty[f"{where} ({kind})"] = q
                elif verbose:
                    print(f"ok    {where} ({kind}): {len(body['data']['result'])} series")
    return failures, empty


def queries(prom_url: str, scenarios: list[dict[str, str]], verbose: bool, dashboards: list[str]) -> None:
    """Each dashboard once per scenario (a set of variable values): every query must run in
    every scenario and return data in at least one, so a panel about a dead host is checked
    with the dead host and a panel about resources with a live one."""
    prom = Prom(prom_url)
    counts = {"variable": 0, "instant": 0, "range": 0}
    failures = []
    t0 = time.monotonic()
    for path in dashboards:
        empty_everywhere = None
        for overrides in scenarios:
            errors, empty = check_dashboard(prom, path, overrides, verbose, counts)
            failures += errors
            empty_everywhere = empty if empty_everywhere is None else {
                k: v for k, v in empty_everywhere.items() if k in empty}
        for where, q in (empty_everywhere or {}).items():
            failures.append(f"{where}: EMPTY result in every scenario: the panel references a metric or "
                            f"label the exporter or receiver does not emit, or a join that matches nothing\n"
                            f"      query: {q}")
    took = time.monotonic() - t0
    total = sum(counts.values())
    if failures:
        for f in failures:
            print(f"FAIL  {f}", file=sys.stderr)
        raise Fail(f"{len(failures)} of {total} failed")
    described = "; ".join(", ".join(f"${k}={v}" for k, v in o.items()) or "first options" for o in scenarios)
    print(f"queries: {total} ok against {prom_url} ({counts['variable']} variable queries, "
          f"{counts['instant']} instant, {counts['range']} range) in {took:.2f} s; scenarios: {described}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prom", required=True, help="Prometheus's URL")
    ap.add_argument("--scenario", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE...]",
                    help="variable values for one run of every dashboard (repeatable; a variable not "
                         "named takes its first option); a target must return data in at least one")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every query and its series count")
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()
    scenarios = [dict(kv.split("=", 1) for kv in sc.split(",") if kv) for sc in args.scenario] or [{}]
    return run("queries", lambda: queries(args.prom, scenarios, args.verbose, args.dashboards))


if __name__ == "__main__":
    sys.exit(main())
