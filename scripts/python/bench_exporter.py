#!/usr/bin/env python3
"""Exporter benchmark: xenguard exporter vs a plain Python XenAPI SDK script (architecture.md §9).

Run it through scripts/bench-exporter.sh (builds the release binary first), or directly:

    .venv/bin/python scripts/python/bench_exporter.py target/release/xenguard [--scrapes N]

Everything runs on this machine, in one run, against one simulator:

1. `xenguard sim --hosts 64 --vms-per-host 80` (5,120 guests) on a free port P (hosts listen on
   127.0.0.11..74:P) and a free control port; ready when `GET /hosts` answers and host1 accepts
   TCP. The simulator's own "started in X s" line is reported.
2. `xenguard exporter` with a generated config for that pool (named `bench`). Initial sync time
   = from the exporter's process start until /metrics shows `xen_pool_up{pool="bench"} 1` and
   5,120 `xen_vm_info{` lines (polled every 10 ms). Peak RSS = VmHWM of /proc/PID/status, read
   after the sync and again at the end; VmRSS is the current figure.
3. N sequential scrapes of /metrics over one keep-alive connection (http.client), each timed
   with time.perf_counter (client side: request, render, transfer and read of the whole body).
   CPU per scrape = the exporter's utime+stime (/proc/PID/stat, all threads) over the loop / N.
   The exporter also works in the background (a probe round of every host every 10 s, the
   event.from long poll), so its idle CPU rate is measured first over max(loop time, one probe
   interval) and the per-scrape figure is also given with that rate subtracted.
4. The community-exporter approach, as the existing Python exporters and the recovery guides'
   scripts do it on every scrape: XenAPI.Session(url), login_with_password,
   host.get_all_records(), host_metrics.get_all_records(), VM.get_all_records(), three facts
   (hosts live, hosts not live, guests Running/Paused on a not-live host), logout. It runs in a
   separate child Python process (`--sdk-child`) so its memory is measured alone: the peak RSS
   increase is ru_maxrss after the runs minus ru_maxrss after `import XenAPI`. The same three
   facts are read from the exporter's /metrics (xen_host_live == 1, == 0, sum of
   xen_host_stuck_vms) and must agree.
5. Unless --no-dead-host: host5 is powered off through the control API, the simulated clock is
   advanced 610 s (past XAPI's 600 s liveness timeout), and once the exporter reports host5 not
   live the three-facts comparison is repeated, so the compared numbers are not all trivial.

Both child processes are stopped on every exit path (including Ctrl-C and SIGTERM) and the
temporary directory is removed. A child that dies early is reported with the tail of its stderr
and the benchmark exits non-zero; so does a disagreement between exporter and SDK. A missed
target is marked MISSED in the table but is not an error (this is a benchmark, not a test).

Units: MB = 10^6 bytes; /proc reports kB (1024 bytes), converted accordingly.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import http.client
import json
import math
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ports import free_ports  # scripts/python/ports.py, beside this file

HOSTS = 64
VMS_PER_HOST = 80
GUESTS = HOSTS * VMS_PER_HOST
POOL = "bench"
PASSWORD = "xenguard"
PROBE_INTERVAL = 10  # seconds, as written to the exporter's config
DEAD_HOST = 5  # host5 = 127.0.0.15
CLOCK_ADVANCE = 610  # seconds; XAPI marks a host dead after 600 s without heartbeat

TARGET_SCRAPE_P50_MS = 10.0
TARGET_SYNC_S = 2.0
TARGET_RSS_MB = 100.0

CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BenchError(Exception):
    """A failure that ends the benchmark with a message (exit status 1)."""


# --- processes --------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if this script dies without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Child:
    """A child process with stdout and stderr in files of the temporary directory."""

    def __init__(self, name: str, argv: list[str], workdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "NO_COLOR": "1"},
                stdout=out,
                stderr=err,
                start_new_session=True,  # Ctrl-C reaches us; we stop the children ourselves
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.stderr_path, self.stdout_path):
            try:
                text = ANSI.sub("", path.read_text(errors="replace")).splitlines()[-lines:]
            except OSError:
                continue
            if text:
                parts.append(f"  last lines of {path.name}:\n" + "\n".join("  | " + t for t in text))
        return "\n".join(parts) or "  (no output)"

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise BenchError(
                f"{self.name} exited early with status {code}: {' '.join(self.argv)}\n{self.tail()}"
            )

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of all the process's threads, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of /proc/PID/status, in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024 / MB
    return out


# --- HTTP helpers -----------------------------------------------------------------------------


def http_get(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_post_json(host: str, port: int, path: str, body: object) -> object:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise BenchError(f"POST {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- the three facts --------------------------------------------------------------------------


def exporter_facts(text: str) -> dict[str, int]:
    """hosts live, hosts not live, stuck guests, as the exporter's exposition states them."""
    live = not_live = stuck = 0
    for line in text.splitlines():
        if line.startswith("xen_host_live{"):
            value = float(line.rsplit(" ", 1)[1])
            if value == 1:
                live += 1
            elif value == 0:
                not_live += 1
        elif line.startswith("xen_host_stuck_vms{"):
            stuck += int(float(line.rsplit(" ", 1)[1]))
    return {"live": live, "not_live": not_live, "stuck": stuck}


