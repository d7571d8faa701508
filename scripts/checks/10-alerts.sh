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

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

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

for tool in promtool amtool curl; do
    command -v "$tool" >/dev/null ||
        fail "$tool not found on PATH (Debian packages prometheus / prometheus-alertmanager / curl; run scripts/setup.sh)"
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
PORTS=$(free_ports 2) || fail "could not pick free loopback ports"
read -r RECEIVER_PORT XAPI_PORT <<<"$PORTS"
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
# Polls /metrics every 0.2 s for up to 30 s; gives up early if the receiver exits.
scrape_receiver() {
    local url=http://127.0.0.1:$RECEIVER_PORT/metrics start
    start=$(now_us)
    until curl -fsS --max-time 2 -o "$SCRATCH/receiver.prom" "$url" 2>"$SCRATCH/curl.log"; do
        if ! kill -0 "$RECEIVER_PID" 2>/dev/null; then
            echo "10-alerts: the receiver exited before answering $url" >&2
            return 1
        fi
        if (($(now_us) - start > 30000000)); then
            echo "10-alerts: no answer from $url within 30 s: $(cat "$SCRATCH/curl.log")" >&2
            return 1
        fi
        sleep 0.2
    done
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

"$PYTHON" scripts/python/alerts_consistency.py \
    "$RULES" "$RUNBOOK" "$AM_CONFIG" "${REMEDIATION_ALERTS[*]}" "${tests[@]}" -- "${goldens[@]}"
