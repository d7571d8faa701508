#!/usr/bin/env bash
# Failure-drill report (architecture.md §8/§9): runs every drill of tests/it/drills.rs once and prints
# a table: drill, outcome, seconds from the injected failure to the alert reaching the receiver,
# to the fence read back off, to the VMs running again, the most VMs ever running twice (ground
# truth), and how many hosts the BMCs powered off.
#
# By default at the shipped speed (DRILL_SPEED=real): 15 s scrape and evaluation interval, the
# shipped rules and Alertmanager route, the receiver's default confirmation (3 probes over 10 s),
# the simulated clock at real time; only the receiver's start-up quiet period is 0. That takes
# several minutes. DRILL_SPEED=fast runs the test-suite speed (everything 15 times faster).
# Needs what scripts/setup.sh installs (Prometheus, Alertmanager, ipmi_sim, fence_ipmilan).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DRILL_SPEED="${DRILL_SPEED:-real}"

if ! command -v prometheus >/dev/null || ! command -v ipmi_sim >/dev/null; then
    scripts/setup.sh
fi

log="$(mktemp)"
echo "==> cargo test --release --test it -- drills:: (DRILL_SPEED=$DRILL_SPEED)" >&2
status=0
cargo test --release --test it -- drills:: --nocapture --test-threads=2 >"$log" 2>&1 || status=$?

echo "| drill | outcome | to alert (s) | to fence (s) | to VMs running (s) | double-running | fences |"
echo "|---|---|---|---|---|---|---|"
grep '^DRILL|' "$log" | sort | awk -F'|' '{ printf "|"; for (i = 2; i <= NF; i++) printf " %s |", $i; print "" }'
if [ "$status" -ne 0 ]; then
    echo >&2
    grep -E '^test .*FAILED|panicked' "$log" >&2 || true
    echo "drill-report: some drills failed (cargo test exit $status); full log: $log" >&2
    exit "$status"
fi
rm -f "$log"
