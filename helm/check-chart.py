"""Checks of the xenguard Helm chart; run by scripts/checks/30-helm.sh (read it first).

There is no `helm` binary here: the chart is linted, schema-checked and rendered with the real
Helm engine through PyPI's helm-python-sdk (architecture.md §10.2). This program:

  render  CHART OUT XENGUARD_BIN NODE_MODULES
                                   for each CHART/ci/*.yaml: lint, validate_schema, render to
                                   OUT/<set>.yaml (every manifest), OUT/<set>.k8s.yaml (the
                                   built-in kinds, for kubernetes-validate) and check the
                                   rendered objects (see check_set; NODE_MODULES holds
                                   @kubernetes-models/prometheus-operator for the two
                                   prometheus-operator kinds); prints one line per set and
                                   writes OUT/sets.txt (set names, for the shell's next steps)
  negative CHART OUT               values files that must be refused (by values.schema.json, or
                                   by the templates) are refused; written to OUT/negative/
  example  CHART                   values.schema.json is valid draft-07 and its `config` accepts
                                   tests/fixtures/config/example.yml (every configuration key)
  dockerfile OUT                   static checks of Dockerfile and .dockerignore against the
                                   manifests rendered in OUT (no Docker engine here)

Every failure is printed as `30-helm: FAILED: ...` and the exit status is 1.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import yaml

RELEASE = "xenguard"
NAMESPACE = "monitoring"
CONFIG_PATH = "/etc/xenguard/config.yml"
SECRETS_DIR = "/etc/xenguard/secrets"
DEFAULT_JOURNAL = "/var/lib/xenguard/journal.db"
PORTS = {"exporter": ("http-metrics", 9878), "receiver": ("http-webhook", 9879)}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
)
ROOT = Path(__file__).resolve().parent.parent  # the repository


class Failed(Exception):
    pass


def need(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# ------------------------------------------------------------------------------ helm engine


def lint(chart: str, values: dict) -> str:
    report = helm.lint(chart, values, namespace=NAMESPACE)
    bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    need(
        not report.get("errors") and not bad,
        "helm lint: "
        + "; ".join(report.get("errors", []) + [f"{m['path']}: {m['error']}" for m in bad]),
    )
    infos = [m["error"] for m in report.get("messages", [])]
    return f"lint ok ({len(infos)} info: {', '.join(infos)})" if infos else "lint ok"


def render(chart: str, values: dict) -> dict[str, str]:
    with helm.Chart.load(chart) as loaded:
        loaded.validate_schema(loaded.merge_values(values))
        return loaded.render(values, name=RELEASE, namespace=NAMESPACE)


# ------------------------------------------------------------ prometheus-operator kinds

# ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1) are validated against the
# operator's published schemas by validate-crs.mjs, with the npm package
# @kubernetes-models/prometheus-operator (validators generated from the operator's API types).
# No Python package fits: cloudcoil-models-prometheus-operator (PyPI) has Pydantic models, not
# the schemas, drags in pydantic and httpx, and only its 0.80 releases install here;
# kubernetes-validate has the built-in kinds only; Debian has no prometheus-operator package.
CRD_KINDS = ("ServiceMonitor", "PrometheusRule")
VALIDATE_CRS = ROOT / "helm" / "validate-crs.mjs"

# The published schemas accept keys they do not know (Kubernetes prunes them without a word), so a
# misspelt `scrapeTimout` would pass them. This is every key xenguard renders, and no other: a
# dict is an object with these keys, a one-item list an array of such items, FREE a map whose
# keys are data (labels, annotations, metadata), None a value the published schema checks.
FREE = "free"
_SECRET_KEY = {"name": None, "key": None}
_SECRET_OR_CONFIGMAP = {"secret": _SECRET_KEY, "configMap": _SECRET_KEY}
RENDERED_FIELDS = {
    "ServiceMonitor": {
        "apiVersion": None, "kind": None, "metadata": FREE,
        "spec": {
            "selector": {"matchLabels": FREE},
            "namespaceSelector": {"matchNames": None, "any": None},
            "endpoints": [{
                "port": None, "path": None, "scheme": None, "interval": None, "scrapeTimeout": None,
                "tlsConfig": {"ca": _SECRET_OR_CONFIGMAP, "cert": _SECRET_OR_CONFIGMAP,
                              "keySecret": _SECRET_KEY, "serverName": None},
            }],
        },
    },
    "PrometheusRule": {
        "apiVersion": None, "kind": None, "metadata": FREE,
        "spec": {"groups": [{
            "name": None, "interval": None,
            "rules": [{"alert": None, "record": None, "expr": None, "for": None,
                       "keep_firing_for": None, "labels": FREE, "annotations": FREE}],
        }]},
    },
}


def unknown_fields(node, allowed, path: str = "") -> list[str]:
    """The keys of NODE that RENDERED_FIELDS' entry ALLOWED does not name, as dotted paths."""
    if isinstance(allowed, dict) and isinstance(node, dict):
        found = []
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            found += [where] if key not in allowed else unknown_fields(value, allowed[key], where)
        return found
    if isinstance(allowed, list) and isinstance(node, list):
        return [f for i, item in enumerate(node) for f in unknown_fields(item, allowed[0], f"{path}[{i}]")]
    return []  # FREE, None, or a type the published schema rejects


