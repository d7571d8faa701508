#!/usr/bin/env python3
"""Exporter at scale: how its cost grows with the pool, what it costs the pool master, and what
a hostile host can make it hold (docs/architecture.md §9). Run through
`scripts/bench-exporter.sh --scale`, or directly:

    .venv/bin/python scripts/python/bench_scale.py target/release/xenguard [--sizes 16,64,256]

For each size H (hosts, 80 guests each), one simulator and one exporter:

1. Initial sync: exporter start until /metrics shows the pool up and every guest.
2. Peak RSS (VmHWM) after the sync, and steady RSS (VmRSS) after the scrapes.
3. 100 sequential scrapes over one keep-alive connection (p50, p99, exposition size, CPU per
   scrape), then two scrapers at once, 100 scrapes each (the usual Prometheus HA pair): p99.

Then, at 64 hosts (the largest real pool), the load on the master with churn (one guest shut
down and one started every second, through the XenAPI SDK): the simulator counts the calls and
answer bytes each host serves. The churn's own cost is calibrated first (before the exporter
starts); the exporter's cost is the master's count over a 60 s window minus the churn's. The
polling exporter's cost is one round of what community exporters do every 15 s (login,
host / host_metrics / VM get_all_records, logout), measured the same way, times 4 per minute.

Last, a hostile host: a 3-host pool whose master answers `event.from` with a 200 MB string
(sent as generated, chunked). The exporter's VmHWM before and after the answer gives
"hostile 200 MB answer: peak RSS +N MB".

Writes the figures as CSV to --csv (default: target/bench-scale.csv).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path

import bench_exporter as be  # beside this file
from ports import free_ports

VMS_PER_HOST = 80
POOL = "bench"
MASTER_LOAD_HOSTS = 64
WINDOW_S = 60
POLL_INTERVAL_S = 15
HOSTILE_BYTES = 200_000_000


def address(i: int) -> str:
    """Host i's address (0-based), as the simulator numbers them: 200 per third octet."""
    return f"127.0.{i // 200}.{11 + i % 200}"


