#!/usr/bin/env python3
"""Decode throughput of Python's xmlrpc.client on an XML-RPC response body.

The Python side of the XML-RPC decode benchmark (architecture.md §9). Run it with the body that the
Rust criterion benchmark (`cargo bench --bench decode`) writes, e.g.

    .venv/bin/python scripts/python/decode_bench.py target/xenguard-bench/vm_get_all_records_5000.xml

It is measured the same way as the criterion benchmark: the body is read into memory once, then
only the decode of the in-memory bytes is timed -- no I/O, no HTTP. Each timed run is one
`xmlrpc.client.loads(body)` including dropping its result (criterion's `Bencher::iter` also drops
the routine's output inside the timed loop). There is a warm-up first, then at least --min-runs
runs and at least --min-time seconds of runs; the figure is the median run. Python's cyclic GC
stays enabled, as it is for an SDK user.

Units: MB is 10^6 bytes. criterion prints "MB/s" for `Throughput::BytesDecimal` and "MiB/s"
(2^20) for `Throughput::Bytes`; compare like with like.

What the official SDK really uses (XenAPI 26.21.1, XenAPI/XenAPI.py): `XenAPI.Session` is a
subclass of `xmlrpc.client.ServerProxy` and keeps xmlrpc.client's stock `Transport` (or
`UDSTransport`, a `Transport` subclass that only changes the connection). A response is therefore
decoded by `xmlrpc.client.Transport.parse_response`: the pure-Python `Unmarshaller` driven by the
expat `ExpatParser` (CPython has no C "FastParser"), fed in 1024-byte chunks read from the HTTP
response; `ServerProxy` then unwraps the one-element params tuple and XenAPI's `_parse_result`
checks `Status` and returns `Value`. `loads` runs the same parser and Unmarshaller over the whole
body in one `feed`, so besides the headline figure this script also times that exact SDK path once.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
import xmlrpc.client
from importlib.metadata import version

try:
    import XenAPI.XenAPI as xenapi  # the SDK module itself (the package re-exports it)
except ImportError:  # pragma: no cover - message for a run outside the venv
    sys.exit("decode_bench: the XenAPI SDK is not importable; run scripts/setup.sh and use .venv/bin/python")

MB = 1_000_000


def num(x: float) -> str:
    """Three significant digits for small figures, one decimal for the rest."""
    return f"{x:.1f}" if x >= 10 else f"{x:.3g}"


def decode_loads(body: bytes) -> None:
    """One timed run: decode the whole body, then drop the result (like criterion's iter)."""
    result = xmlrpc.client.loads(body)
    del result


class _BodyResponse(io.BytesIO):
    """Stands in for the http.client.HTTPResponse that Transport.parse_response reads from."""

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return default


def decode_like_xenapi(body: bytes) -> object:
    """Decode exactly as XenAPI.Session does after the HTTP exchange (see the module docstring)."""
    transport = xmlrpc.client.Transport()  # what Session gets when no transport is passed
    transport.verbose = False  # set by Transport.single_request before it calls parse_response
    response = transport.parse_response(_BodyResponse(body))
    if len(response) == 1:  # ServerProxy.__request
        response = response[0]
    return xenapi._parse_result(response)


def run_timed(body: bytes, min_runs: int, min_time: float) -> list[float]:
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - started < min_time:
        t0 = time.perf_counter_ns()
        decode_loads(body)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body", help="file holding an XML-RPC methodResponse body")
    parser.add_argument("--warmup", type=float, default=1.0, metavar="SECONDS",
                        help="warm-up time before measuring (at least one run; default 1)")
    parser.add_argument("--min-runs", type=int, default=10, help="measured runs, at least (default 10)")
    parser.add_argument("--min-time", type=float, default=5.0, metavar="SECONDS",
                        help="measured time, at least (default 5)")
    args = parser.parse_args()

    try:
        with open(args.body, "rb") as f:
            body = f.read()
    except OSError as e:
        parser.error(f"cannot read the body: {e}")
    if not body:
        parser.error(f"{args.body} is empty")

    # Decode once outside the timing: fails early on a body that is not a methodResponse
    # (a <fault> raises xmlrpc.client.Fault) and gives the reference value for the SDK path.
    params, method = xmlrpc.client.loads(body)
    if method is not None or len(params) != 1:
        parser.error(f"{args.body} is not a methodResponse with one param")

    warmup_end = time.perf_counter() + args.warmup
    decode_loads(body)
    while time.perf_counter() < warmup_end:
        decode_loads(body)

    times = run_timed(body, max(args.min_runs, 1), args.min_time)
    median = statistics.median(times)
    size_mb = len(body) / MB
    print(f"decode_bench: CPython {platform.python_version()}, {args.body}, {len(body)} bytes, "
          f"runs min {num(min(times) * 1e3)} ms / max {num(max(times) * 1e3)} ms")
    print(f"python xmlrpc.client: {num(size_mb / median)} MB/s "
          f"(median of {len(times)} runs, {num(size_mb)} MB body, {num(median * 1e3)} ms per decode)")

    # The SDK's own path, once: chunked feed + ServerProxy unwrapping + XenAPI._parse_result.
    t0 = time.perf_counter_ns()
    value = decode_like_xenapi(body)
    elapsed = (time.perf_counter_ns() - t0) / 1e9
    expected = params[0]
    if isinstance(expected, dict) and "Status" in expected:
        expected = expected.get("Value")
    if value != expected:
        print("decode_bench: XenAPI path decoded a different value than xmlrpc.client.loads",
              file=sys.stderr)
        return 1
    print(f"python XenAPI {version('XenAPI')} path (Transport.parse_response, 1 KiB chunks, _parse_result): "
          f"{num(size_mb / elapsed)} MB/s (1 run, {num(elapsed * 1e3)} ms per decode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
