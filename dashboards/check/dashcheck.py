#!/usr/bin/env python3
"""Checks of the Grafana dashboards in dashboards/ (run by scripts/checks/20-dashboards.sh).

    dashcheck.py lint      --schema DIR DASHBOARD.json...
        structure: uid = file name, tag `xenguard`, schemaVersion = @grafana/schema's default,
        $datasource / $pool variables, every panel and target on ${datasource}, unique panel ids,
        no overlapping panels, only defined variables in queries, multi-value variables matched
        with =~ only.
    dashcheck.py typecheck --tsc TSC --node-modules DIR --out DIR DASHBOARD.json...
        writes one .ts file per dashboard that assigns the JSON as a typed `Dashboard` object
        literal (dashboard.ts.tmpl, loose.ts) and runs `tsc --noEmit --strict`; errors are shown
        as DASHBOARD.json:LINE:COL. Deliberately broken copies (canaries) are compiled in the same
        run and must fail, or the check itself is broken.
    dashcheck.py queries   --prom URL [--var NAME=VALUE]... DASHBOARD.json...
        resolves every template variable against Prometheus (label_values: the metric and label
        exist; query_result: the expression returns series and the regex matches), substitutes
        variables and Grafana's macros in every panel target, and runs each through
        /api/v1/query (and /api/v1/query_range for range targets): it must parse and return at
        least one series.
    dashcheck.py free-ports N          N free TCP ports, free on 127.0.0.1 and 127.0.0.11-13
    dashcheck.py get URL               GET; prints the body; exit 1 unless 2xx
    dashcheck.py post-json URL BODY    POST a JSON body; prints the answer; exit 1 unless 2xx
    dashcheck.py has-data PROM EXPR    exit 0 if EXPR returns at least one series now
    dashcheck.py post-alert URL --pool P --host-uuid U [--token-file F] [--expect CODE]
        POST an Alertmanager (version 4) notification, XenVmsStuckOnDeadHost firing for one host,
        to a receiver's /alertmanager (bearer token from F if given); exit 0 iff it answers CODE
        (default 200)

Standard library only.
"""

import argparse
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# Grafana's global macros, with the values the live check substitutes. The dashboards' default
# range is 6 h; $__rate_interval is what Grafana computes for a 15 s scrape interval.
MACROS = {
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__auto": "15s",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
}
VAR_RE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)(?::[\w-]+)?\]\]|\$(\w+)")


class Fail(Exception):
    pass


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as e:
        raise Fail(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}")


def all_panels(dash):
    """Every panel, rows' nested panels included, in order."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def variables(dash):
    return dash.get("templating", {}).get("list", [])


def var_query(v):
    q = v.get("query", "")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q


def var_names(text):
    for m in VAR_RE.finditer(text):
        yield m.group(1) or m.group(2) or m.group(3)


# --------------------------------------------------------------------------------------- lint


def schema_version(schema_dir):
    """The schemaVersion of @grafana/schema's defaultDashboard (42 for 13.2.x)."""
    path = os.path.join(schema_dir, "dist", "esm", "raw", "dashboard", "x", "types.gen.mjs")
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r"\bschemaVersion:\s*(\d+)", f.read())
    except OSError as e:
        raise Fail(f"cannot read {path} ({e.strerror}): run scripts/setup.sh")
    if not m:
        raise Fail(f"{path}: no schemaVersion default found")
    return int(m.group(1))


def is_ds_ref(ds):
    return isinstance(ds, dict) and ds.get("uid") in ("${datasource}", "$datasource")