def sdk_facts(hosts: dict, host_metrics: dict, vms: dict) -> dict[str, int]:
    """The same facts from the SDK's records, as a community script computes them."""
    live_of = {}
    for ref, host in hosts.items():
        metrics = host_metrics.get(host["metrics"])
        live_of[ref] = None if metrics is None else bool(metrics["live"])
    stuck = sum(
        1
        for vm in vms.values()
        if not vm["is_a_template"]
        and not vm["is_a_snapshot"]
        and not vm["is_control_domain"]
        and vm["power_state"] in ("Running", "Paused")
        and live_of.get(vm["resident_on"]) is False
    )
    return {
        "live": sum(1 for v in live_of.values() if v is True),
        "not_live": sum(1 for v in live_of.values() if v is False),
        "stuck": stuck,
    }


def fmt_facts(f: dict[str, int]) -> str:
    return f"live {f['live']}, not live {f['not_live']}, stuck VMs {f['stuck']}"


# --- the SDK child ----------------------------------------------------------------------------


def sdk_child(url: str, runs: int) -> int:
    """`--sdk-child`: runs the community-style fetch `runs` times; prints one JSON line."""
    import XenAPI  # noqa: PLC0415 - imported here so the parent never loads it

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    facts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session = XenAPI.Session(url)
        session.xenapi.login_with_password("root", PASSWORD, "1.0", "xenguard-bench-sdk")
        try:
            hosts = session.xenapi.host.get_all_records()
            host_metrics = session.xenapi.host_metrics.get_all_records()
            vms = session.xenapi.VM.get_all_records()
            facts.append(sdk_facts(hosts, host_metrics, vms))
        finally:
            session.xenapi.session.logout()
        del hosts, host_metrics, vms, session
        times.append(time.perf_counter() - t0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "times": times,
                "facts": facts,
                "baseline_mb": baseline_kb * 1024 / MB,
                "peak_mb": peak_kb * 1024 / MB,
                "xenapi_version": _xenapi_version(),
            }
        )
    )
    return 0


def _xenapi_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("XenAPI")
    except PackageNotFoundError:
        return "?"


