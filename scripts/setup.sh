#!/usr/bin/env bash
# Installs everything the test suite needs (architecture.md §10) on a fresh Debian bookworm machine,
# run as root (CI: clean checkout, fresh machine). Idempotent; a second run takes about a second.
#
#   1. Debian packages: prometheus + promtool, prometheus-alertmanager, openipmi (ipmi_sim),
#      ipmitool, fence-agents (fence_ipmilan, fence_xenapi), yamllint, curl — skipped when all
#      their commands are already on PATH (python3-venv / nodejs+npm too, only if they are
#      missing).
#   2. A Python virtual env in .venv/ with scripts/python/requirements.txt (stamp-skipped).
#   3. npm tools in .tools/: @grafana/schema + typescript, @kubernetes-models/prometheus-operator
#      (the chart check's ServiceMonitor / PrometheusRule validators), exact versions
#      (stamp-skipped).
#   4. The rustfmt and clippy components.
#
# Anything that fails stops the run with the step's name and the tail of its log
# (.tools/logs/setup-*.log). Nothing is skipped silently.
#
# Environment: XENGUARD_BASE_PYTHON — interpreter to build .venv from (default: python3 on PATH,
# falling back to Debian's /usr/bin/python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly APT_PACKAGES=(prometheus prometheus-alertmanager openipmi ipmitool fence-agents yamllint curl)
readonly APT_COMMANDS=(promtool prometheus-alertmanager ipmi_sim ipmitool fence_ipmilan fence_xenapi yamllint curl)
readonly REQUIREMENTS=scripts/python/requirements.txt
readonly VENV=.venv
readonly TOOLS=.tools
# Exact versions (architecture.md §10.1, §10.3). Changing this list reinstalls .tools/.
readonly NPM_PACKAGES=(@grafana/schema@13.2.3 typescript@7.0.2 @kubernetes-models/prometheus-operator@6.0.0)
readonly STAMP=.xenguard-setup-stamp
readonly LOG_DIR=$TOOLS/logs

# fence_ipmilan / fence_xenapi live in /usr/sbin, which a non-root PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
export PATH

mkdir -p "$LOG_DIR"

# Two concurrent runs (test.sh and bench-decode.sh, say) must not install over each other.
if command -v flock >/dev/null; then
    exec 9>"$TOOLS/.setup.lock"
    flock 9
fi

# --- output helpers ---------------------------------------------------------------------------

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

SETUP_START=$(now_us)
STEP=
STEP_START=
STEP_LOG=

begin() {
    STEP=$1
    STEP_START=$(now_us)
    STEP_LOG=$LOG_DIR/setup-$2.log
    printf 'setup: %s ... ' "$STEP"
}

finish() {
    printf 'ok (%s%s s)\n' "${1:+$1, }" "$(seconds_since "$STEP_START")"
}

fail() {
    printf 'FAILED\nsetup: %s failed: %s\n' "$STEP" "$1" >&2
    if [ -s "$STEP_LOG" ]; then
        printf 'setup: last lines of %s:\n' "$STEP_LOG" >&2
        tail -n 40 "$STEP_LOG" | sed 's/^/  | /' >&2
    fi
    exit 1
}

# run CMD... — runs a command with its output appended to the step's log; fails the step loudly.
run() {
    printf '\n$ %s\n' "$*" >>"$STEP_LOG"
    "$@" >>"$STEP_LOG" 2>&1 || fail "'$*' exited with status $?"
}

sha256() { sha256sum | cut -d' ' -f1; }

missing_commands() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || printf '%s ' "$c"
    done
}

# A Python >= 3.11 that can build a venv with pip (Debian splits ensurepip into python3-venv).
pick_python() {
    local p
    for p in "${XENGUARD_BASE_PYTHON:-}" python3 /usr/bin/python3; do
        if [ -z "$p" ] || ! command -v "$p" >/dev/null; then
            continue
        fi
        if "$p" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}

# --- what is already there --------------------------------------------------------------------

