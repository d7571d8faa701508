#!/usr/bin/env python3
"""Resource metrics at scale: what reading every host's /rrd_updates costs the exporter and its
scrapes, and what a pool's `resource_metrics` lists change (issue 13; docs/architecture.md §9).
Run through `scripts/bench-exporter.sh --rrd`, or directly:

    .venv/bin/python scripts/python/bench_rrd.py target/release/xenguard [--window 60]

One simulator (64 hosts, 80 guests each, real time) and, one after the other, an exporter per
variant: resource metrics off; on every 15 s with every family; on with the per-CPU families
denied; on with the host families only; on with every family and `unknown_sources: generic`.
For each variant:

1. Start, initial sync, and (when on) the first collection: every host `xen_host_rrd_up` 1.
2. CPU per collection cycle: the exporter's CPU time over an idle window (--window seconds, no
   scrapes) minus the same window's CPU with resource metrics off (event.from and probes), per
   15 s cycle.
3. 100 sequential scrapes: p50 / p99, CPU per scrape, exposition size, series (resource
   series: the series the "off" run lacks); RSS.

Writes the figures as CSV to --csv (default: target/bench-rrd.csv).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import bench_exporter as be  # beside this file
from bench_scale import Pool, address, scrapes

HOSTS = 64
VMS_PER_HOST = 80
INTERVAL_S = 15

VARIANTS = [
    ("off", None),
    ("every family", ""),
    ("per-CPU families denied",
     "    resource_metrics: {deny: [xen_host_cpu_busy_seconds_total, xen_vm_cpu_busy_seconds_total]}\n"),
    ("host families only", "    resource_metrics: {allow: [\"xen_host_*\"]}\n"),
    ("every family + unknown sources", "    resource_metrics: {unknown_sources: generic}\n"),
]


def config_for(pool: Pool, name: str, pool_lines: str | None) -> Path:
    """The bench's exporter configuration with the variant's lines."""
    path = be.write_config(pool.workdir, pool.port, pool.listen, [address(i) for i in range(pool.hosts)])
    text = path.read_text()
    if pool_lines is not None:
        text = text.replace("exporter:\n", f"{pool_lines}exporter:\n", 1)
        text += f"  rrd_interval_seconds: {INTERVAL_S}\n"
    variant = path.with_name(f"xenguard-{name.replace(' ', '-')}.yml")
    variant.write_text(text)
    return variant


def run_variant(pool: Pool, name: str, pool_lines: str | None, window_s: float, children: list) -> dict:
    config = config_for(pool, name, pool_lines)
    exporter = be.Child(f"exporter-{name.replace(' ', '-')}", [pool.binary, "exporter", "--config", str(config)],
                        pool.workdir)
    children.append(exporter)
    pool.exporter = exporter
    guests = pool.hosts * pool.vms

    def ready():
        text = be.scrape_text(pool.listen)
        if text is None or f'xen_pool_up{{pool="{be.POOL}"}} 1' not in text:
            return False
        if text.count("\nxen_vm_info{") != guests:
            return False
        return pool_lines is None or text.count("\nxen_host_rrd_up{") == pool.hosts and \
            all(line.endswith(" 1") for line in text.splitlines() if line.startswith("xen_host_rrd_up{"))

    be.wait_until(f"the exporter ({name}) to sync and read every host's RRD", 120, ready, [pool.sim, exporter], 0.1)
    # The first collection asked for a minute of rows; let one ordinary cycle pass first.
    time.sleep(INTERVAL_S if pool_lines is not None else 1)
    c0 = be.cpu_seconds(exporter.pid)
    time.sleep(window_s)
    idle_cpu_s = be.cpu_seconds(exporter.pid) - c0
    scrapes(pool.listen, 5)  # warm
    c0 = be.cpu_seconds(exporter.pid)
    latencies, size = scrapes(pool.listen, 100)
    cpu_ms = (be.cpu_seconds(exporter.pid) - c0) / 100 * 1e3
    text = be.scrape_text(pool.listen) or ""
    memory = be.memory_mb(exporter.pid)
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    exporter.stop()
    return {
        "variant": name,
        "idle_cpu_s": idle_cpu_s,
        "scrape_p50_ms": be.pct(latencies, 0.5),
        "scrape_p99_ms": be.pct(latencies, 0.99),
        "cpu_per_scrape_ms": cpu_ms,
        "exposition_mb": size / be.MB,
        "series": len(samples),
        "peak_rss_mb": memory["VmHWM"],
        "steady_rss_mb": memory["VmRSS"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--window", type=float, default=60, help="idle CPU window per variant, seconds (default 60)")
    parser.add_argument("--only", default="", help="run only the variants whose name contains this (and 'off')")
    parser.add_argument("--csv", default="target/bench-rrd.csv")
    args = parser.parse_args()
    if args.window < INTERVAL_S:
        parser.error(f"--window must be at least one collection interval ({INTERVAL_S} s)")
    binary = os.path.abspath(args.binary)

    rows = []
    try:
        with be.children_in("xenguard-rrd-") as (tmp, children):
            pool = Pool(binary, HOSTS, VMS_PER_HOST, tmp, children)
            for name, lines in VARIANTS:
                if lines is not None and args.only not in name:
                    continue
                print(f"bench-rrd: {HOSTS} hosts / {HOSTS * VMS_PER_HOST} VMs, resource metrics {name} ...",
                      flush=True)
                rows.append(run_variant(pool, name, lines, args.window, children))
    except be.BenchError as e:
        print(f"bench_rrd: {e}", file=sys.stderr)
        return 1

    base = rows[0]["idle_cpu_s"]
    for r in rows:  # the same pool and objects: what the "off" run lacks is resource series
        r["resource_series"] = r["series"] - rows[0]["series"]
    cycles = args.window / INTERVAL_S
    print()
    print(f"{'resource metrics':<32}{'CPU/cycle ms':>13}{'p50 ms':>8}{'p99 ms':>8}{'CPU/scrape ms':>14}"
          f"{'expo MB':>9}{'series':>9}{'of them RRD':>12}{'RSS MB':>8}")
    for r in rows:
        per_cycle = "-" if r is rows[0] else f"{(r['idle_cpu_s'] - base) / cycles * 1e3:.0f}"
        r["cpu_per_cycle_ms"] = None if r is rows[0] else (r["idle_cpu_s"] - base) / cycles * 1e3
        print(f"{r['variant']:<32}{per_cycle:>13}{r['scrape_p50_ms']:>8.1f}{r['scrape_p99_ms']:>8.1f}"
              f"{r['cpu_per_scrape_ms']:>14.1f}{r['exposition_mb']:>9.2f}{r['series']:>9}"
              f"{r['resource_series']:>12}{r['steady_rss_mb']:>8.1f}")
    print(f"(CPU per cycle: idle CPU over {args.window:.0f} s minus the 'off' run's, per {INTERVAL_S} s cycle)")
    be.write_csv(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