def lint_one(path, dash, want_schema):
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
    vs = {v.get("name"): v for v in variables(dash)}
    ds = vs.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errs.append("no `datasource` variable of type datasource for prometheus")
    pool = vs.get("pool")
    if not pool or pool.get("type") != "query" or var_query(pool) != "label_values(xen_pool_up, pool)":
        errs.append("no `pool` variable with label_values(xen_pool_up, pool)")
    multi = {n for n, v in vs.items() if v.get("multi") or v.get("includeAll")}
    for v in variables(dash):
        if v.get("type") == "query" and not is_ds_ref(v.get("datasource")):
            errs.append(f"variable {v.get('name')}: datasource is not ${{datasource}}")
        for n in var_names(var_query(v)):
            if n not in vs and n not in MACROS:
                errs.append(f"variable {v.get('name')}: query uses undefined ${n}")
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
        else:
            if g["x"] < 0 or g["x"] + g["w"] > 24:
                errs.append(f"{where}: gridPos x {g['x']} + w {g['w']} exceeds 24 columns")
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        errs.append(f"{where}: overlaps panel {cells[(x, y)]!r} at x={x} y={y}")
                        break
                    cells[(x, y)] = title
                else:
                    continue
                break
        if p.get("type") == "row":
            continue
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


def cmd_lint(args):
    want = schema_version(args.schema)
    bad = 0
    for path in args.dashboards:
        _, dash = load(path)
        for e in lint_one(path, dash, want):
            print(f"{path}: {e}", file=sys.stderr)
            bad += 1
    if bad:
        raise Fail(f"lint: {bad} problem(s)")


# ---------------------------------------------------------------------------------- typecheck

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


CANARIES = [
    ("valid", lambda d: None, None),
    ("misspelled-key", _mut_gridpos, 'gridpos"\' does not exist'),
    ("bad-variable-type", _mut_var_type, '"queyr"'),
    ("bad-cursor-sync", _mut_cursor, "DashboardCursorSync"),
    ("bad-thresholds-mode", _mut_threshold, '"absolut"'),
    ("missing-schema-version", _mut_no_schema, "schemaVersion"),
]

TSC_LINE = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\): (?P<rest>error .*)$")