def published_schema_errors(docs: list[dict], node_modules: str) -> list[list[str]]:
    """For each of DOCS (ServiceMonitor / PrometheusRule), its errors against the published schema."""
    if not docs:
        return []
    try:
        run = subprocess.run(["node", str(VALIDATE_CRS), node_modules], input=json.dumps(docs),
                             capture_output=True, text=True)
    except OSError as why:
        raise Failed(f"cannot run node ({why.strerror}): run scripts/setup.sh") from None
    need(run.returncode == 0,
         f"node {VALIDATE_CRS} {node_modules} failed (run scripts/setup.sh?):\n{run.stderr}")
    results = json.loads(run.stdout)
    need(len(results) == len(docs), f"{VALIDATE_CRS} answered for {len(results)} of {len(docs)} objects")
    return results


def crd_problems(docs: list[dict], node_modules: str) -> list[list[str]]:
    """For each of DOCS, its problems: against the published schema, and keys xenguard does not
    render."""
    problems = []
    for doc, errors in zip(docs, published_schema_errors(docs, node_modules)):
        name = f"{doc['kind']} {doc['metadata']['name']}"
        unknown = unknown_fields(doc, RENDERED_FIELDS[doc["kind"]])
        problems.append([f"{name} against the published schema: {e}" for e in errors]
                        + [f"{name}: unknown field {f}" for f in unknown])
    return problems


def crd_canaries(sample: dict[str, dict], node_modules: str) -> None:
    """Broken copies of a rendered ServiceMonitor and PrometheusRule must be refused, each for its
    own reason: proof that the package's validators loaded and that RENDERED_FIELDS bites."""
    def broken(kind: str, path: list, key: str, value) -> dict:
        doc = copy.deepcopy(sample[kind])
        node = doc
        for step in path:
            node = node[step]
        node[key] = value
        return doc

    endpoint, rule = ["spec", "endpoints", 0], ["spec", "groups", 0, "rules", 0]
    canaries = [  # (broken copy, a fragment its problem must contain)
        (broken("ServiceMonitor", endpoint, "scheme", "htp"), "/spec/endpoints/0/scheme"),
        (broken("ServiceMonitor", endpoint, "interval", "30 s"), "/spec/endpoints/0/interval"),
        (broken("ServiceMonitor", endpoint, "scrapeTimout", "5s"), "spec.endpoints[0].scrapeTimout"),
        (broken("PrometheusRule", rule, "expr", ["up"]), "/spec/groups/0/rules/0/expr"),
        (broken("PrometheusRule", rule, "fro", "5m"), "spec.groups[0].rules[0].fro"),
    ]
    for (doc, fragment), problems in zip(canaries, crd_problems([c[0] for c in canaries], node_modules)):
        need(any(fragment in p for p in problems),
             f"a broken {doc['kind']} was not refused at {fragment} (got: {problems or 'no problem'}): "
             "the check of the prometheus-operator kinds is not effective")


# ------------------------------------------------------------------------------ helpers


def file_paths(config: dict) -> dict[str, list[str]]:
    """Every file the configuration names, by the workloads that read it."""
    both, receiver = [], []
    for pool in config.get("pools") or []:
        both.append(pool.get("password_file"))
        both.append((pool.get("tls") or {}).get("ca_file"))
    tls = (config.get("receiver") or {}).get("tls") or {}
    receiver += [tls.get("cert_file"), tls.get("key_file"), tls.get("client_ca_file")]
    auth = (config.get("receiver") or {}).get("auth") or {}
    receiver.append(auth.get("bearer_token_file"))
    receiver.append((auth.get("basic") or {}).get("password_file"))
    for host in (config.get("fencing") or {}).get("hosts") or []:
        receiver.append(host.get("password_file"))
        for level in host.get("levels") or []:
            receiver += [agent.get("password_file") for agent in level.get("agents") or []]
    return {
        "exporter": [p for p in both if p],
        "receiver": [p for p in both + receiver if p],
    }


