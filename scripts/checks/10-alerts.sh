#!/usr/bin/env bash
# Alert rules, their unit tests, the example Alertmanager configuration and the runbook
# (architecture.md §7; contract: scripts/checks/README.md).
#
#   1. promtool check rules alerts/xenguard.rules.yml
#   2. promtool test rules alerts/tests/*.test.yml
#   3. amtool check-config alerts/alertmanager.example.yml
#   4. amtool config routes test: the remediation-driving alerts reach the xenguard receiver
#      (and people), every other alert reaches only the default receiver
#   5. the receiver's exposition: target/debug/xenguard receiver (built if needed) runs on a
#      free loopback port with a throw-away observe-mode configuration; its /metrics is saved to
#      target/checks/10-alerts/receiver.prom and linted with `promtool check metrics`
#   6. consistency: every rule is an alert with for/severity/summary/description/runbook_url;
#      every runbook_url anchor is a heading of docs/runbook.md; every metric name the rules use
#      appears in tests/golden/*.prom (the exporter) or in the receiver's exposition of step 5
#      (a renamed metric breaks the build); every alert has a unit test that fires it; the
#      xenguard route groups per host and sends resolved notifications with a bearer token
#      from a file.
#
# promtool and amtool come from Debian's prometheus and prometheus-alertmanager packages
# (scripts/setup.sh installs them); a missing tool is a failure, never a skip.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly RULES=alerts/xenguard.rules.yml
readonly AM_CONFIG=alerts/alertmanager.example.yml
readonly RUNBOOK=docs/runbook.md
# The alerts Alertmanager must hand to the xenguard receiver (its remediation policy needs them).
readonly REMEDIATION_ALERTS=(XenPoolMasterUnreachable XenHostUnreachable XenVmsStuckOnDeadHost XenPoolSplitBrain)
readonly SCRATCH=target/checks/10-alerts
readonly BIN=target/debug/xenguard

fail() {
    printf '10-alerts: FAILED: %s\n' "$*" >&2
    exit 1
}

for tool in promtool amtool; do
    command -v "$tool" >/dev/null ||
        fail "$tool not found on PATH (Debian packages prometheus / prometheus-alertmanager; run scripts/setup.sh)"
done
PYTHON=${XENGUARD_PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3) || fail "no Python interpreter (run scripts/setup.sh)"
"$PYTHON" -c 'import yaml' 2>/dev/null || fail "$PYTHON cannot import yaml (run scripts/setup.sh: .venv has PyYAML)"

