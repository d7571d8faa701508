#!/usr/bin/env bash
# XML-RPC decode throughput, Rust vs the official Python SDK's engine (architecture.md §9).
#
#   1. cargo bench --bench decode: criterion measures the Rust decoder and writes the body it
#      decodes (a 5,000-VM VM.get_all_records answer) to target/xenguard-bench/.
#   2. scripts/python/decode_bench.py decodes that same file with Python's xmlrpc.client (what
#      XenAPI.Session uses), measured the same way.
#
# Extra arguments go to the criterion benchmark (e.g. a filter, or -- --quick).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly BODY=target/xenguard-bench/vm_get_all_records_5000.xml

if [ ! -x .venv/bin/python ]; then
    scripts/setup.sh
fi

echo "==> cargo bench --bench decode $*"
cargo bench --bench decode "$@"

if [ ! -s "$BODY" ]; then
    echo "bench-decode.sh: the Rust benchmark did not write $BODY" >&2
    exit 1
fi

echo
echo "==> .venv/bin/python scripts/python/decode_bench.py $BODY"
.venv/bin/python scripts/python/decode_bench.py "$BODY"