def forbidden_keys(node, path="config"):
    """Keys that would hold a secret value inline."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).lower() in {"password", "passwd", "token", "secret", "bearer_token"}:
                found.append(f"{path}.{key}")
            found += forbidden_keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += forbidden_keys(value, f"{path}[{index}]")
    return found


# ------------------------------------------------------------------------------ one value set


def check_pod(kind_name: str, component: str, workload: dict, objects: dict, config: dict | None,
              values: dict) -> list[str]:
    spec = workload["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    need(
        all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
        f"{kind_name}: selector does not match the pod template's labels",
    )
    psc = pod.get("securityContext") or {}
    need(
        psc.get("runAsNonRoot") is True
        and psc.get("runAsUser") == 65532
        and psc.get("runAsGroup") == 65532
        and (psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
        f"{kind_name}: pod securityContext is not runAsNonRoot/65532/65532/RuntimeDefault: {psc}",
    )
    need(pod.get("automountServiceAccountToken") is False, f"{kind_name}: mounts a service account token")
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    need(len(pod.get("containers", [])) == 1, f"{kind_name}: expected one container")
    port_name, port = PORTS[component]
    for c in containers:
        where = f"{kind_name} container {c['name']}"
        sc = c.get("securityContext") or {}
        need(sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not true")
        need(sc.get("runAsUser") == 65532 and sc.get("runAsGroup") == 65532,
             f"{where}: runAsUser/runAsGroup are not 65532")
        need(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true")
        need(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation is not false")
        need((sc.get("capabilities") or {}).get("drop") == ["ALL"], f"{where}: capabilities do not drop ALL")
        need(not (sc.get("capabilities") or {}).get("add"), f"{where}: adds capabilities")
        need((sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
             f"{where}: seccompProfile is not RuntimeDefault")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            need(all(k in (res.get(part) or {}) for k in ("cpu", "memory")),
                 f"{where}: resources.{part} lacks cpu or memory: {res}")
        need(c.get("command") is None, f"{where}: overrides the image's ENTRYPOINT")
        need(c.get("args") == [component, "--config", CONFIG_PATH],
             f"{where}: args {c.get('args')} are not [{component}, --config, {CONFIG_PATH}]")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        need(ports == {port_name: port}, f"{where}: ports {ports} are not {{{port_name}: {port}}}")
        tls = ((config or {}).get("receiver") or {}).get("tls") if component == "receiver" else None
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            if tls and tls.get("client_ca_file"):
                # Mutual TLS: the kubelet has no client certificate, an HTTP probe would fail.
                connect = (c.get(probe) or {}).get("tcpSocket") or {}
                need(connect.get("port") in (port_name, port) and "httpGet" not in c.get(probe),
                     f"{where}: {probe} is not a TCP connect to {port_name} (mutual TLS): {c.get(probe)}")
                continue
            get = (c.get(probe) or {}).get("httpGet") or {}
            scheme = "HTTPS" if tls else "HTTP"
            need(get.get("path") == path and get.get("port") in (port_name, port)
                 and get.get("scheme", "HTTP") == scheme,
                 f"{where}: {probe} is not {scheme} GET {path} on {port_name}: {c.get(probe)}")
        for env in c.get("env", []):
            need(env["name"] in {"RUST_LOG", "HOME", "PYTHONDONTWRITEBYTECODE"},
                 f"{where}: unexpected environment variable {env['name']}")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        need(CONFIG_PATH in mounts and mounts[CONFIG_PATH].get("readOnly") is True,
             f"{where}: {CONFIG_PATH} is not mounted read-only")
        need("/tmp" in mounts, f"{where}: no writable /tmp (the root filesystem is read-only)")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    # Every Secret is mounted read-only under /etc/xenguard/secrets/<secretName>/, and the
    # files the configuration names exist in this pod.
    mounted = {}  # secretName -> set of paths, or None for "every key"
    for m in containers[0].get("volumeMounts", []):
        volume = volumes.get(m["name"]) or {}
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            need(m["mountPath"] == f"{SECRETS_DIR}/{name}" and m.get("readOnly") is True,
                 f"{kind_name}: Secret {name} is mounted at {m['mountPath']}, not read-only at {SECRETS_DIR}/{name}")
            items = volume["secret"].get("items")
            mounted[name] = None if items is None else {i.get("path", i["key"]) for i in items}
    expected = {
        s["secretName"]
        for s in values.get("secrets") or []
        if component in (s.get("components") or ["exporter", "receiver"])
    }
    need(set(mounted) == expected, f"{kind_name}: mounts Secrets {sorted(mounted)}, values list {sorted(expected)}")
    if config is not None:
        for path in file_paths(config)[component]:
            prefix = SECRETS_DIR + "/"
            need(path.startswith(prefix), f"{kind_name}: config names {path}, outside {SECRETS_DIR}/")
            name, _, rel = path[len(prefix):].partition("/")
            need(name in mounted, f"{kind_name}: config names {path} but Secret {name} is not mounted in this pod")
            if mounted[name] is not None:
                need(rel in mounted[name],
                     f"{kind_name}: config names {path} but Secret {name} mounts only {sorted(mounted[name])}")

    # The Service: right port, name and selector.
    service = objects.get(("Service", workload["metadata"]["name"]))
    need(service is not None, f"{kind_name}: no Service {workload['metadata']['name']}")
    sports = [(p["name"], p["port"]) for p in service["spec"]["ports"]]
    need(sports == [(port_name, port)], f"Service {service['metadata']['name']}: ports {sports}")
    need(all(labels.get(k) == v for k, v in service["spec"]["selector"].items()),
         f"Service {service['metadata']['name']}: selector does not match the {component} pods")
    return [m["mountPath"] for m in containers[0].get("volumeMounts", [])]


def check_set(name: str, manifests: dict[str, str], values: dict, merged: dict, out: Path,
              xenguard_bin: str, node_modules: str) -> str:
    docs = []
    with open(out / f"{name}.yaml", "w") as all_file, open(out / f"{name}.k8s.yaml", "w") as k8s_file:
        for source, body in sorted(manifests.items()):
            if source.endswith("NOTES.txt"):
                (out / f"{name}.NOTES.txt").write_text(body)
                continue
            if not body.strip():
                continue
            all_file.write(f"---\n# Source: {source}\n{body.strip()}\n")
            for doc in yaml.safe_load_all(body):
                if doc is None:
                    continue
                docs.append(doc)
                if doc["kind"] not in CRD_KINDS:
                    k8s_file.write("---\n" + yaml.safe_dump(doc, sort_keys=False))
    objects = {}
    for doc in docs:
        key = (doc["kind"], doc["metadata"]["name"])
        need(key not in objects, f"two objects {key}")
        objects[key] = doc
        meta = doc["metadata"]
        labels = meta.get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        need(not missing, f"{doc['kind']} {meta['name']}: missing labels {missing}")
        need(labels["app.kubernetes.io/managed-by"] == "Helm", f"{meta['name']}: managed-by is not Helm")
        need(len(meta["name"]) <= 63, f"{doc['kind']} {meta['name']}: name longer than 63")
        need(doc["kind"] != "Secret", f"the chart renders a Secret ({meta['name']}): secrets are references only")

    # Chart.yaml appVersion is the crate's version, and the image defaults to it.
    cargo = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    chart_yaml = yaml.safe_load((ROOT / "helm/xenguard/Chart.yaml").read_text())
    need(chart_yaml["apiVersion"] == "v2", "Chart.yaml apiVersion is not v2")
    need(str(chart_yaml["appVersion"]) == cargo, f"Chart.yaml appVersion {chart_yaml['appVersion']} != Cargo.toml version {cargo}")

    # The configuration: rendered from `config` (then checked by xenguard itself) or external.
    config = None
    cms = [d for d in docs if d["kind"] == "ConfigMap" and "config.yml" in d.get("data", {})]
    if merged.get("existingConfigMap"):
        need(not cms, "existingConfigMap is set but the chart renders a config ConfigMap too")
        config_note = f"config from existing ConfigMap {merged['existingConfigMap']} (not checked)"
    else:
        need(len(cms) == 1, "no config ConfigMap rendered")
        text = cms[0]["data"]["config.yml"]
        config = yaml.safe_load(text)
        need(config == merged["config"], "the rendered config.yml differs from the `config` value")
        bad = forbidden_keys(config)
        need(not bad, f"the rendered configuration holds secret values inline: {bad}")
        cfg_file = out / f"{name}.config.yml"
        cfg_file.write_text(text)
        run = subprocess.run([xenguard_bin, "check-config", str(cfg_file)], capture_output=True, text=True)
        need(run.returncode == 0, f"xenguard check-config {cfg_file}:\n{run.stdout}{run.stderr}")
        config_note = "check-config ok"

    kinds = []
    journal_dir = None
    for component, kind in (("exporter", "Deployment"), ("receiver", "StatefulSet")):
        found = [d for d in docs if d["kind"] == kind]
        if not merged[component]["enabled"]:
            need(not found, f"{component} disabled but a {kind} is rendered")
            need(not [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith(component)],
                 f"{component} disabled but its Service is rendered")
            continue
        need(len(found) == 1, f"expected one {kind}, found {len(found)}")
        workload = found[0]
        check_pod(f"{kind} {workload['metadata']['name']}", component, workload, objects, config, merged)
        kinds.append(kind)
        if component == "receiver":
            spec = workload["spec"]
            need(spec.get("replicas") == 1, f"receiver StatefulSet replicas {spec.get('replicas')} != 1")
            claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
            need(claims == ["journal"], f"receiver volumeClaimTemplates {claims} != [journal]")
            pvc = spec["volumeClaimTemplates"][0]["spec"]
            need(pvc["resources"]["requests"]["storage"] == str(merged["receiver"]["persistence"]["size"]),
                 "journal claim size differs from receiver.persistence.size")
            container = spec["template"]["spec"]["containers"][0]
            journal = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "journal"]
            if merged["receiver"]["persistence"].get("mountPath"):
                expected = merged["receiver"]["persistence"]["mountPath"]
            else:
                expected = posixpath.dirname(((config or {}).get("receiver") or {}).get("journal_path") or DEFAULT_JOURNAL)
            need(journal == [expected], f"journal volume mounted at {journal}, expected [{expected}] (receiver.journal_path)")
            journal_dir = expected
            kill = ((config or {}).get("receiver") or {}).get("kill_switch_file")
            if kill:
                need(posixpath.dirname(kill) == journal_dir,
                     f"receiver.kill_switch_file {kill} is not on the journal volume {journal_dir} (root filesystem is read-only)")

    # ServiceMonitor and PrometheusRule: the published schemas, no unknown field, and their content.
    crd_docs = [doc for doc in docs if doc["kind"] in CRD_KINDS]
    for doc in crd_docs:
        need(doc["apiVersion"] == "monitoring.coreos.com/v1", f"{doc['kind']} apiVersion {doc['apiVersion']}")
    problems = [p for doc_problems in crd_problems(crd_docs, node_modules) for p in doc_problems]
    need(not problems, "; ".join(problems[:5]))
    crs = [doc["kind"] for doc in crd_docs]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    need(len(monitors) == (1 if merged["serviceMonitor"]["enabled"] else 0), "ServiceMonitor count")
    for sm in monitors:
        wanted = {PORTS[c][0] for c in ("exporter", "receiver") if merged[c]["enabled"]}
        endpoints = {e["port"] for e in sm["spec"]["endpoints"]}
        need(endpoints == wanted, f"ServiceMonitor endpoints {endpoints} != {wanted}")
        receiver_tls = bool(((merged.get("config") or {}).get("receiver") or {}).get("tls"))
        for e in sm["spec"]["endpoints"]:
            need(e.get("path", "/metrics") == "/metrics", "ServiceMonitor endpoint path is not /metrics")
            https = e["port"] == PORTS["receiver"][0] and receiver_tls
            need(e.get("scheme") == ("https" if https else "http"),
                 f"ServiceMonitor endpoint {e['port']} scheme {e.get('scheme')}, expected {'https' if https else 'http'}")
            need("tlsConfig" not in e or https, f"ServiceMonitor endpoint {e['port']} has a tlsConfig without TLS")
        selector = sm["spec"]["selector"]["matchLabels"]
        services = [d for d in docs if d["kind"] == "Service"]
        matched = [s for s in services if all((s["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        need({p["name"] for s in matched for p in s["spec"]["ports"]} >= wanted,
             "ServiceMonitor selector does not match the Services carrying its ports")
        for s in matched:
            need("xenguard" in s["metadata"]["name"],
                 f"Service {s['metadata']['name']} (the Prometheus job) lacks 'xenguard' (XenguardExporterDown)")
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    need(len(rules) == (1 if merged["prometheusRule"]["enabled"] else 0), "PrometheusRule count")
    top_rules = yaml.safe_load((ROOT / "alerts/xenguard.rules.yml").read_text())
    top_alerts = [r["alert"] for g in top_rules["groups"] for r in g["rules"] if "alert" in r]
    for pr in rules:
        alerts = [r.get("alert") for g in pr["spec"]["groups"] for r in g["rules"]]
        missing = [a for a in top_alerts if a not in alerts]
        need(not missing, f"PrometheusRule lacks alerts of alerts/xenguard.rules.yml: {missing}")
        need(pr["spec"]["groups"] == top_rules["groups"],
             "PrometheusRule spec.groups differ from alerts/xenguard.rules.yml")
    boards = [d for d in docs if d["kind"] == "ConfigMap" and (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    if merged["dashboards"]["enabled"]:
        rendered, texts = {}, {}
        for cm in boards:
            for key, text in cm["data"].items():
                need(key not in texts, f"two dashboard ConfigMaps hold {key}")
                texts[key] = text
                rendered[key] = json.loads(text)
        for path in sorted((ROOT / "dashboards").glob("*.json")):
            board = json.loads(path.read_text())
            uids = [d.get("uid") for d in rendered.values()]
            need(board["uid"] in uids, f"no dashboard ConfigMap holds uid {board['uid']} ({path.name})")
            need(texts.get(path.name) == path.read_text(),
                 f"dashboard ConfigMap key {path.name} is not byte for byte dashboards/{path.name}")
        need(len(rendered) == len(list((ROOT / "dashboards").glob("*.json"))),
             f"dashboard ConfigMaps hold {sorted(rendered)}, dashboards/ has other files")
    else:
        need(not boards, "dashboards disabled but dashboard ConfigMaps rendered")

    # NetworkPolicy: ingress only on the workload's port, egress DNS + XAPI (+ BMC).
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    np = merged["networkPolicy"]
    if np["enabled"]:
        for component in ("exporter", "receiver"):
            if not merged[component]["enabled"]:
                continue
            policy = next((p for p in policies.values()
                           if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == component), None)
            need(policy is not None, f"no NetworkPolicy for the {component}")
            spec = policy["spec"]
            need(sorted(spec["policyTypes"]) == ["Egress", "Ingress"], f"{component} NetworkPolicy policyTypes")
            in_ports = {(p["port"], p.get("protocol", "TCP")) for r in spec["ingress"] for p in r["ports"]}
            need(in_ports == {(PORTS[component][1], "TCP")}, f"{component} NetworkPolicy ingress ports {in_ports}")
            need(all(r.get("from") for r in spec["ingress"]), f"{component} NetworkPolicy has an ingress rule open to all")
            need(all(r.get("to") and r.get("ports") for r in spec["egress"]),
                 f"{component} NetworkPolicy has an egress rule without destinations or ports (open)")
            egress = {(p["port"], p.get("protocol", "TCP")) for r in spec["egress"] for p in r["ports"]}
            need((53, "UDP") in egress and (53, "TCP") in egress, f"{component} NetworkPolicy: no DNS egress")
            if np["xapi"]["cidrs"]:
                need({(p, "TCP") for p in np["xapi"]["ports"]} <= egress, f"{component} NetworkPolicy: no XAPI egress")
            bmc = {(p["port"], p["protocol"]) for p in np["bmc"]["ports"]}
            if component == "receiver" and np["bmc"]["cidrs"]:
                need(bmc <= egress, f"receiver NetworkPolicy: no BMC egress {bmc}")
            if component == "exporter":
                need(not [r for r in spec["egress"] if any(b.get("ipBlock", {}).get("cidr") in np["bmc"]["cidrs"] for b in r["to"])],
                     "exporter NetworkPolicy allows the BMC network")
    else:
        need(not policies, "networkPolicy disabled but NetworkPolicies rendered")

    counts = {}
    for doc in docs:
        counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    (out / f"{name}.crs").write_text(" ".join(crs))
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return f"{len(docs)} objects ({summary}); {config_note}; CRD schemas ok ({len(crs)})"


def cmd_render(chart: str, out: Path, xenguard_bin: str, node_modules: str) -> None:
    helm.disable_logging()
    out.mkdir(parents=True, exist_ok=True)
    sets = sorted((Path(chart) / "ci").glob("*.yaml"))
    need(sets, f"no value sets in {chart}/ci/")
    # The subcommands and flag the chart's args use exist in this build of xenguard.
    for component in PORTS:
        run = subprocess.run([xenguard_bin, component, "--help"], capture_output=True, text=True)
        need(run.returncode == 0 and "--config" in run.stdout,
             f"`{xenguard_bin} {component} --help` does not document --config (the chart's args):\n{run.stdout}{run.stderr}")
    names = []
    for path in sets:
        name = path.stem
        try:
            values = helm.values_from_yaml(path.read_text()) or {}
            note = lint(chart, values)
            with helm.Chart.load(chart) as loaded:
                merged = loaded.merge_values(values)
            manifests = render(chart, values)
            summary = check_set(name, manifests, values, merged, out, xenguard_bin, node_modules)
        except (Failed, helm.HelmError) as why:
            raise Failed(f"value set {path}: {why}") from None
        (out / f"{name}.summary").write_text(f"{note}; schema ok; rendered {summary}")
        names.append(name)
    (out / "sets.txt").write_text("\n".join(names) + "\n")

    # The check of the prometheus-operator kinds bites, on broken copies of rendered ones.
    sample = {}
    for path in sorted(out.glob("*.yaml")):
        if not path.name.endswith(".k8s.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc["kind"] in CRD_KINDS:
                    sample.setdefault(doc["kind"], doc)
    need(sorted(sample) == sorted(CRD_KINDS), f"no value set renders both {' and '.join(CRD_KINDS)}")
    crd_canaries(sample, node_modules)
    print("30-helm: ok  broken copies of the ServiceMonitor and PrometheusRule are refused "
          "(published schemas of @kubernetes-models/prometheus-operator; unknown fields)")


# ------------------------------------------------------------------------------ negative tests

POOL = {"name": "lab", "hosts": ["xen1"], "password_file": "/etc/xenguard/secrets/x/p"}
BASE = {"config": {"pools": [POOL]}, "secrets": [{"secretName": "x"}]}


def with_(patch: dict, base: dict | None = None) -> dict:
    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a
    return merge(copy.deepcopy(BASE if base is None else base), patch)


# (label, values, "schema" | "render", text the error must contain)
NEGATIVE = [
    ("unknown top-level key", with_({"replicaCount": 2}), "schema", "replicaCount"),
    ("unknown key in exporter", with_({"exporter": {"replica": 2}}), "schema", "replica"),
    ("unknown key in networkPolicy.xapi", with_({"networkPolicy": {"xapi": {"cidr": "10.0.0.0/8"}}}), "schema", "cidr"),
    ("receiver replicas 2", with_({"receiver": {"replicas": 2}}), "schema", "replicas"),
    ("receiver replicas 1 (not a value either)", with_({"receiver": {"replicas": 1}}), "schema", "replicas"),
    ("inline pool password", with_({"config": {"pools": [dict(POOL, password="hunter2")]}}), "schema", "password"),
    ("pool password_env (no env from the chart)",
     with_({"config": {"pools": [{"name": "lab", "hosts": ["xen1"], "password_env": "XEN_PASSWORD"}]}}), "schema", "password"),
    ("inline webhook token", with_({"config": {"receiver": {"auth": {"bearer_token": "s3cret"}}}}), "schema", "bearer_token"),
    ("inline BMC password in fence args",
     with_({"config": {"fencing": {"hosts": [{"pool": "lab", "host": "xen1", "agent": "fence_ipmilan",
                                              "args": {"ip": "10.0.0.1", "password": "hunter2"}}]}}}), "schema", "password"),
    ("inline BMC password in a fencing level's agent",
     with_({"config": {"fencing": {"hosts": [{"pool": "lab", "host": "xen1", "levels": [
         {"agents": [{"agent": "fence_ipmilan", "args": {"ip": "10.0.0.1", "password": "hunter2"}}]}]}]}}}),
     "schema", "password"),
    ("fencing host with both agent and levels",
     with_({"config": {"fencing": {"hosts": [{"pool": "lab", "host": "xen1", "agent": "fence_ipmilan",
                                              "levels": [{"agents": [{"agent": "fence_ipmilan"}]}]}]}}}),
     "schema", "'oneOf' failed"),
    ("fencing level without agents",
     with_({"config": {"fencing": {"hosts": [{"pool": "lab", "host": "xen1", "levels": [{"agents": []}]}]}}}),
     "schema", "agents"),
    ("inline receiver certificate",
     with_({"config": {"receiver": {"tls": {"cert_file": "-----BEGIN CERTIFICATE-----", "key_file": "/k"}}}}),
     "schema", "cert_file"),
    ("inline receiver key", with_({"config": {"receiver": {"tls": {"cert_file": "/c", "key": "-----BEGIN"}}}}),
     "schema", "key"),
    ("receiver tls without key_file", with_({"config": {"receiver": {"tls": {"cert_file": "/c"}}}}),
     "schema", "key_file"),
    ("ServiceMonitor skipping certificate checks",
     with_({"serviceMonitor": {"receiverTlsConfig": {"insecureSkipVerify": True}}}), "schema", "insecureSkipVerify"),
    ("Secret content in secrets[]", with_({"secrets": [{"secretName": "x", "stringData": {"password": "hunter2"}}]}), "schema", "stringData"),
    ("exporter replicas 0", with_({"exporter": {"replicas": 0}}), "schema", "minimum"),
    ("exporter.listen on another port", with_({"config": {"exporter": {"listen": "0.0.0.0:9000"}}}), "schema", "listen"),
    ("bad CIDR", with_({"networkPolicy": {"xapi": {"cidrs": ["10.0.0.0"]}}}), "schema", "cidrs"),
    ("unknown xenguard config key", with_({"config": {"exporter": {"probe_interval": 5}}}), "schema", "probe_interval"),
    ("no configuration at all (chart defaults)", {}, "render", "needs a configuration"),
    ("config and existingConfigMap", with_({"existingConfigMap": "mine"}), "render", "not both"),
    ("both workloads disabled", with_({"exporter": {"enabled": False}, "receiver": {"enabled": False}}), "render", "nothing to deploy"),
]


def cmd_negative(chart: str, out: Path) -> None:
    helm.disable_logging()
    (out / "negative").mkdir(parents=True, exist_ok=True)
    for number, (label, values, stage, text) in enumerate(NEGATIVE, 1):
        # Each case as a values file (what `helm install -f` would read), parsed by Helm.
        path = out / "negative" / f"{number:02d}.yaml"
        path.write_text(f"# {label}: must be refused ({stage})\n" + yaml.safe_dump(values, sort_keys=False))
        values = helm.values_from_yaml(path.read_text()) or {}
        label = f"{label} ({path})"
        with helm.Chart.load(chart) as loaded:
            merged = loaded.merge_values(values)
            try:
                loaded.validate_schema(merged)
            except helm.HelmValuesError as why:
                need(stage == "schema", f"negative test '{label}': refused by the schema, expected at render: {why}")
                need(text in str(why), f"negative test '{label}': refused for another reason: {why}")
                # render() must refuse it as well (helm install validates the same way).
                try:
                    loaded.render(values, name=RELEASE, namespace=NAMESPACE)
                except helm.HelmError:
                    pass
                else:
                    raise Failed(f"negative test '{label}': the schema refuses it but render() accepts it")
                print(f"30-helm: ok  refused by values.schema.json: {label}")
                continue
            need(stage == "render", f"negative test '{label}': values.schema.json accepts {json.dumps(values)}")
            try:
                loaded.render(values, name=RELEASE, namespace=NAMESPACE)
            except helm.HelmRenderError as why:
                need(text in str(why), f"negative test '{label}': render failed for another reason: {why}")
                print(f"30-helm: ok  refused at render: {label}")
                continue
            raise Failed(f"negative test '{label}': rendered without error")


def cmd_example(chart: str) -> None:
    """The schema's `config` section accepts the project's complete example configuration
    (tests/fixtures/config/example.yml, every key), with password_env replaced as the chart
    requires: a new configuration key fails here until the schema knows it."""
    schema = json.loads((Path(chart) / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    example = yaml.safe_load((ROOT / "tests/fixtures/config/example.yml").read_text())
    for pool in example["pools"]:
        if "password_env" in pool:
            del pool["password_env"]
            pool["password_file"] = f"{SECRETS_DIR}/xenguard-xapi/{pool['name']}"
    values = {"config": example}
    validator = jsonschema.Draft7Validator(schema)
    errors = list(validator.iter_errors(values))
    need(not errors, "values.schema.json `config` rejects tests/fixtures/config/example.yml: "
         + "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]))
    need(not validator.is_valid({"config": dict(example, pools=[dict(example["pools"][1], password_env="X")])}),
         "values.schema.json accepts password_env")
    print("30-helm: ok  values.schema.json is valid draft-07 and accepts every key of tests/fixtures/config/example.yml")


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        current = ""
    return out


def cmd_dockerfile(out: Path) -> None:
    """Static checks of Dockerfile and .dockerignore against the rendered chart (no Docker
    engine here: the image is never built by the tests)."""
    text = (ROOT / "Dockerfile").read_text()
    ins = dockerfile_instructions(text)
    froms = [args for word, args in ins if word == "FROM"]
    need(len(froms) >= 2, f"Dockerfile: expected a multi-stage build, found FROM {froms}")
    need(re.fullmatch(r"rust:1-bookworm AS builder", froms[0], re.I) is not None,
         f"Dockerfile: the first stage is `FROM {froms[0]}`, expected `rust:1-bookworm AS builder`")
    runtime = froms[-1].split()[0]
    need(runtime in ("debian:bookworm-slim", "gcr.io/distroless/cc-debian12:nonroot"),
         f"Dockerfile: runtime stage FROM {runtime}")
    runs = " ".join(args for word, args in ins if word == "RUN")
    need(re.search(r"cargo build --release --locked\b", runs) is not None,
         "Dockerfile: no `cargo build --release --locked`")
    # The last stage: everything after the last FROM.
    last = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    final = ins[last + 1:]
    final_runs = " ".join(args for word, args in final if word == "RUN")
    if runtime.startswith("debian"):
        for package in ("fence-agents", "ipmitool"):
            need(re.search(rf"apt-get install[^&;]*\b{package}\b", final_runs) is not None,
                 f"Dockerfile: the runtime stage does not install {package} (the receiver's fence agents)")
        need("bookworm-slim" in text and re.search(r"#.*fence", text, re.I) is not None,
             "Dockerfile: say in a comment why the runtime is debian:bookworm-slim (fence agents)")
    copies = [args for word, args in final if word == "COPY"]
    need(any(re.fullmatch(r"--from=builder \S*/xenguard /usr/local/bin/xenguard", c) for c in copies),
         f"Dockerfile: no `COPY --from=builder .../xenguard /usr/local/bin/xenguard` in the runtime stage: {copies}")
    users = [args for word, args in final if word == "USER"]
    need(users, "Dockerfile: the runtime stage sets no USER (it would run as root)")
    user = users[-1]
    need(re.fullmatch(r"[0-9]+(:[0-9]+)?", user) is not None,
         f"Dockerfile: USER {user} is not numeric (runAsNonRoot cannot verify a name)")
    uid, _, gid = user.partition(":")
    need(int(uid) != 0, "Dockerfile: USER is root")
    entry = [args for word, args in final if word == "ENTRYPOINT"]
    need(entry and json.loads(entry[-1]) == ["xenguard"], f"Dockerfile: ENTRYPOINT {entry} is not [\"xenguard\"]")
    exposed = {int(p.split("/")[0]) for word, args in final if word == "EXPOSE" for p in args.split()}

    # What the chart runs: the same user, ports, and the image's ENTRYPOINT with subcommand args.
    chart_users, chart_ports = set(), set()
    for path in sorted(out.glob("*.k8s.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            pod = doc["spec"]["template"]["spec"]
            for c in pod["containers"]:
                sc = c.get("securityContext") or {}
                chart_users.add((sc.get("runAsUser"), sc.get("runAsGroup")))
                chart_ports |= {p["containerPort"] for p in c.get("ports", [])}
                need(c.get("command") is None and c["args"][0] in PORTS,
                     f"{path.name}: container {c['name']} does not run the image's ENTRYPOINT with a subcommand")
    need(chart_users == {(int(uid), int(gid or uid))},
         f"Dockerfile USER {user} differs from the chart's runAsUser/runAsGroup {sorted(chart_users)}")
    need(exposed == chart_ports == {p for _, p in PORTS.values()},
         f"Dockerfile EXPOSE {sorted(exposed)} differs from the chart's container ports {sorted(chart_ports)}")
    ignored = {line.strip().rstrip("/").lstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for path in ("target", ".git", ".venv", ".tools"):
        need(path in ignored, f".dockerignore does not exclude {path}")
    for path in ("src", "Cargo.toml", "Cargo.lock", "benches", "tests"):
        need(path not in ignored, f".dockerignore excludes {path}, which cargo build needs")
    print(f"30-helm: ok  Dockerfile (static; no Docker engine here, not built): {froms[0]} -> {runtime}, "
          f"USER {user} = chart runAsUser, EXPOSE {' '.join(map(str, sorted(exposed)))} = chart ports, "
          "ENTRYPOINT [xenguard] + chart args, .dockerignore")


def main() -> int:
    try:
        if sys.argv[1] == "render":
            cmd_render(sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5])
        elif sys.argv[1] == "negative":
            cmd_negative(sys.argv[2], Path(sys.argv[3]))
        elif sys.argv[1] == "dockerfile":
            cmd_dockerfile(Path(sys.argv[2]))
        elif sys.argv[1] == "example":
            cmd_example(sys.argv[2])
        else:
            raise SystemExit(f"usage: {sys.argv[0]} render|negative|example|dockerfile ...")
    except Failed as why:
        print(f"30-helm: FAILED: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
