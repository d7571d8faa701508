#!/usr/bin/env bash
# The project's test command (README; .ci/run calls exactly this). architecture.md §10.
#
# Installs what the suite needs (scripts/setup.sh), then runs, stopping at the first failure:
#   cargo fmt --all -- --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --all-targets
#   cargo test --doc
#   every scripts/checks/*.sh, in sorted order (see scripts/checks/README.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUN_START=$(now_us)
SUMMARY=()

# stage NAME CMD... — runs one stage under a header; a failure ends the run, naming the stage.
stage() {
    local name=$1 start rc=0
    shift
    printf '\n==> %s: %s\n' "$name" "$*"
    start=$(now_us)
    "$@" || rc=$?
    local took
    took=$(seconds_since "$start")
    if ((rc != 0)); then
        printf '\ntest.sh: FAILED at stage "%s" (exit status %d, after %s s): %s\n' "$name" "$rc" "$took" "$*" >&2
        exit "$rc"
    fi
    printf '==> %s: ok (%s s)\n' "$name" "$took"
    SUMMARY+=("$(printf '%6s s  %s' "$took" "$name")")
}

stage setup scripts/setup.sh

# The tools setup.sh installed, for the stages below and the checks.
export PATH="$PWD/.venv/bin:$PWD/.tools/node_modules/.bin:$PATH:/usr/sbin:/sbin"
export PYTHONWARNINGS=ignore # fence agents (Debian's python3) warn about the 'pipes' module otherwise
export XENGUARD_PYTHON="$PWD/.venv/bin/python"

stage fmt cargo fmt --all -- --check
stage clippy cargo clippy --all-targets -- -D warnings
stage test cargo test --all-targets
stage doctest cargo test --doc

# Extra checks (promtool, chart, dashboards, ...): every scripts/checks/*.sh is one stage.
if [ -d scripts/checks ]; then
    mapfile -t checks < <(find scripts/checks -maxdepth 1 -type f -name '*.sh' | LC_ALL=C sort)
    for check in "${checks[@]}"; do
        if [ ! -x "$check" ]; then
            printf '\ntest.sh: FAILED: %s is not executable (every scripts/checks/*.sh is a check; chmod +x it)\n' \
                "$check" >&2
            exit 1
        fi
        stage "check $(basename "$check" .sh)" "$check"
    done
fi

printf '\ntest.sh: stage times\n'
printf '%s\n' "${SUMMARY[@]}"
printf 'test.sh: all stages passed in %s s\n' "$(seconds_since "$RUN_START")"
