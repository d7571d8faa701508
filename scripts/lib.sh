# Shared shell helpers for scripts/*.sh and scripts/checks/*.sh: source it, do not run it.
# Bash only (EPOCHREALTIME), no other dependency: setup.sh uses it before anything is installed.

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