def run_sdk(url: str, runs: int, workdir: Path) -> dict:
    """Runs the SDK child process and returns its JSON answer."""
    child = Child(
        "sdk",
        [sys.executable, os.path.abspath(__file__), "--sdk-child", "--url", url, "--runs", str(runs)],
        workdir,
    )
    try:
        code = child.proc.wait(timeout=600)
    finally:
        child.stop()
    if code != 0:
        raise BenchError(f"the XenAPI SDK child exited with status {code}\n{child.tail()}")
    try:
        return json.loads(child.stdout_path.read_text().strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise BenchError(f"the XenAPI SDK child printed no JSON result ({e})\n{child.tail()}") from e


# --- the benchmark ----------------------------------------------------------------------------


@contextlib.contextmanager
def children_in(prefix: str):
    """A temporary directory and a list for the child processes started there; every child is
    stopped however the block ends. SIGTERM and SIGHUP end the run as Ctrl-C does."""

    def terminate(signum, _frame):
        print(f"{prefix.strip('-')}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            yield Path(tmp), children
        finally:
            for child in reversed(children):
                child.stop()


def write_csv(path: str, rows: list[dict]) -> None:
    """The rows as CSV (columns: every key of any row, sorted), and a line saying where."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    print(f"(figures written to {path})")


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def wait_until(what: str, deadline_s: float, check, children: list[Child], interval: float = 0.05):
    """Calls check() until it returns a true value; fails after deadline_s seconds."""
    end = time.perf_counter() + deadline_s
    while True:
        for c in children:
            c.check_alive()
        result = check()
        if result:
            return result
        if time.perf_counter() > end:
            detail = "\n".join(c.tail(15) for c in children)
            raise BenchError(f"timed out after {deadline_s:.0f} s waiting for {what}\n{detail}")
        time.sleep(interval)


def write_config(workdir: Path, port: int, listen_port: int, addresses: list[str] | None = None) -> Path:
    """The exporter's configuration for one simulated pool (default: the 64 hosts here)."""
    password = workdir / "password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    if addresses is None:
        addresses = [f"127.0.0.{10 + i}" for i in range(1, HOSTS + 1)]
    hosts = "".join(f"      - {a}\n" for a in addresses)
    config = workdir / f"xenguard-{len(addresses)}.yml"
    config.write_text(
        "# Generated by scripts/python/bench_exporter.py\n"
        "pools:\n"
        f"  - name: {POOL}\n"
        "    hosts:\n"
        f"{hosts}"
        "    scheme: http\n"
        f"    port: {port}\n"
        "    username: root\n"
        f"    password_file: {password}\n"
        "exporter:\n"
        f"  listen: 127.0.0.1:{listen_port}\n"
        f"  probe_interval_seconds: {PROBE_INTERVAL}\n"
        "  probe_timeout_seconds: 2\n"
        "  event_timeout_seconds: 30\n"
    )
    return config


def scrape_text(port: int) -> str | None:
    """One /metrics scrape on a new connection; None while the exporter does not answer."""
    try:
        status, body = http_get("127.0.0.1", port, "/metrics", timeout=10)
    except OSError:
        return None
    return body.decode() if status == 200 else None


def bench(binary: str, args: argparse.Namespace, workdir: Path, children: list[Child]) -> int:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench: {os.cpu_count()} CPUs, load average {load} before starting")
    port, control_port, listen_port = free_ports(3)

    # 1. The simulator.
    sim = Child(
        "sim",
        [binary, "sim", "--hosts", str(HOSTS), "--vms-per-host", str(VMS_PER_HOST),
         "--port", str(port), "--control", f"127.0.0.1:{control_port}"],
        workdir,
    )
    children.append(sim)

    def sim_ready():
        try:
            status, body = http_get("127.0.0.1", control_port, "/hosts", timeout=2)
        except OSError:
            return False
        return status == 200 and len(json.loads(body)) == HOSTS and tcp_accepts("127.0.0.11", port)

    wait_until("the simulator's control API and host1", 60, sim_ready, [sim], 0.02)
    sim_ready_s = time.perf_counter() - sim.started
    match = re.search(r"started in ([0-9.]+) s", sim.stdout_path.read_text())
    sim_start = match.group(1) + " s" if match else f"~{sim_ready_s:.2f} s (no start line seen)"
    print(f"bench: simulator up ({HOSTS} hosts x {VMS_PER_HOST} guests, its own start time {sim_start}, "
          f"ready to us after {sim_ready_s:.2f} s), hosts on 127.0.0.11..{10 + HOSTS}:{port}")

    # 2. The exporter and its initial sync.
    config = write_config(workdir, port, listen_port)
    exporter = Child("exporter", [binary, "exporter", "--config", str(config)], workdir)
    children.append(exporter)
    t_listen = None
    t_up = None
    up_line = f'xen_pool_up{{pool="{POOL}"}} 1'
    deadline = exporter.started + 120
    while True:
        exporter.check_alive()
        sim.check_alive()
        text = scrape_text(listen_port)
        now = time.perf_counter()
        if text is not None:
            if t_listen is None:
                t_listen = now
            if up_line in text:
                if t_up is None:
                    t_up = now
                vm_lines = text.count("\nxen_vm_info{")
                if vm_lines == GUESTS:
                    t_sync = now
                    break
        # The watcher logs this when a sync attempt fails; it then retries with a backoff, so
        # anything measured afterwards would not be the initial sync any more.
        if "Pool master unavailable" in exporter.stderr_path.read_text(errors="replace"):
            raise BenchError(
                f"the exporter's first sync attempt failed after {now - exporter.started:.2f} s "
                f"(pool up: {t_up is not None})\n{exporter.tail(8)}"
            )
        if now > deadline:
            raise BenchError(
                "the exporter did not report the full pool within 120 s "
                f"(listening: {t_listen is not None}, pool up: {t_up is not None})\n{exporter.tail()}"
            )
        time.sleep(0.01)
    sync_s = t_sync - exporter.started
    mem_sync = memory_mb(exporter.pid)
    cpu_sync = cpu_seconds(exporter.pid)
    print(f"bench: exporter synced {GUESTS} guests in {sync_s:.3f} s "
          f"(answering /metrics after {t_listen - exporter.started:.3f} s), "
          f"CPU used so far {cpu_sync:.2f} s, VmHWM {mem_sync['VmHWM']:.1f} MB")

    # Every host probed at least once (the prober starts with the exporter, in parallel with
    # the sync): without it xen_host_reachable is absent and the facts could differ.
    def probed():
        text = scrape_text(listen_port)
        if text is None:
            return None
        reachable = [line for line in text.splitlines() if line.startswith("xen_host_reachable{")]
        return text if len(reachable) == HOSTS else None

    wait_until("the first probe round of every host", 3 * PROBE_INTERVAL, probed, [sim, exporter], 0.05)
    t_probed = time.perf_counter() - exporter.started
    print(f"bench: first probe round of all {HOSTS} hosts visible after {t_probed:.2f} s")

    # 3. Scrapes.
    n = args.scrapes
    conn = http.client.HTTPConnection("127.0.0.1", listen_port, timeout=30)

    def scrape() -> bytes:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchError(f"/metrics answered {response.status}")
        return body

    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        scrape()
        warm.append(time.perf_counter() - t0)
    idle_window = max(statistics.median(warm) * n, float(PROBE_INTERVAL))
    print(f"bench: measuring the exporter's idle CPU for {idle_window:.1f} s, then {n} scrapes")
    c0, t0 = cpu_seconds(exporter.pid), time.perf_counter()
    time.sleep(idle_window)
    c1, t1 = cpu_seconds(exporter.pid), time.perf_counter()
    idle_rate = (c1 - c0) / (t1 - t0)  # CPU seconds per second

    latencies = []
    render_times = []
    body = b""
    c0, t0 = cpu_seconds(exporter.pid), time.perf_counter()
    for _ in range(n):
        s = time.perf_counter()
        body = scrape()
        latencies.append(time.perf_counter() - s)
        m = re.search(rb"\nxenguard_last_scrape_duration_seconds ([0-9.eE+-]+)\n", body)
        if m:
            render_times.append(float(m.group(1)))  # the previous scrape's render time
    c1, t1 = cpu_seconds(exporter.pid), time.perf_counter()
    conn.close()
    exporter.check_alive()
    loop_s = t1 - t0
    cpu_raw_ms = (c1 - c0) / n * 1e3
    cpu_corr_ms = max(0.0, (c1 - c0) - idle_rate * loop_s) / n * 1e3
    text = body.decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    lat_ms = [x * 1e3 for x in latencies]
    scrape_stats = {q: pct(lat_ms, q) for q in (0.5, 0.9, 0.99)}
    print(f"bench: {n} scrapes in {loop_s:.2f} s; latency p50 {scrape_stats[0.5]:.2f} / "
          f"p90 {scrape_stats[0.9]:.2f} / p99 {scrape_stats[0.99]:.2f} / max {max(lat_ms):.2f} ms; "
          f"server-side render p50 {statistics.median(render_times) * 1e3:.2f} ms")

    # 4. The SDK comparison, healthy pool.
    url = f"http://127.0.0.11:{port}"
    print(f"bench: Python XenAPI SDK, {args.sdk_runs} runs in a child process against {url}")
    sdk = run_sdk(url, args.sdk_runs, workdir)
    failures = []
    comparisons = []

    def compare(label: str, sdk_result: dict) -> None:
        text = scrape_text(listen_port) or ""
        ours = exporter_facts(text)
        theirs = sdk_result["facts"]
        if any(f != theirs[0] for f in theirs):
            failures.append(f"{label}: the SDK runs disagree among themselves: {theirs}")
        agree = ours == theirs[-1]
        comparisons.append((label, ours, agree))
        print(f"bench: facts {label}: exporter {fmt_facts(ours)}; SDK {fmt_facts(theirs[-1])}"
              f" -> {'agree' if agree else 'DISAGREE'}")
        if not agree:
            failures.append(f"{label}: exporter {ours} != SDK {theirs[-1]}")

    compare("healthy pool", sdk)

    # 5. A dead host, so the facts are not trivial.
    dead_note = None
    if args.dead_host:
        victim = f"host{DEAD_HOST}"
        print(f"bench: powering off {victim}, advancing the simulated clock {CLOCK_ADVANCE} s")
        http_post_json("127.0.0.1", control_port, f"/hosts/{victim}/power", {"state": "off"})
        t_adv = time.perf_counter()
        http_post_json("127.0.0.1", control_port, "/clock/advance", {"seconds": CLOCK_ADVANCE})

        def shows_dead():
            text = scrape_text(listen_port)
            if text is None:
                return None
            facts = exporter_facts(text)
            return facts if facts["not_live"] >= 1 and facts["stuck"] >= VMS_PER_HOST else None

        wait_until(f"the exporter to report {victim} not live", 60, shows_dead, [sim, exporter], 0.01)
        seen_s = time.perf_counter() - t_adv
        dead_note = f"{victim} dead: exporter showed it {seen_s * 1e3:.0f} ms after the clock advance"
        print(f"bench: {dead_note}")
        compare(f"{victim} dead", run_sdk(url, 1, workdir))

    mem_end = memory_mb(exporter.pid)
    exporter.check_alive()
    sim.check_alive()

    # 6. The table.
    def mark(ok: bool) -> str:
        return "" if ok else "  MISSED"

    peak_rss = max(mem_sync["VmHWM"], mem_end["VmHWM"])
    sdk_med = statistics.median(sdk["times"])
    sdk_inc = sdk["peak_mb"] - sdk["baseline_mb"]
    sim_start_s = match.group(1) if match else f"{sim_ready_s:.2f}"
    print()
    def row(label: str, value: str, note: str = "") -> None:
        print(f"  {label:<24}{value:<16}{note}".rstrip())

    print(f"xenguard exporter, {HOSTS} hosts / {GUESTS} VMs (simulator start {sim_start_s} s)")
    row("initial sync", f"{sync_s:.2f} s", f"(target < {TARGET_SYNC_S:g} s){mark(sync_s < TARGET_SYNC_S)}")
    row("peak RSS", f"{peak_rss:.1f} MB",
        f"(target < {TARGET_RSS_MB:g} MB){mark(peak_rss < TARGET_RSS_MB)}; "
        f"VmHWM after sync {mem_sync['VmHWM']:.1f} MB, VmRSS at end {mem_end['VmRSS']:.1f} MB")
    row("scrape p50 / p99", f"{scrape_stats[0.5]:.1f} / {scrape_stats[0.99]:.1f} ms",
        f"(target p50 < {TARGET_SCRAPE_P50_MS:g} ms){mark(scrape_stats[0.5] < TARGET_SCRAPE_P50_MS)}, "
        f"{n} scrapes; p90 {scrape_stats[0.9]:.1f}, max {max(lat_ms):.1f} ms; "
        f"server-side render p50 {statistics.median(render_times) * 1e3:.1f} ms")
    row("exposition", f"{len(body) / MB:.2f} MB, {series} series")
    row("CPU per scrape", f"{cpu_raw_ms:.1f} ms",
        f"(idle-corrected {cpu_corr_ms:.1f} ms; idle {idle_rate * 1e3:.1f} ms CPU per s)")
    print(f"Python XenAPI SDK {sdk['xenapi_version']}, same three facts per run")
    row("per run median / max", f"{sdk_med:.2f} / {max(sdk['times']):.2f} s", f"({len(sdk['times'])} runs)")
    row("peak RSS increase", f"{sdk_inc:.0f} MB", f"(child process peak {sdk['peak_mb']:.0f} MB)")
    for label, ours, agree in comparisons:
        verdict = "exporter == SDK" if agree else "exporter != SDK"
        print(f"facts, {label} ({verdict}): {fmt_facts(ours)}")
    if dead_note:
        print(f"({dead_note})")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"(CPython {platform.python_version()}, {os.cpu_count()} CPUs, load average {load} at the end; "
          f"scrape latency as seen by this Python client over one keep-alive connection)")

    if failures:
        print("\nbench_exporter: FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", help="the xenguard binary (target/release/xenguard)")
    parser.add_argument("--scrapes", type=int, default=200, help="timed scrapes (default 200)")
    parser.add_argument("--sdk-runs", type=int, default=5, help="timed SDK runs (default 5)")
    parser.add_argument("--dead-host", dest="dead_host", action="store_true", default=True,
                        help=f"also compare with host{DEAD_HOST} dead (the default)")
    parser.add_argument("--no-dead-host", dest="dead_host", action="store_false",
                        help="skip the dead-host comparison")
    parser.add_argument("--sdk-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.sdk_child:
        return sdk_child(args.url, args.runs)
    if not args.binary:
        parser.error("the xenguard binary is required")
    if args.scrapes < 1 or args.sdk_runs < 1:
        parser.error("--scrapes and --sdk-runs must be at least 1")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable file")
    try:
        import XenAPI  # noqa: F401, PLC0415 - fail early, before starting anything
    except ImportError:
        parser.error("the XenAPI SDK is not importable; run scripts/setup.sh and use .venv/bin/python")

    try:
        with children_in("xenguard-bench-") as (tmp, children):
            return bench(binary, args, tmp, children)
    except BenchError as e:
        print(f"bench_exporter: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_exporter: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