shopt -s nullglob
tests=(alerts/tests/*.test.yml)
goldens=(tests/golden/*.prom)
shopt -u nullglob
((${#tests[@]} > 0)) || fail "no alerts/tests/*.test.yml"
((${#goldens[@]} > 0)) || fail "no tests/golden/*.prom to check metric names against"
mkdir -p "$SCRATCH"

# run LABEL CMD... — runs a tool quietly; on failure prints its own output and stops.
run() {
    local label=$1 out=$SCRATCH/last.log
    shift
    if ! "$@" >"$out" 2>&1; then
        printf '10-alerts: FAILED: %s\n  $ %s\n' "$label" "$*" >&2
        sed 's/^/  | /' "$out" >&2
        exit 1
    fi
    printf '10-alerts: ok  %s\n' "$label"
}

run "promtool check rules $RULES" promtool check rules "$RULES"
run "promtool test rules ${tests[*]}" promtool test rules "${tests[@]}"
run "amtool check-config $AM_CONFIG" amtool check-config "$AM_CONFIG"

# --- routing ---------------------------------------------------------------------------------

# amtool warns on stderr that --config.file overrides --alertmanager.url; keep stdout only.
route_of() {
    amtool config routes test --config.file="$AM_CONFIG" "$@" 2>/dev/null
}

mapfile -t all_alerts < <("$PYTHON" -c '
import sys, yaml
for group in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for rule in group["rules"]:
        if "alert" in rule:
            print(rule["alert"])
' "$RULES")
((${#all_alerts[@]} > 0)) || fail "no alerts found in $RULES"

printf '10-alerts: amtool config routes test --config.file=%s alertname=XenVmsStuckOnDeadHost severity=critical\n' \
    "$AM_CONFIG"
route_of alertname=XenVmsStuckOnDeadHost severity=critical | sed 's/^/  -> /'

for alert in "${REMEDIATION_ALERTS[@]}"; do
    printf '%s\n' "${all_alerts[@]}" | grep -qx "$alert" || fail "remediation alert $alert is not in $RULES"
done
for alert in "${all_alerts[@]}"; do
    expected=default
    for remediation in "${REMEDIATION_ALERTS[@]}"; do
        [ "$alert" = "$remediation" ] && expected=xenguard,default
    done
    labels=(alertname="$alert" severity=critical pool=sim host_uuid=1fe68e72-5a1e-4012-8000-000000000012)
    got=$(route_of "${labels[@]}") || fail "amtool config routes test ${labels[*]} failed"
    [ "$got" = "$expected" ] ||
        fail "$AM_CONFIG routes $alert to '$got', expected '$expected'"
done
printf '10-alerts: ok  routes: %s -> xenguard,default; the other %d alerts -> default\n' \
    "${REMEDIATION_ALERTS[*]}" $((${#all_alerts[@]} - ${#REMEDIATION_ALERTS[@]}))

# --- the receiver's exposition ----------------------------------------------------------------

# The receiver registers every xenguard_remediation_* family at start (label values at 0), so an
# idle receiver with one pool exposes the names the rules use. Its pool points at a closed
# loopback port: no host is ever reached, and observe mode never acts.
run "cargo build --bin xenguard" cargo build --quiet --bin xenguard
read -r RECEIVER_PORT XAPI_PORT < <("$PYTHON" -c '
import socket
held = [socket.socket() for _ in range(2)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))
')
rm -f "$SCRATCH"/receiver-journal.db*
printf 'unused\n' >"$SCRATCH/receiver.password"
cat >"$SCRATCH/receiver.yml" <<EOF
pools:
  - name: check
    hosts: [127.0.0.1]
    scheme: http
    port: $XAPI_PORT
    password_file: $SCRATCH/receiver.password
receiver:
  listen: 127.0.0.1:$RECEIVER_PORT
  mode: observe
  journal_path: $SCRATCH/receiver-journal.db
EOF
"$BIN" receiver --config "$SCRATCH/receiver.yml" >"$SCRATCH/receiver.log" 2>&1 &
RECEIVER_PID=$!
stop_receiver() {
    kill "$RECEIVER_PID" 2>/dev/null || true
    wait "$RECEIVER_PID" 2>/dev/null || true
}
trap stop_receiver EXIT
# Polls /metrics for up to 30 s; gives up early if the receiver exits.
scrape_receiver() {
    "$PYTHON" -c '
import os, sys, time, urllib.request
url, out, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read()
        break
    except OSError as e:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"the receiver exited before answering {url}")
        if time.monotonic() > deadline:
            sys.exit(f"no answer from {url} within 30 s: {e}")
        time.sleep(0.2)
with open(out, "wb") as f:
    f.write(body)
' "http://127.0.0.1:$RECEIVER_PORT/metrics" "$SCRATCH/receiver.prom" "$RECEIVER_PID"
}
if ! scrape_receiver; then
    sed 's/^/  | /' "$SCRATCH/receiver.log" >&2
    fail "could not read the receiver's /metrics (its log above, in $SCRATCH/receiver.log)"
fi
stop_receiver
trap - EXIT
grep -q '^xenguard_remediation_' "$SCRATCH/receiver.prom" ||
    fail "the receiver's /metrics ($SCRATCH/receiver.prom) holds no xenguard_remediation_* series"
check_metrics() { promtool check metrics <"$1"; }
run "promtool check metrics < $SCRATCH/receiver.prom" check_metrics "$SCRATCH/receiver.prom"
goldens+=("$SCRATCH/receiver.prom")

# --- consistency -----------------------------------------------------------------------------

"$PYTHON" - "$RULES" "$RUNBOOK" "$AM_CONFIG" "${REMEDIATION_ALERTS[*]}" "${tests[@]}" -- "${goldens[@]}" <<'PY'
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
PY
