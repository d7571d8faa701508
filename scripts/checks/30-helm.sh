#!/usr/bin/env bash
# The Helm chart helm/xenguard and the Dockerfile (architecture.md §7; contract:
# scripts/checks/README.md).
#
# There is no `helm` binary here (architecture.md §10.2): the real Helm engine comes from
# PyPI's helm-python-sdk, driven by helm/check-chart.py. In order:
#
#   1. drift: helm/xenguard/files/alerts/ and files/dashboards/ are copies of the top-level
#      alerts/xenguard.rules.yml and dashboards/*.json (Helm's .Files cannot read outside the
#      chart); any difference fails and prints the `cp` (or `rm`) that fixes it.
#   2. values.schema.json is valid draft-07 and accepts every key of
#      tests/fixtures/config/example.yml (a new configuration key must reach the schema).
#   3. for each value set helm/xenguard/ci/*.yaml: helm.lint (no errors or warnings),
#      Chart.validate_schema(merged values), Chart.render(name=xenguard, namespace=monitoring)
#      into target/helm-check/<set>.yaml, then on the rendered objects:
#        - `xenguard check-config` accepts the rendered config.yml; every *_file it names is a
#          mounted Secret file in the pod that reads it; no secret value inline, no Secret object;
#        - receiver StatefulSet replicas 1, its volume claim mounted on the journal's directory;
#        - every container: runAsNonRoot, runAsUser/Group 65532, readOnlyRootFilesystem,
#          allowPrivilegeEscalation false, capabilities drop ALL, seccomp RuntimeDefault,
#          resources, liveness /-/healthy and readiness /-/ready on its port (HTTPS GETs with
#          receiver.tls, TCP connects with mutual TLS, since the kubelet has no client certificate);
#        - Services (9878 http-metrics, 9879 http-webhook) select their pods; standard labels;
#        - the ServiceMonitor's receiver endpoint uses https exactly when receiver.tls is set;
#        - ServiceMonitor and PrometheusRule against prometheus-operator's published schemas
#          (npm's @kubernetes-models/prometheus-operator, through helm/validate-crs.mjs), with
#          no field the chart is not known to render (a typo); the PrometheusRule holds exactly
#          the groups of alerts/xenguard.rules.yml (every alert name); the dashboard ConfigMaps
#          hold each dashboards/*.json byte for byte (every uid);
#        - NetworkPolicies: ingress only on each workload's port from the configured selectors,
#          egress only DNS, XAPI (and BMC for the receiver);
#      then `kubernetes-validate --strict` on the built-in kinds (Kubernetes 1.25.0, the chart's
#      kubeVersion floor, and 1.37.0, the newest bundled) and `yamllint --strict` (config
#      helm/xenguard/.yamllint) on the whole output. One summary line per set. Broken copies of
#      a rendered ServiceMonitor and PrometheusRule must be refused (the validators bite).
#   4. negative tests: unknown keys (top level and in sections), receiver replicas, inline
#      passwords / tokens / Secret data / receiver certificates and keys, wrong ports, bad
#      CIDRs are refused by the schema (and by render); no configuration, config +
#      existingConfigMap, nothing enabled fail to render.
#   5. Dockerfile, statically (no Docker engine runs here, so the image is NOT built): multi-stage
#      rust:1-bookworm builder with `cargo build --release --locked`, the binary at
#      /usr/local/bin/xenguard, fence-agents + ipmitool in a debian:bookworm-slim runtime, USER
#      and EXPOSE equal to the chart's runAsUser and container ports, ENTRYPOINT ["xenguard"];
#      .dockerignore keeps target/ and the venvs out of the context.
#
# Tools: .venv (scripts/setup.sh): helm-python-sdk, kubernetes-validate, yamllint, jsonschema,
# PyYAML; node and .tools (scripts/setup.sh): @kubernetes-models/prometheus-operator; cargo for
# target/debug/xenguard. A missing tool is a failure, never a skip.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly CHART=helm/xenguard
readonly OUT=target/helm-check
readonly K8S_VERSIONS=(1.25.0 1.37.0)
readonly BIN=target/debug/xenguard
readonly TOOLS_NM=$PWD/.tools/node_modules

fail() {
    printf '30-helm: FAILED: %s\n' "$*" >&2
    exit 1
}