class Pool:
    """A simulator and, once started, an exporter watching it."""

    def __init__(self, binary: str, hosts: int, vms: int, workdir: Path, children: list) -> None:
        self.binary, self.hosts, self.vms, self.workdir, self.children = binary, hosts, vms, workdir, children
        self.port, self.control, self.listen = free_ports(3)
        self.sim = be.Child(
            f"sim-{hosts}",
            [binary, "sim", "--hosts", str(hosts), "--vms-per-host", str(vms), "--port", str(self.port),
             "--control", f"127.0.0.1:{self.control}"],
            workdir,
        )
        children.append(self.sim)
        be.wait_until("the simulator", 120, self.sim_ready, [self.sim], 0.05)
        self.exporter = None

    def sim_ready(self) -> bool:
        try:
            status, body = be.http_get("127.0.0.1", self.control, "/hosts", timeout=5)
        except OSError:
            return False
        return status == 200 and len(json.loads(body)) == self.hosts and be.tcp_accepts("127.0.0.11", self.port)

    def served(self, host: int = 0) -> tuple[int, int]:
        """(calls, bytes) host `host` has answered so far."""
        _, body = be.http_get("127.0.0.1", self.control, "/hosts", timeout=10)
        view = json.loads(body)[host]
        return view["calls_served"], view["bytes_served"]

    def start_exporter(self) -> float:
        """Starts the exporter; returns the initial sync time in seconds."""
        config = be.write_config(self.workdir, self.port, self.listen, [address(i) for i in range(self.hosts)])
        self.exporter = be.Child(f"exporter-{self.hosts}", [self.binary, "exporter", "--config", str(config)],
                                 self.workdir)
        self.children.append(self.exporter)
        up = f'xen_pool_up{{pool="{POOL}"}} 1'
        guests = self.hosts * self.vms

        def synced():
            text = be.scrape_text(self.listen)
            return text is not None and up in text and text.count("\nxen_vm_info{") == guests

        be.wait_until("the initial sync", 180, synced, [self.sim, self.exporter], 0.01)
        return time.perf_counter() - self.exporter.started

    def metric(self, prefix: str) -> float:
        text = be.scrape_text(self.listen) or ""
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def scrapes(port: int, n: int) -> tuple[list[float], int]:
    """n sequential scrapes over one keep-alive connection: latencies (ms), last body size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        size = len(response.read())
        latencies.append((time.perf_counter() - t0) * 1e3)
    conn.close()
    return latencies, size


def measure_size(binary: str, hosts: int, workdir: Path, children: list) -> dict:
    pool = Pool(binary, hosts, VMS_PER_HOST, workdir, children)
    calibration = calibrate(pool) if hosts == MASTER_LOAD_HOSTS else None
    sync_s = pool.start_exporter()
    peak_after_sync = be.memory_mb(pool.exporter.pid)["VmHWM"]
    scrapes(pool.listen, 5)  # warm
    c0 = be.cpu_seconds(pool.exporter.pid)
    alone, size = scrapes(pool.listen, 100)
    cpu_ms = (be.cpu_seconds(pool.exporter.pid) - c0) / 100 * 1e3
    pair: list[list[float]] = [[], []]

    def scraper(k: int) -> None:
        pair[k] = scrapes(pool.listen, 100)[0]

    threads = [threading.Thread(target=scraper, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    both = pair[0] + pair[1]
    memory = be.memory_mb(pool.exporter.pid)
    text = be.scrape_text(pool.listen) or ""
    result = {
        "hosts": hosts,
        "vms": hosts * VMS_PER_HOST,
        "sync_s": sync_s,
        "peak_rss_mb": max(peak_after_sync, memory["VmHWM"]),
        "steady_rss_mb": memory["VmRSS"],
        "scrape_p50_ms": be.pct(alone, 0.5),
        "scrape_p99_ms": be.pct(alone, 0.99),
        "scrape_p99_two_scrapers_ms": be.pct(both, 0.99),
        "exposition_mb": size / be.MB,
        "series": sum(1 for line in text.splitlines() if line and not line.startswith("#")),
        "cpu_per_scrape_ms": cpu_ms,
    }
    if calibration:
        result.update(master_load(pool, calibration))
    pool.exporter.stop()
    pool.sim.stop()
    return result


class Churn:
    """One guest after another shut down and started again, through the XenAPI SDK."""

    def __init__(self, url: str) -> None:
        import XenAPI  # noqa: PLC0415

        self.session = XenAPI.Session(url)
        self.session.xenapi.login_with_password("root", be.PASSWORD, "1.0", "xenguard-bench-churn")
        self.vms = [ref for ref, r in self.session.xenapi.VM.get_all_records().items()
                    if not r["is_control_domain"] and r["power_state"] == "Running"]
        self.steps = 0

    def step(self) -> None:
        vm = self.vms[self.steps % len(self.vms)]
        self.session.xenapi.VM.hard_shutdown(vm)
        self.session.xenapi.VM.start(vm, False, False)
        self.steps += 1


def poll_round(url: str) -> None:
    """What a polling exporter asks the master on every scrape."""
    import XenAPI  # noqa: PLC0415

    s = XenAPI.Session(url)
    s.xenapi.login_with_password("root", be.PASSWORD, "1.0", "xenguard-bench-poller")
    s.xenapi.host.get_all_records()
    s.xenapi.host_metrics.get_all_records()
    s.xenapi.VM.get_all_records()
    s.xenapi.session.logout()


def calibrate(pool: Pool) -> dict:
    """Before the exporter starts (nobody else talks to the master): what one churn step and
    one polling round cost the master."""
    url = f"http://127.0.0.11:{pool.port}"
    churn = Churn(url)
    before = pool.served()
    for _ in range(5):
        churn.step()
    after = pool.served()
    step_calls, step_bytes = (after[0] - before[0]) / 5, (after[1] - before[1]) / 5
    before = pool.served()
    poll_round(url)
    after = pool.served()
    return {"churn": churn, "step": (step_calls, step_bytes), "poll": (after[0] - before[0], after[1] - before[1])}


def master_load(pool: Pool, calibration: dict) -> dict:
    """The exporter's calls and bytes per minute on the master over a window with churn."""
    churn = calibration["churn"]
    step_calls, step_bytes = calibration["step"]
    before = pool.served()
    events_before = pool.metric('xenguard_xapi_calls_total{method="event.from"')
    steps_before = churn.steps
    end = time.perf_counter() + WINDOW_S
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        churn.step()
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))
    after = pool.served()
    events = pool.metric('xenguard_xapi_calls_total{method="event.from"') - events_before
    steps = churn.steps - steps_before
    per_min = 60.0 / WINDOW_S
    rounds = 60.0 / POLL_INTERVAL_S
    return {
        "churn_steps_per_min": steps * per_min,
        "master_calls_per_min": (after[0] - before[0] - steps * step_calls) * per_min,
        "master_bytes_per_min": (after[1] - before[1] - steps * step_bytes) * per_min,
        "event_from_per_min": events * per_min,
        "poller_calls_per_min": calibration["poll"][0] * rounds,
        "poller_bytes_per_min": calibration["poll"][1] * rounds,
    }