venv_stamp=$({
    cat "$REQUIREMENTS"
    echo "venv-layout-1"
} | sha256)
venv_ok=false
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/$STAMP" 2>/dev/null)" = "$venv_stamp" ]; then
    venv_ok=true
fi

tools_stamp=$(printf '%s\n' "${NPM_PACKAGES[@]}" | sha256)
tools_ok=false
if [ -x "$TOOLS/node_modules/.bin/tsc" ] && [ "$(cat "$TOOLS/$STAMP" 2>/dev/null)" = "$tools_stamp" ]; then
    tools_ok=true
fi

# --- 1. Debian packages -----------------------------------------------------------------------

begin "apt packages" apt
apt_install=()
missing=$(missing_commands "${APT_COMMANDS[@]}")
[ -z "$missing" ] || apt_install+=("${APT_PACKAGES[@]}")
if ! $venv_ok && ! pick_python >/dev/null; then
    apt_install+=(python3 python3-venv)
fi
if ! $tools_ok && [ -n "$(missing_commands node npm)" ]; then
    apt_install+=(nodejs npm)
fi

if ((${#apt_install[@]} == 0)); then
    finish "already installed"
else
    : >"$STEP_LOG"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || fail "need root to install: ${apt_install[*]} (missing: ${missing:-none})"
        sudo=(sudo -n)
    fi
    run "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update
    run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${apt_install[@]}"
    missing=$(missing_commands "${APT_COMMANDS[@]}")
    [ -z "$missing" ] || fail "still not on PATH after apt-get install: $missing"
    finish "installed ${apt_install[*]}"
fi

# --- 2. Python virtual env --------------------------------------------------------------------

begin "python venv ($VENV)" venv
if $venv_ok; then
    finish "up to date"
else
    : >"$STEP_LOG"
    base_python=$(pick_python) || fail "no python3 >= 3.11 with the venv and ensurepip modules"
    # Recreate the venv when it is broken (e.g. its base interpreter is gone); otherwise update it.
    if ! "$VENV/bin/python" -c '' 2>/dev/null; then
        rm -rf "$VENV"
        run "$base_python" -m venv "$VENV"
    fi
    rm -f "$VENV/${STAMP:?}"
    run env PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install \
        --no-input --require-virtualenv --progress-bar off -r "$REQUIREMENTS"
    run "$VENV/bin/python" -c 'import XenAPI, helm_python, kubernetes_validate, yamllint'
    echo "$venv_stamp" >"$VENV/$STAMP"
    finish "$("$VENV/bin/python" -c 'import platform; print("CPython", platform.python_version())')"
fi

# --- 3. npm tools -----------------------------------------------------------------------------

begin "npm tools ($TOOLS)" npm
if $tools_ok; then
    finish "up to date"
else
    : >"$STEP_LOG"
    missing=$(missing_commands node npm)
    [ -z "$missing" ] || fail "not on PATH: $missing"
    rm -rf "$TOOLS/node_modules" "$TOOLS/package.json" "$TOOLS/package-lock.json" "$TOOLS/${STAMP:?}"
    printf '{\n  "name": "xenguard-test-tools",\n  "private": true\n}\n' >"$TOOLS/package.json"
    run npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact "${NPM_PACKAGES[@]}"
    run "$TOOLS/node_modules/.bin/tsc" --version
    echo "$tools_stamp" >"$TOOLS/$STAMP"
    finish "${NPM_PACKAGES[*]}"
fi

# --- 4. Rust components -----------------------------------------------------------------------

begin "rust components" rust
command -v cargo >/dev/null || fail "cargo is not on PATH (install Rust with rustup first)"
if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
    finish "rustfmt and clippy present"
else
    : >"$STEP_LOG"
    command -v rustup >/dev/null || fail "cargo fmt / cargo clippy missing and rustup is not on PATH"
    run rustup component add rustfmt clippy
    run cargo fmt --version
    run cargo clippy --version
    finish "added rustfmt clippy"
fi

printf 'setup: done in %s s\n' "$(seconds_since "$SETUP_START")"