PYTHON=${XENGUARD_PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || fail "$PYTHON not found (run scripts/setup.sh: it creates .venv)"
"$PYTHON" -c 'import helm_python, kubernetes_validate, yamllint, jsonschema, yaml' ||
    fail "$PYTHON cannot import helm_python, kubernetes_validate, yamllint, jsonschema and yaml (run scripts/setup.sh)"
command -v node >/dev/null || fail "node is not on PATH (run scripts/setup.sh: it installs nodejs)"
[ -d "$TOOLS_NM/@kubernetes-models/prometheus-operator" ] ||
    fail "$TOOLS_NM/@kubernetes-models/prometheus-operator is missing (run scripts/setup.sh)"

rm -rf "$OUT"
mkdir -p "$OUT"

# run LABEL CMD... — runs a tool quietly; on failure prints its own output and stops.
run() {
    local label=$1 log=$OUT/last.log
    shift
    if ! "$@" >"$log" 2>&1; then
        printf '30-helm: FAILED: %s\n  $ %s\n' "$label" "$*" >&2
        sed 's/^/  | /' "$log" >&2
        exit 1
    fi
}

# ------------------------------------------------------------------ 1. copies of the top-level files
drift=0
same() { # same TOP COPY
    if [ ! -f "$2" ]; then
        printf '30-helm: FAILED: %s has no copy in the chart; fix: cp %s %s\n' "$1" "$1" "$2" >&2
        drift=1
    elif ! cmp -s "$1" "$2"; then
        printf '30-helm: FAILED: %s differs from %s; fix: cp %s %s\n' "$2" "$1" "$1" "$2" >&2
        diff -u "$2" "$1" | head -20 | sed 's/^/  | /' >&2 || true
        drift=1
    fi
}
shopt -s nullglob
boards=(dashboards/*.json)
copies=("$CHART"/files/dashboards/*.json)
shopt -u nullglob
((${#boards[@]} > 0)) || fail "no dashboards/*.json"
same alerts/xenguard.rules.yml "$CHART/files/alerts/xenguard.rules.yml"
for board in "${boards[@]}"; do
    same "$board" "$CHART/files/dashboards/$(basename "$board")"
done
for copy in "${copies[@]}"; do
    if [ ! -f "dashboards/$(basename "$copy")" ]; then
        printf '30-helm: FAILED: %s has no top-level original; fix: rm %s\n' "$copy" "$copy" >&2
        drift=1
    fi
done
((drift == 0)) || fail "the chart's copies under $CHART/files/ drifted from the top-level files (commands above)"
printf '30-helm: ok  %s/files/ copies equal alerts/xenguard.rules.yml and %d dashboards/*.json\n' \
    "$CHART" "${#boards[@]}"

# ------------------------------------------------------------------ 2. schema vs the config reference
"$PYTHON" helm/check-chart.py example "$CHART"

# ------------------------------------------------------------------ 3. value sets
# The chart's args and rendered configurations are checked with this build of xenguard.
run "cargo build --bin xenguard" cargo build --quiet --bin xenguard
"$PYTHON" helm/check-chart.py render "$CHART" "$OUT" "$BIN" "$TOOLS_NM"
mapfile -t sets <"$OUT/sets.txt"
for set in "${sets[@]}"; do
    objects=$(grep -c '^kind:' "$OUT/$set.k8s.yaml" || true)
    for version in "${K8S_VERSIONS[@]}"; do
        # Options before file names (a trailing option is read as a file name).
        run "kubernetes-validate --strict ($set, Kubernetes $version)" \
            "$PYTHON" -m kubernetes_validate --strict --quiet -k "$version" "$OUT/$set.k8s.yaml"
    done
    run "yamllint ($set)" "$PYTHON" -m yamllint --strict -c "$CHART/.yamllint" "$OUT/$set.yaml"
    printf '30-helm: ok  %-16s %s; kubernetes-validate --strict ok (%s objects, k8s %s); yamllint ok\n' \
        "$set:" "$(cat "$OUT/$set.summary")" "$objects" "${K8S_VERSIONS[*]}"
done

# ------------------------------------------------------------------ 4. values that must be refused
"$PYTHON" helm/check-chart.py negative "$CHART" "$OUT"

# ------------------------------------------------------------------ 5. Dockerfile (static)
"$PYTHON" helm/check-chart.py dockerfile "$OUT"

printf '30-helm: ok  chart %s: %d value sets rendered and validated (manifests in %s/)\n' \
    "$CHART" "${#sets[@]}" "$OUT"
