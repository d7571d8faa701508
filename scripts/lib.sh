# shellcheck shell=bash
# Shared shell helpers for scripts/*.sh and scripts/checks/*.sh: source it, do not run it.
# Sourcing it needs nothing but bash, since setup.sh sources it before anything is installed;
# now_us and seconds_since are bash only (EPOCHREALTIME), free_ports needs Python (call it after
# setup.sh, never from it).

# Where this library lives (scripts/), for the Python helpers beside it.
XENGUARD_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# now_us -> microseconds since the epoch.
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# seconds_since START_US -> "0.4" below 10 s, else whole seconds ("23").
seconds_since() {
    local ds=$((($(now_us) - $1) / 100000))
    if ((ds < 100)); then
        printf '%d.%d' $((ds / 10)) $((ds % 10))
    else
        printf '%d' $(((ds + 5) / 10))
    fi
}

# free_ports N -> N distinct TCP ports, free on every local address now, space-separated
# (scripts/python/ports.py, with $XENGUARD_PYTHON, else python3).
free_ports() { "${XENGUARD_PYTHON:-python3}" "$XENGUARD_SCRIPTS/python/ports.py" "$1"; }
