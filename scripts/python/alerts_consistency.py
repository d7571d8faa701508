"""Consistency of the alert rules, their unit tests, the runbook, the Alertmanager example and
the metrics (scripts/checks/10-alerts.sh, step 6).

Usage: alerts_consistency.py RULES RUNBOOK AM_CONFIG "REMEDIATION ALERTS" TEST... -- GOLDEN...

Every rule is an alert with for/severity/summary/description/runbook_url; every runbook_url
anchor is a heading of the runbook; every metric name the rules use appears in a golden
exposition; every alert has a unit test that fires it; the xenguard route groups per host and
sends resolved notifications with a bearer token from a file. Prints each problem and exits 1
if there is any.
"""
import os
import re
import sys

import yaml

rules_path, runbook_path, am_path, remediation = sys.argv[1:5]
rest = sys.argv[5:]
sep = rest.index("--")
test_paths, golden_paths = rest[:sep], rest[sep + 1 :]
remediation = set(remediation.split())

RUNBOOK_URL = "https://github.com/xenguard/xenguard/blob/main/docs/runbook.md#"
SEVERITIES = {"critical", "warning", "info"}
# Series Prometheus makes itself, not the exporter.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}
errors = []


def github_slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [text](link) -> text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors(path):
    anchors, seen, fenced = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = github_slug(m.group(2))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def metric_names(expr):
    """Metric names a PromQL expression selects (not functions, keywords or label names)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery windows
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+-?\w+", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


golden = set()
for path in golden_paths:
    for line in open(path, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            golden.add(re.split(r"[{\s]", line, maxsplit=1)[0])

anchors = runbook_anchors(runbook_path)
rules = [r for g in yaml.safe_load(open(rules_path))["groups"] for r in g["rules"]]
alerts = {}
used_metrics = {}
for rule in rules:
    name = rule.get("alert") or rule.get("record")
    if "record" in rule:
        used_metrics.setdefault(rule["record"], set())  # a recording rule defines a series
    for metric in metric_names(rule["expr"]):
        used_metrics.setdefault(metric, set()).add(name)
    if "alert" not in rule:
        continue
    alerts[name] = rule
    where = f"{rules_path}: alert {name}"
    if "for" not in rule:
        errors.append(f"{where}: no 'for:'")
    severity = rule.get("labels", {}).get("severity")
    if severity not in SEVERITIES:
        errors.append(f"{where}: severity {severity!r}, expected one of {sorted(SEVERITIES)}")
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        if not annotations.get(key):
            errors.append(f"{where}: no annotation {key!r}")
    for text in annotations.values():
        for metric in re.findall(r"\b(?:xen|xenguard)_[a-zA-Z0-9_]+", text):
            used_metrics.setdefault(metric, set()).add(f"{name} (annotations)")
    url = annotations.get("runbook_url", "")
    if url:
        if not url.startswith(RUNBOOK_URL):
            errors.append(f"{where}: runbook_url {url} does not start with {RUNBOOK_URL}")
        elif url[len(RUNBOOK_URL):] not in anchors:
            errors.append(
                f"{where}: runbook_url anchor #{url[len(RUNBOOK_URL):]} is not a heading of {runbook_path}"
            )

recorded = {r["record"] for r in rules if "record" in r}
for metric, users in sorted(used_metrics.items()):
    if metric in golden or metric in PROMETHEUS_SERIES or metric in recorded:
        continue
    errors.append(
        f"{rules_path}: metric {metric} (used by {', '.join(sorted(users))}) appears in none of "
        f"{', '.join(golden_paths)}"
    )

# In-page links of the runbook resolve too.
for link in sorted(set(re.findall(r"\]\(#([^)]+)\)", open(runbook_path, encoding="utf-8").read()))):
    if link not in anchors:
        errors.append(f"{runbook_path}: link #{link} has no heading")

# Every alert is fired by at least one unit test.
fired = set()
for path in test_paths:
    for test in yaml.safe_load(open(path)).get("tests", []):
        for check in test.get("alert_rule_test", []) or []:
            if check.get("exp_alerts"):
                fired.add(check["alertname"])
for name in sorted(set(alerts) - fired):
    errors.append(f"alert {name} has no alert_rule_test in {', '.join(test_paths)} that expects it to fire")

# The xenguard route: one group per host, resolved notifications, token from a file.
am = yaml.safe_load(open(am_path))
receivers = {r["name"]: r for r in am.get("receivers", [])}
routes = [r for r in am["route"].get("routes", []) if r.get("receiver") == "xenguard"]
if not routes:
    errors.append(f"{am_path}: no route to the receiver 'xenguard'")
for route in routes:
    if set(route.get("group_by", [])) != {"alertname", "pool", "host_uuid"}:
        errors.append(f"{am_path}: the xenguard route groups by {route.get('group_by')}, expected alertname, pool, host_uuid")
hooks = receivers.get("xenguard", {}).get("webhook_configs", [])
if not hooks:
    errors.append(f"{am_path}: receiver 'xenguard' has no webhook_configs")
for hook in hooks:
    if not hook.get("url", "").endswith("/alertmanager"):
        errors.append(f"{am_path}: xenguard webhook url {hook.get('url')} is not the receiver's /alertmanager")
    if hook.get("send_resolved") is not True:
        errors.append(f"{am_path}: xenguard webhook must set send_resolved: true")
    auth = hook.get("http_config", {}).get("authorization", {})
    if not auth.get("credentials_file") or "credentials" in auth:
        errors.append(f"{am_path}: xenguard webhook must read its bearer token from authorization.credentials_file")
inhibited = " ".join(
    str(m) for rule in am.get("inhibit_rules", []) for m in rule.get("target_matchers", [])
)
for name in sorted(remediation):
    if name in inhibited:
        errors.append(f"{am_path}: inhibit_rules target the remediation alert {name}")

if errors:
    print("10-alerts: FAILED: consistency", file=sys.stderr)
    for error in errors:
        print(f"  {error}", file=sys.stderr)
    sys.exit(1)
print(
    f"10-alerts: ok  consistency: {len(alerts)} alerts with for/severity/annotations, "
    f"runbook anchors in {runbook_path}, {len(used_metrics)} metric names "
    f"in {len(golden_paths)} expositions ({', '.join(os.path.basename(p) for p in golden_paths)}; "
    f"+ Prometheus's {', '.join(sorted(PROMETHEUS_SERIES))}), "
    f"every alert fired by a unit test, xenguard route and webhook"
)