def cmd_typecheck(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    link = os.path.join(out, "node_modules")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(args.node_modules), link)
    with open(os.path.join(HERE, "loose.ts"), encoding="utf-8") as f:
        loose = f.read()
    with open(os.path.join(out, "loose.ts"), "w", encoding="utf-8") as f:
        f.write(loose)
    with open(os.path.join(HERE, "dashboard.ts.tmpl"), encoding="utf-8") as f:
        tmpl = f.read()
    head = tmpl.split("@DASHBOARD_JSON@")[0]
    line0 = head.count("\n") + 1  # the JSON's first line in the .ts file
    col0 = len(head) - (head.rfind("\n") + 1)  # columns before it on that line

    sources = {}  # .ts path -> (json path or None, canary or None)
    for path in args.dashboards:
        text, _ = load(path)
        ts = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".ts")
        with open(ts, "w", encoding="utf-8") as f:
            f.write(tmpl.replace("@SOURCE@", path).replace("@DASHBOARD_JSON@", text.rstrip("\n")))
        sources[ts] = (path, None)
    for name, mutate, fragment in CANARIES:
        d = json.loads(json.dumps(CANARY_BASE))
        mutate(d)
        ts = os.path.join(out, f"canary-{name}.ts")
        with open(ts, "w", encoding="utf-8") as f:
            f.write(tmpl.replace("@SOURCE@", f"dashcheck.py's canary ({name})")
                    .replace("@DASHBOARD_JSON@", json.dumps(d, indent=2)))
        sources[ts] = (None, (name, fragment))

    tsc = os.path.abspath(args.tsc) if os.sep in args.tsc else args.tsc
    cmd = [tsc, "--noEmit", "--strict", "--pretty", "false", "--skipLibCheck",
           "--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022",
           *sorted(sources)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
    except OSError as e:
        raise Fail(f"cannot run {tsc} ({e.strerror}): run scripts/setup.sh")
    errors = {}  # .ts path -> [message, ...]
    current = None
    for raw in (proc.stdout + proc.stderr).splitlines():
        m = TSC_LINE.match(raw)
        if m:
            ts = os.path.normpath(os.path.join(out, m.group("file")))
            line, col = int(m.group("line")), int(m.group("col"))
            current = [ts, line, col, m.group("rest")]
            errors.setdefault(ts, []).append(current)
        elif current is not None and raw.startswith(" "):
            current[3] += "\n" + raw
        elif raw.strip():
            errors.setdefault("(tsc)", []).append([None, 0, 0, raw])

    problems = []
    for ts, errs in errors.items():
        src = sources.get(ts)
        if src and src[1]:
            continue  # canaries are judged below
        for _, line, col, msg in errs:
            if src:
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
        raise Fail(f"typecheck: {len(problems)} problem(s) ({' '.join(cmd[:2])} ...)")
    print(f"typecheck: {len(args.dashboards)} dashboard(s) type-check against @grafana/schema; "
          f"{len(CANARIES) - 1} broken canaries rejected")


# ------------------------------------------------------------------------------------ queries


class Prom:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.calls = 0

    def api(self, path, params):
        self.calls += 1
        data = urllib.parse.urlencode(params, doseq=True).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                return {"status": "error", "errorType": f"http {e.code}", "error": e.reason}
        except (urllib.error.URLError, OSError) as e:
            raise Fail(f"Prometheus at {self.url} did not answer: {e}")
        return body

    def query(self, expr, at):
        return self.api("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})

    def query_range(self, expr, start, end, step):
        return self.api("/api/v1/query_range",
                        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step})


def substitute(text, values, where):
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


def grafana_regex(regex):
    """A Grafana variable regex (/.../flags) as a Python pattern."""
    m = re.fullmatch(r"/(.*)/([gimsuy]*)", regex, re.S)
    body, flags = (m.group(1), m.group(2)) if m else (regex, "")
    body = body.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    return re.compile(body, re.I if "i" in flags else 0)


def resolve_variable(prom, v, values, now, where):
    """The (value, text) options of one variable, from Prometheus; raises Fail when empty."""
    q = substitute(var_query(v), values, where)
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
        kind = f"series match[]={sel}"
    elif m_lv:
        label = m_lv.group("label")
        body = prom.api(f"/api/v1/label/{label}/values", {})
        lines = sorted(body.get("data") or [])
        if not lines:
            raise Fail(f"{where}: {q!r}: label {label!r} has no values")
        kind = f"label {label} values"
    elif m_qr:
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
        kind = f"query {expr}"
    else:
        raise Fail(f"{where}: unsupported variable query {q!r} (label_values or query_result)")
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


def cmd_queries(args):
    prom = Prom(args.prom)
    overrides = dict(kv.split("=", 1) for kv in args.var)
    counts = {"variable": 0, "instant": 0, "range": 0}
    failures = []
    t0 = time.monotonic()
    for path in args.dashboards:
        _, dash = load(path)
        name = os.path.basename(path)
        now = time.time()
        values = {}
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
            if args.verbose:
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
                for kind, run in runs:
                    body = run()
                    counts[kind] += 1
                    if body.get("status") != "success":
                        failures.append(f"{where} ({kind}): {body.get('errorType')}: {body.get('error')}\n"
                                        f"      query: {q}")
                    elif not body["data"]["result"]:
                        failures.append(f"{where} ({kind}): EMPTY result: the panel references a metric or "
                                        f"label the exporter or receiver does not emit, or a join that matches nothing\n"
                                        f"      query: {q}")
                    elif args.verbose:
                        print(f"ok    {where} ({kind}): {len(body['data']['result'])} series")
    took = time.monotonic() - t0
    total = sum(counts.values())
    if failures:
        for f in failures:
            print(f"FAIL  {f}", file=sys.stderr)
        raise Fail(f"queries: {len(failures)} of {total} failed")
    print(f"queries: {total} ok against {args.prom} ({counts['variable']} variable queries, "
          f"{counts['instant']} instant, {counts['range']} range) in {took:.2f} s; "
          f"variables: {', '.join(f'${k}={v}' for k, v in overrides.items()) or 'first option'}")


# ------------------------------------------------------------------------------------- helpers


def cmd_free_ports(args):
    held, ports = [], []
    addrs = ["127.0.0.1", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
    while len(ports) < args.n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        held.append(s)
        try:
            for a in addrs[1:]:
                t = socket.socket()
                t.bind((a, port))
                held.append(t)
        except OSError:
            continue
        ports.append(port)
    for s in held:
        s.close()
    print(" ".join(map(str, ports)))


def http(method, url, body=None):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            sys.stdout.write(r.read().decode())
            return 0
    except urllib.error.HTTPError as e:
        sys.stderr.write(f"{method} {url}: HTTP {e.code}: {e.read().decode(errors='replace')}\n")
    except (urllib.error.URLError, OSError) as e:
        if not os.environ.get("DASHCHECK_QUIET"):
            sys.stderr.write(f"{method} {url}: {e}\n")
    return 1


def cmd_post_alert(args):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    labels = {"alertname": "XenVmsStuckOnDeadHost", "pool": args.pool, "host_uuid": args.host_uuid,
              "severity": "critical", "job": "xenguard", "instance": "dashcheck"}
    alert = {"status": "firing", "labels": labels,
             "annotations": {"summary": "dashboards check"}, "startsAt": now,
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://dashcheck/graph",
             "fingerprint": hashlib.sha256(f"{args.pool}/{args.host_uuid}/{now}".encode()).hexdigest()[:16]}
    body = {"version": "4", "groupKey": '{}:{host_uuid="%s"}' % args.host_uuid,
            "truncatedAlerts": 0, "status": "firing", "receiver": "xenguard",
            "groupLabels": {"host_uuid": args.host_uuid}, "commonLabels": labels,
            "commonAnnotations": alert["annotations"], "externalURL": "http://dashcheck",
            "alerts": [alert]}
    headers = {"Content-Type": "application/json"}
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            headers["Authorization"] = "Bearer " + f.read().strip()
    req = urllib.request.Request(args.url, data=json.dumps(body).encode(), method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            code, answer = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        code, answer = e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        if not os.environ.get("DASHCHECK_QUIET"):
            sys.stderr.write(f"POST {args.url}: {e}\n")
        return 1
    if code != args.expect:
        if not os.environ.get("DASHCHECK_QUIET"):
            sys.stderr.write(f"POST {args.url}: HTTP {code}, expected {args.expect}: {answer}\n")
        return 1
    sys.stdout.write(answer)
    return 0


def cmd_has_data(args):
    body = Prom(args.prom).query(args.expr, time.time())
    if body.get("status") != "success":
        raise Fail(f"{args.expr!r}: {body.get('errorType')}: {body.get('error')}")
    return 0 if body["data"]["result"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lint")
    p.add_argument("--schema", required=True, help="the @grafana/schema package directory")
    p.add_argument("dashboards", nargs="+")
    p = sub.add_parser("typecheck")
    p.add_argument("--tsc", required=True)
    p.add_argument("--node-modules", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("dashboards", nargs="+")
    p = sub.add_parser("queries")
    p.add_argument("--prom", required=True)
    p.add_argument("--var", action="append", default=[], help="NAME=VALUE for a template variable")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("dashboards", nargs="+")
    p = sub.add_parser("free-ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("get")
    p.add_argument("url")
    p = sub.add_parser("post-json")
    p.add_argument("url")
    p.add_argument("body")
    p = sub.add_parser("post-alert")
    p.add_argument("url")
    p.add_argument("--pool", required=True)
    p.add_argument("--host-uuid", required=True)
    p.add_argument("--token-file")
    p.add_argument("--expect", type=int, default=200)
    p = sub.add_parser("has-data")
    p.add_argument("prom")
    p.add_argument("expr")
    args = ap.parse_args()
    try:
        if args.cmd == "lint":
            cmd_lint(args)
        elif args.cmd == "typecheck":
            cmd_typecheck(args)
        elif args.cmd == "queries":
            cmd_queries(args)
        elif args.cmd == "free-ports":
            cmd_free_ports(args)
        elif args.cmd == "get":
            return http("GET", args.url)
        elif args.cmd == "post-json":
            return http("POST", args.url, args.body)
        elif args.cmd == "post-alert":
            return cmd_post_alert(args)
        elif args.cmd == "has-data":
            return cmd_has_data(args)
    except Fail as e:
        print(f"dashcheck {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
