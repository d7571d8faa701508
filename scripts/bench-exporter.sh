#!/usr/bin/env bash
# Exporter benchmark, xenguard vs the official Python XenAPI SDK (architecture.md §9).
#
#   1. scripts/setup.sh, if .venv/bin/python is missing (the SDK lives in .venv/).
#   2. cargo build --release (waits if another cargo holds the build lock).
#   3. scripts/python/bench_exporter.py target/release/xenguard: starts
#      `xenguard sim --hosts 64 --vms-per-host 80` and `xenguard exporter` on free ports, then
#      prints initial sync time, peak RSS, scrape latency (p50/p90/p99/max), exposition size,
#      CPU per scrape, and the same three facts (hosts live / not live / stuck VMs) fetched the
#      community-exporter way with XenAPI.Session + get_all_records, timed and memory-measured.
#
# Extra arguments go to bench_exporter.py: --scrapes N (default 200), --sdk-runs N (default 5),
# --no-dead-host (skip powering off host5 and repeating the comparison).
#
# --scale [--sizes 16,64,256]: scripts/python/bench_scale.py instead: sync time, peak and steady
# RSS, scrape p50/p99 alone and with two scrapers at once, exposition size and CPU per scrape at
# each size; the load on the master with churn against a polling exporter (64 hosts); and the
# exporter's peak RSS increase from a hostile 200 MB answer. CSV in target/bench-scale.csv.
#
# --rrd [--window S]: scripts/python/bench_rrd.py instead: resource metrics at 64 hosts / 5,120
# VMs read every 15 s, off and with four `resource_metrics` choices: CPU per collection cycle,
# scrape p50/p99, CPU per scrape, exposition size, series, RSS. CSV in target/bench-rrd.csv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    scripts/setup.sh
fi

echo "==> cargo build --release"
cargo build --release

if [ "${1:-}" = "--rrd" ]; then
    shift
    echo
    echo "==> .venv/bin/python scripts/python/bench_rrd.py target/release/xenguard $*"
    exec .venv/bin/python scripts/python/bench_rrd.py target/release/xenguard "$@"
fi

if [ "${1:-}" = "--scale" ]; then
    shift
    echo
    echo "==> .venv/bin/python scripts/python/bench_scale.py target/release/xenguard $*"
    exec .venv/bin/python scripts/python/bench_scale.py target/release/xenguard "$@"
fi

echo
echo "==> .venv/bin/python scripts/python/bench_exporter.py target/release/xenguard $*"
exec .venv/bin/python scripts/python/bench_exporter.py target/release/xenguard "$@"
