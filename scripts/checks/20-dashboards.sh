#!/usr/bin/env bash
# Grafana dashboards (architecture.md §7, §10.3). No Grafana server exists here, so:
#   1. lint: uid, tags, schemaVersion, $datasource / $pool, panel ids and layout, variable use;
#   2. type-check every dashboard against @grafana/schema with tsc --strict (broken copies must fail);
#   3. start `xenguard sim` (3 hosts, time x60) + `xenguard serve` (exporter and receiver, the
#      receiver in observe mode with a bearer token) + a real Prometheus scraping both every
#      second, power host2 off so the failure panels have data, post XenVmsStuckOnDeadHost for
#      host2 to the receiver's webhook (once without the token: 401, once with it: 200, which
#      journals a `planned` remediation), then run every template variable query and every
#      panel target (variables and macros substituted) through the Prometheus HTTP API, once
#      with the dead host and once with a live host and one of its guests (resource metrics
#      are on, read every second): each must parse every time and return at least one series
#      in one of the two. The receiver's counters and gauges exist
#      from start with 0 for every pool and label value (webhooks_total per HTTP status only
#      after a request with that status, hence the two posts).
# Helpers: dashboards/check/ (lint.py, typecheck.py with dashboard.ts.tmpl and loose.ts,
# queries.py; dashboard.py is what they share); single HTTP requests are curl's and the waits
# for data in Prometheus promtool's. Scratch files and logs: target/dashboards-check/. Every port
# is a free loopback port picked at start (free_ports, scripts/lib.sh).
#
# Usage: scripts/checks/20-dashboards.sh [DASHBOARD.json...]   (default: dashboards/*.json)
#        DASHCHECK_VERBOSE=1 prints every query and its series count.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
OUT=$ROOT/target/dashboards-check
HELPERS=dashboards/check
TOOLS_NM=$ROOT/.tools/node_modules
TSC=$TOOLS_NM/.bin/tsc
SCHEMA=$TOOLS_NM/@grafana/schema
BIN=$ROOT/target/debug/xenguard
DEAD_HOST=host2
LIVE_HOST=host1

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
T0=$(now_us)

die() {
    printf '20-dashboards: FAILED: %s\n' "$*" >&2
    exit 1
}

# --- tools: a missing one is a failure, never a skip ---------------------------------------------
PY=${XENGUARD_PYTHON:-python3}
command -v "$PY" >/dev/null || die "no Python interpreter ($PY); run scripts/setup.sh"
[ -x "$TSC" ] || die "$TSC is missing; run scripts/setup.sh (installs @grafana/schema and typescript in .tools)"
[ -d "$SCHEMA" ] || die "$SCHEMA is missing; run scripts/setup.sh"
for tool in prometheus promtool curl; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH; run scripts/setup.sh (Debian packages prometheus, curl)"
done