def hostile(binary: str, workdir: Path, children: list) -> dict:
    pool = Pool(binary, 3, 2, workdir, children)
    pool.start_exporter()
    time.sleep(2)
    before = be.memory_mb(pool.exporter.pid)["VmHWM"]
    be.http_post_json("127.0.0.1", pool.control, "/hosts/host1/faults",
                      {"fault": {"kind": "oversize", "bytes": HOSTILE_BYTES}, "methods": ["event.from"]})
    series = f'xenguard_xapi_calls_total{{method="event.from",outcome="decode",pool="{POOL}"}}'
    be.wait_until("three refused 200 MB answers", 120, lambda: pool.metric(series) >= 3,
                  [pool.sim, pool.exporter], 0.2)
    after = be.memory_mb(pool.exporter.pid)["VmHWM"]
    pool.exporter.check_alive()
    up = pool.metric(f'xen_pool_up{{pool="{POOL}"}}')
    pool.exporter.stop()
    pool.sim.stop()
    return {"hostile_rss_before_mb": before, "hostile_rss_after_mb": after, "hostile_up": up}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--sizes", default="16,64,256", help="host counts (default 16,64,256)")
    parser.add_argument("--csv", default="target/bench-scale.csv")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    sizes = [int(s) for s in args.sizes.split(",")]

    rows = []
    try:
        with be.children_in("xenguard-scale-") as (tmp, children):
            for hosts in sizes:
                print(f"bench-scale: {hosts} hosts / {hosts * VMS_PER_HOST} VMs ...", flush=True)
                rows.append(measure_size(binary, hosts, tmp, children))
            print("bench-scale: hostile host ...", flush=True)
            bad = hostile(binary, tmp, children)
    except be.BenchError as e:
        print(f"bench_scale: {e}", file=sys.stderr)
        return 1

    print()
    print(f"{'hosts/VMs':<14}{'sync s':>8}{'peak MB':>9}{'steady MB':>10}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'p99 x2 ms':>10}{'expo MB':>9}{'series':>9}{'CPU/scrape ms':>15}")
    for r in rows:
        print(f"{r['hosts']}/{r['vms']:<9}{r['sync_s']:>8.2f}{r['peak_rss_mb']:>9.1f}{r['steady_rss_mb']:>10.1f}"
              f"{r['scrape_p50_ms']:>8.1f}{r['scrape_p99_ms']:>8.1f}{r['scrape_p99_two_scrapers_ms']:>10.1f}"
              f"{r['exposition_mb']:>9.2f}{r['series']:>9}{r['cpu_per_scrape_ms']:>15.1f}")
    for r in rows:
        if "master_calls_per_min" in r:
            calls_ratio = r["poller_calls_per_min"] / max(1e-9, r["master_calls_per_min"])
            bytes_ratio = r["poller_bytes_per_min"] / max(1e-9, r["master_bytes_per_min"])
            print(f"\nmaster load at {r['hosts']} hosts, churn {r['churn_steps_per_min']:.0f} guest "
                  f"stop+start per minute:")
            print(f"  xenguard exporter: {r['master_calls_per_min']:.0f} calls/min "
                  f"({r['event_from_per_min']:.0f} of them event.from, the rest probes), "
                  f"{r['master_bytes_per_min'] / 1e3:.0f} kB/min")
            print(f"  polling exporter (every {POLL_INTERVAL_S} s): {r['poller_calls_per_min']:.0f} calls/min, "
                  f"{r['poller_bytes_per_min'] / 1e3:.0f} kB/min")
            print(f"  polling / xenguard: {calls_ratio:.1f}x calls, {bytes_ratio:.1f}x bytes")
    print(f"\nhostile 200 MB answer: peak RSS +{bad['hostile_rss_after_mb'] - bad['hostile_rss_before_mb']:.1f} MB "
          f"({bad['hostile_rss_before_mb']:.1f} -> {bad['hostile_rss_after_mb']:.1f} MB VmHWM), "
          f"pool up afterwards: {bad['hostile_up']:g}")
    be.write_csv(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