# Arguments (optional, for trying a changed or broken copy): the dashboard files to check.
if (($# > 0)); then
    DASHBOARDS=("$@")
else
    shopt -s nullglob
    DASHBOARDS=(dashboards/*.json)
    shopt -u nullglob
fi
((${#DASHBOARDS[@]} > 0)) || die "no dashboards/*.json"

rm -rf "$OUT"
mkdir -p "$OUT"

# --- 1 + 2: static checks ------------------------------------------------------------------------
t=$(now_us)
"$PY" "$HELPERS/lint.py" --schema "$SCHEMA" "${DASHBOARDS[@]}" || die "lint of ${DASHBOARDS[*]} (messages above)"
"$PY" "$HELPERS/typecheck.py" --tsc "$TSC" --node-modules "$TOOLS_NM" --out "$OUT/ts" "${DASHBOARDS[@]}" ||
    die "type check against @grafana/schema (messages above; generated files in $OUT/ts)"
T_STATIC=$(seconds_since "$t")

# --- 3: live stack -------------------------------------------------------------------------------
if [ ! -x "$BIN" ]; then
    echo "20-dashboards: $BIN is missing; cargo build"
    cargo build --quiet --bin xenguard || die "cargo build failed"
fi

PIDS=()
NAMES=()
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
    done
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        wait "${PIDS[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT

start() { # start NAME CMD... (output to $OUT/NAME.log)
    local name=$1
    shift
    "$@" >"$OUT/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
}

show_logs() {
    local n
    for n in "${NAMES[@]}"; do
        printf '20-dashboards: last lines of %s:\n' "$OUT/$n.log" >&2
        tail -n 15 "$OUT/$n.log" | sed 's/^/  | /' >&2
    done
}

# wait_for DESCRIPTION TIMEOUT_S CMD...: polls CMD every 0.2 s; fails if it times out or a started
# process has exited.
wait_for() {
    local what=$1 timeout=$2 start i
    shift 2
    start=$(now_us)
    until "$@" >/dev/null 2>&1; do
        for i in "${!PIDS[@]}"; do
            if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
                show_logs
                die "${NAMES[i]} exited while waiting for $what"
            fi
        done
        if (($(now_us) - start > timeout * 1000000)); then
            show_logs
            die "timed out after ${timeout} s waiting for $what"
        fi
        sleep 0.2
    done
}

PORTS=$(free_ports 5) || die "could not pick free loopback ports"
read -r SIM_PORT CONTROL_PORT EXPORTER_PORT RECEIVER_PORT PROM_PORT <<<"$PORTS"
CONTROL=http://127.0.0.1:$CONTROL_PORT
EXPORTER=http://127.0.0.1:$EXPORTER_PORT
RECEIVER=http://127.0.0.1:$RECEIVER_PORT
PROM=http://127.0.0.1:$PROM_PORT

# get URL: the body on stdout; fails unless the answer is 2xx.
get() { curl -fsS --max-time 10 "$1"; }
# has_data EXPR: Prometheus returns at least one series for EXPR now (promtool prints nothing
# for an empty result and fails on a query error).
has_data() { [ -n "$(promtool query instant "$PROM" "$1")" ]; }

printf 'xenguard\n' >"$OUT/password"
printf 'dashboards-check-webhook-token\n' >"$OUT/webhook.token"
cat >"$OUT/xenguard.yml" <<EOF
pools:
  - name: sim
    hosts: [127.0.0.11, 127.0.0.12, 127.0.0.13]
    scheme: http
    port: $SIM_PORT
    password_file: $OUT/password
exporter:
  listen: 127.0.0.1:$EXPORTER_PORT
  probe_interval_seconds: 1
  probe_timeout_seconds: 1
  event_timeout_seconds: 5
  rrd_interval_seconds: 1
receiver:
  listen: 127.0.0.1:$RECEIVER_PORT
  mode: observe
  auth:
    bearer_token_file: $OUT/webhook.token
  journal_path: $OUT/journal.db
EOF
cat >"$OUT/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: xenguard
    static_configs:
      - targets: ['127.0.0.1:$EXPORTER_PORT']
  - job_name: xenguard-receiver
    static_configs:
      - targets: ['127.0.0.1:$RECEIVER_PORT']
EOF

t=$(now_us)
start sim "$BIN" sim --hosts 3 --vms-per-host 2 --port "$SIM_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --time-scale 60 --password-file "$OUT/password"
start serve "$BIN" serve --config "$OUT/xenguard.yml"
start prometheus prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/prometheus-data" \
    --web.listen-address="127.0.0.1:$PROM_PORT"

wait_for "the simulator's control API ($CONTROL)" 20 get "$CONTROL/hosts"
wait_for "the exporter to be ready ($EXPORTER/-/ready)" 30 get "$EXPORTER/-/ready"
wait_for "the receiver to be ready ($RECEIVER/-/ready)" 30 get "$RECEIVER/-/ready"
# Every host answered a probe once, so the dead host keeps a last-seen time.
all_reachable() { [ "$(get "$EXPORTER/metrics" | grep -c '^xen_host_reachable{.*} 1$')" = 3 ]; }
wait_for "the exporter to reach all 3 hosts" 30 all_reachable
T_STACK=$(seconds_since "$t")

# Power host2 off: with --time-scale 60, XAPI's 600 s liveness timeout passes in 10 s, after
# which its VMs are stuck on a dead host and the failure panels have data.
curl -sS --fail-with-body --max-time 10 -H 'Content-Type: application/json' -d '{"state":"off"}' \
    "$CONTROL/hosts/$DEAD_HOST/power" >"$OUT/power-off.json" ||
    die "POST $CONTROL/hosts/$DEAD_HOST/power failed: $(cat "$OUT/power-off.json")"
DEAD_UUID=$("$PY" -c '
import json, sys
hosts = json.load(open(sys.argv[1]))
print(next(h["uuid"] for h in hosts if h["name"] == sys.argv[2] and h["power"] == "off"))
' "$OUT/power-off.json" "$DEAD_HOST") || die "$DEAD_HOST is not powered off: $(cat "$OUT/power-off.json")"
LIVE_UUID=$("$PY" -c '
import json, sys
hosts = json.load(open(sys.argv[1]))
print(next(h["uuid"] for h in hosts if h["name"] == sys.argv[2] and h["power"] == "on"))
' "$OUT/power-off.json" "$LIVE_HOST") || die "$LIVE_HOST is not powered on: $(cat "$OUT/power-off.json")"

t=$(now_us)
wait_for "Prometheus to scrape the exporter (xen_pool_up)" 30 has_data 'xen_pool_up'
wait_for "$DEAD_HOST to be unreachable and not live in Prometheus" 60 has_data \
    "xen_host_live{host_uuid=\"$DEAD_UUID\"} == 0 and on (pool, host_uuid) xen_host_reachable == 0"
wait_for "stuck VMs in Prometheus" 30 has_data "xen_vm_stuck_running{host_uuid=\"$DEAD_UUID\"}"
wait_for "two samples of the counters (rate)" 30 has_data 'rate(xenguard_xapi_calls_total[1m])'

# The receiver: one notification without the token (401) and one with it (200; retried while
# the receiver has not read the pool's hosts yet and answers 422). Observe mode journals a
# `planned` remediation and does nothing else.
WEBHOOK=$RECEIVER/alertmanager
# The notification (Alertmanager's webhook payload, version 4) of XenVmsStuckOnDeadHost firing for
# the dead host; the fingerprint is a stand-in (the receiver needs one per firing).
STARTS_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FINGERPRINT=$(printf 'sim/%s/%s' "$DEAD_UUID" "$STARTS_AT" | sha256sum | cut -c1-16)
LABELS='{"alertname": "XenVmsStuckOnDeadHost", "pool": "sim", "host_uuid": "'$DEAD_UUID'",
    "severity": "critical", "job": "xenguard", "instance": "dashboards-check"}'
cat >"$OUT/alert.json" <<JSON
{
  "version": "4", "groupKey": "{}:{host_uuid=\\"$DEAD_UUID\\"}", "truncatedAlerts": 0,
  "status": "firing", "receiver": "xenguard", "groupLabels": {"host_uuid": "$DEAD_UUID"},
  "commonLabels": $LABELS,
  "commonAnnotations": {"summary": "dashboards check"}, "externalURL": "http://dashboards-check",
  "alerts": [{
    "status": "firing", "labels": $LABELS, "annotations": {"summary": "dashboards check"},
    "startsAt": "$STARTS_AT", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://dashboards-check/graph", "fingerprint": "$FINGERPRINT"
  }]
}
JSON
# post_alert CODE [CURL_ARG...]: POSTs the notification to the webhook (its answer goes to
# $OUT/webhook-CODE.json); true iff the answer's status is CODE.
post_alert() {
    local want=$1 code
    shift
    code=$(curl -sS --max-time 10 -o "$OUT/webhook-$want.json" -w '%{http_code}' "$@" \
        -H 'Content-Type: application/json' --data-binary @"$OUT/alert.json" "$WEBHOOK") || return 1
    if [ "$code" != "$want" ]; then
        echo "POST $WEBHOOK: HTTP $code, expected $want: $(cat "$OUT/webhook-$want.json")" >&2
        return 1
    fi
}
post_alert 401 || die "POST $WEBHOOK without credentials did not answer 401"
wait_for "the receiver to accept XenVmsStuckOnDeadHost for $DEAD_HOST (200)" 30 \
    post_alert 200 -H "Authorization: Bearer $(<"$OUT/webhook.token")"
wait_for "the receiver's planned remediation in Prometheus" 30 has_data \
    'xenguard_remediation_plans_total{pool="sim",kind="recover_host",outcome="planned"} > 0'
wait_for "two samples of the receiver's webhook counters" 30 has_data \
    'count_over_time(xenguard_remediation_webhooks_total{code="200"}[1m]) > 1 and on () count_over_time(xenguard_remediation_webhooks_total{code="401"}[1m]) > 1'
# Resource metrics: two samples of the live host's and its guests' counters (rates), and its
# SR series (named only once the SRs are in the exporter's cache).
wait_for "resource metrics of $LIVE_HOST in Prometheus" 30 has_data \
    "rate(xen_host_sr_read_bytes_total{host_uuid=\"$LIVE_UUID\"}[1m]) and on () rate(xen_vm_cpu_busy_seconds_total[1m])"
# A guest with resource series now: one of the live hosts' (the dead host's have expired).
LIVE_VM=$(promtool query instant -o json "$PROM" 'xen_vm_memory_bytes' | "$PY" -c '
import json, sys
print(sorted(s["metric"]["vm_uuid"] for s in json.load(sys.stdin))[0])
') || die "no guest has resource metrics in Prometheus"
T_DATA=$(seconds_since "$t")

t=$(now_us)
# Twice: with the dead host (failure panels) and with a live host and guest (resource panels,
# which are empty for a dead host); each target must return data in one of them.
"$PY" "$HELPERS/queries.py" ${DASHCHECK_VERBOSE:+--verbose} --prom "$PROM" \
    --scenario "pool=sim,host=$DEAD_UUID" --scenario "pool=sim,host=$LIVE_UUID,vm=$LIVE_VM" "${DASHBOARDS[@]}" ||
    die "dashboard queries against a live Prometheus (messages above; logs in $OUT)"
T_QUERIES=$(seconds_since "$t")

printf '20-dashboards: %d dashboards ok in %s s (lint + tsc %s s, sim + exporter + receiver up %s s, data in Prometheus %s s, queries %s s)\n' \
    "${#DASHBOARDS[@]}" "$(seconds_since "$T0")" "$T_STATIC" "$T_STACK" "$T_DATA" "$T_QUERIES"
