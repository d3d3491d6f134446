"""deploy/k8s, rendered with `kubectl kustomize` and checked offline: core objects against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict), the Prometheus Operator objects
structurally, and every port, probe path, selector, secret key and config key against the
other objects and the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.config import MonitorConfig, parse_config
from tests.integration.deploy_helpers import (
    DEPLOY,
    exported_metrics,
    load_all,
    load_yaml,
    metric_tokens,
    require_routes,
)

K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the base is checked against; 1.37 below too


def render_plain() -> list[dict[str, Any]]:
    """Without kubectl: the base's plain files with the three kustomize features it uses
    (resources, one configMapGenerator, an image tag; labels on metadata) applied by hand."""
    kust = load_yaml(K8S / "kustomization.yaml")
    docs = [d for name in kust["resources"] for d in load_all(K8S / name)]
    for gen in kust.get("configMapGenerator", []):
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]},
                     "data": {f: (K8S / f).read_text() for f in gen["files"]}})
    extra = {k: v for group in kust.get("labels", []) for k, v in group["pairs"].items()}
    for d in docs:
        d["metadata"].setdefault("labels", {}).update(extra)
        for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for img in kust.get("images", []):
                if c["image"] == img["name"]:
                    c["image"] = f"{img.get('newName', img['name'])}:{img['newTag']}"
    return docs


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # the plain files are still checked, kustomize itself is not
        docs = render_plain()
    else:
        out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        docs = load_all(out.stdout)
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), "one object per kind keeps the lookups simple"
    return {d["kind"]: d for d in docs}


def pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return objects["Deployment"]["spec"]["template"]  # type: ignore[no-any-return]


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = pod(objects)["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def config(objects: dict[str, dict[str, Any]], tmp_path: Path) -> MonitorConfig:
    """The ConfigMap's config with the container's environment, as the pod would see it:
    secretKeyRef values come from the Secret, `file:` values pointing into a mounted
    Secret are served from a temporary copy of it."""
    c = container(objects)
    secret = objects["Secret"]
    data = dict(secret.get("stringData", {}))
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(objects)["spec"]["volumes"]}
    secret_dirs = {mounts[n]: v["secret"]["secretName"] for n, v in volumes.items()
                   if "secret" in v and n in mounts}
    for name in secret_dirs.values():
        assert name == secret["metadata"]["name"], f"volume refers to unknown secret {name}"
    copy = tmp_path / "secrets"
    copy.mkdir()
    for key, value in data.items():
        (copy / key).write_text(value)
    env: dict[str, str] = {}
    for var in c.get("env", []):
        if "value" in var:
            value = var["value"]
            if value.startswith("file:"):
                path = value[5:]
                mount = next((m for m in secret_dirs if path.startswith(m + "/")), None)
                assert mount, f"{var['name']} reads {path}, which no Secret volume provides"
                key = path[len(mount) + 1:]
                assert key in data, f"{var['name']}: Secret has no key {key}"
                value = f"file:{copy / key}"
            env[var["name"]] = value
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in data or ref.get("optional"), ref
            env[var["name"]] = data.get(ref["key"], "")
    text = objects["ConfigMap"]["data"]["monitor.yaml"]
    return parse_config(load_all(text)[0], env)


# -- schemas ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [K8S_VERSION, "1.37.0"])
def test_core_objects_validate_against_the_kubernetes_schemas(
        objects: dict[str, dict[str, Any]], version: str) -> None:
    kv = pytest.importorskip("kubernetes_validate",
                             reason="pip install kubernetes-validate (ships the schemas)")
    checked = set()
    for kind, obj in objects.items():
        try:
            kv.validate(obj, version, strict=True)
        except kv.SchemaNotFoundError:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1", kind
            continue
        except kv.ValidationError as err:
            pytest.fail(f"{kind}: {err.message} at {list(err.absolute_path)}")
        checked.add(kind)
    assert checked == {"ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service",
                       "PodDisruptionBudget"}


# kubernetes-validate has no schemas for CRDs: the Prometheus Operator objects are checked
# against these subsets of the operator's CRD schemas (the fields the base uses; unknown
# fields rejected as the API server's structural schema would prune or reject them).
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)(y|w|d|h|m|s|ms))+)$"}
_META = {"type": "object", "required": ["name"],
         "properties": {"name": {"type": "string"}, "labels": _LABELS,
                        "annotations": _LABELS, "namespace": {"type": "string"}},
         "additionalProperties": False}
SERVICE_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"}, "metadata": _META,
        "spec": {"type": "object", "required": ["selector", "endpoints"],
                 "additionalProperties": False, "properties": {
                     "jobLabel": {"type": "string"},
                     "selector": {"type": "object", "additionalProperties": False,
                                  "properties": {"matchLabels": _LABELS}},
                     "namespaceSelector": {"type": "object"},
                     "endpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "additionalProperties": False,
                         "properties": {
                             "port": {"type": "string"}, "path": {"type": "string"},
                             "scheme": {"enum": ["http", "https"]},
                             "interval": _DURATION, "scrapeTimeout": _DURATION,
                             "honorLabels": {"type": "boolean"},
                             "relabelings": {"type": "array", "items": {
                                 "type": "object", "additionalProperties": False,
                                 "properties": {
                                     "action": {"enum": ["replace", "Replace", "keep", "Keep",
                                                         "drop", "Drop", "labelmap",
                                                         "labeldrop", "labelkeep"]},
                                     "sourceLabels": {"type": "array"},
                                     "targetLabel": {"type": "string"},
                                     "replacement": {"type": "string"},
                                     "regex": {"type": "string"},
                                     "separator": {"type": "string"}}}}}}}}}},
    "additionalProperties": False,
}
PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"}, "metadata": _META,
        "spec": {"type": "object", "additionalProperties": False, "properties": {
            "groups": {"type": "array", "items": {
                "type": "object", "required": ["name", "rules"], "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"}, "interval": _DURATION,
                    "rules": {"type": "array", "items": {
                        "type": "object", "required": ["expr"], "additionalProperties": False,
                        "properties": {"alert": {"type": "string"}, "record": {"type": "string"},
                                       "expr": {"type": "string"}, "for": _DURATION,
                                       "labels": _LABELS, "annotations": _LABELS}}}}}}}}},
    "additionalProperties": False,
}


@pytest.mark.parametrize(("kind", "schema"), [("ServiceMonitor", SERVICE_MONITOR),
                                              ("PrometheusRule", PROMETHEUS_RULE)])
def test_prometheus_operator_objects_are_structurally_valid(
        objects: dict[str, dict[str, Any]], kind: str, schema: dict[str, Any]) -> None:
    import jsonschema

    errors = list(jsonschema.Draft7Validator(schema).iter_errors(objects[kind]))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_plain_files_render_like_kustomize(objects: dict[str, dict[str, Any]]) -> None:
    plain = {d["kind"]: d for d in render_plain()}
    assert set(plain) == set(objects)
    cm = objects["ConfigMap"]
    assert cm["metadata"]["name"].startswith(plain["ConfigMap"]["metadata"]["name"])
    assert cm["data"] == plain["ConfigMap"]["data"]
    assert container(objects)["image"] == plain["Deployment"]["spec"]["template"]["spec"][
        "containers"][0]["image"]


def test_prometheusrule_is_rules_yml_unchanged(objects: dict[str, dict[str, Any]]) -> None:
    out = subprocess.run([sys.executable, str(K8S / "prometheusrule.py"), "--check"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert objects["PrometheusRule"]["spec"] == load_yaml(DEPLOY / "prometheus" / "rules.yml")


# -- wiring between the objects --------------------------------------------------------------

def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_selectors_find_their_pods_and_service(objects: dict[str, dict[str, Any]]) -> None:
    pod_labels = pod(objects)["metadata"]["labels"]
    assert _matches(objects["Deployment"]["spec"]["selector"]["matchLabels"], pod_labels)
    assert _matches(objects["Service"]["spec"]["selector"], pod_labels)
    assert _matches(objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
                    pod_labels)
    for tsc in pod(objects)["spec"].get("topologySpreadConstraints", []):
        assert _matches(tsc["labelSelector"]["matchLabels"], pod_labels)
    assert _matches(objects["ServiceMonitor"]["spec"]["selector"]["matchLabels"],
                    objects["Service"]["metadata"]["labels"])


def test_ports_line_up_from_config_to_service_monitor(
        objects: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cfg = config(objects, tmp_path)
    assert cfg.http.enabled and cfg.http.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    assert cfg.http.port in ports.values()
    svc_ports = {p["name"]: p for p in objects["Service"]["spec"]["ports"]}
    for p in svc_ports.values():
        assert p["targetPort"] in ports or p["targetPort"] in ports.values()
    for ep in objects["ServiceMonitor"]["spec"]["endpoints"]:
        assert ep["port"] in svc_ports


def test_probes_use_routes_the_daemon_serves(objects: dict[str, dict[str, Any]]) -> None:
    c = container(objects)
    ports = {p["name"] for p in c["ports"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    paths = set()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = c[probe]["httpGet"]
        assert get["port"] in ports
        paths.add(get["path"])
    require_routes(paths, "Deployment probes")


def test_service_monitor_scrapes_a_served_path(objects: dict[str, dict[str, Any]]) -> None:
    paths = {ep.get("path", "/metrics") for ep in objects["ServiceMonitor"]["spec"]["endpoints"]}
    require_routes(paths, "ServiceMonitor")


def test_service_monitor_keeps_the_job_label_the_rules_select(
        objects: dict[str, dict[str, Any]]) -> None:
    jobs = set(re.findall(r'job="([^"]+)"', str(load_yaml(DEPLOY / "prometheus" / "rules.yml"))))
    assert jobs
    for ep in objects["ServiceMonitor"]["spec"]["endpoints"]:
        pinned = {r["replacement"] for r in ep.get("relabelings", [])
                  if r.get("targetLabel") == "job"}
        assert pinned == jobs


def test_metric_names_in_the_manifests_are_exported(objects: dict[str, dict[str, Any]]) -> None:
    used = set()
    for obj in objects.values():
        used |= metric_tokens(str(obj))
    assert used <= exported_metrics(), used - exported_metrics()


# -- the config and the container ------------------------------------------------------------

def test_configmap_config_with_the_pod_environment_is_valid(
        objects: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cfg = config(objects, tmp_path)
    c = container(objects)
    env = {v["name"] for v in c["env"]}
    for r in cfg.alerts.receivers:
        if r.secret_env:
            assert r.secret_env in env, f"receiver {r.name}: {r.secret_env} not set"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    config_path = c["args"][c["args"].index("--config") + 1]
    volumes = {v["name"]: v for v in pod(objects)["spec"]["volumes"]}
    cm_volume = volumes[mounts[config_path]["name"]]
    assert cm_volume["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert mounts[config_path]["subPath"] in objects["ConfigMap"]["data"]
    assert cfg.checkpoint.state_dir in mounts
    assert "emptyDir" in volumes[mounts[cfg.checkpoint.state_dir]["name"]]


def test_configmap_config_differs_from_the_example_only_in_addresses() -> None:
    example = load_yaml(DEPLOY / "config" / "monitor.yaml")
    k8s = load_yaml(K8S / "monitor.yaml")
    for tree in (example, k8s):
        tree["kafka"].pop("bootstrap_servers")
        for r in tree["alerts"]["receivers"]:
            r.pop("url")
    assert k8s == example


def test_grace_period_outlasts_the_shutdown_checkpoint(
        objects: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cfg = config(objects, tmp_path)
    grace = pod(objects)["spec"]["terminationGracePeriodSeconds"]
    assert grace > cfg.checkpoint.shutdown_timeout_s


def test_replicas_are_a_consumer_group_bounded_by_partitions(
        objects: dict[str, dict[str, Any]]) -> None:
    text = (K8S / "deployment.yaml").read_text()
    assert "replicas <= partitions" in text
    replicas = objects["Deployment"]["spec"]["replicas"]
    assert replicas >= 2  # the PodDisruptionBudget then leaves one running
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] < replicas
    compose = load_yaml(DEPLOY / "compose.yaml")["services"]["kafka-init"]["command"][0]
    assert replicas <= int(re.search(r"--partitions (\d+)", compose).group(1))  # type: ignore[union-attr]


def test_resources_match_the_torch_threads(objects: dict[str, dict[str, Any]],
                                           tmp_path: Path) -> None:
    res = container(objects)["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"]
    assert "memory" in res["limits"]
    cfg = config(objects, tmp_path)
    assert cfg.embed.threads == int(res["requests"]["cpu"])


def test_image_tag_is_the_package_version(objects: dict[str, dict[str, Any]]) -> None:
    import tomllib

    version = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["version"]
    assert container(objects)["image"] == f"monitor:{version}"


def test_pod_runs_unprivileged_with_a_read_only_root(objects: dict[str, dict[str, Any]]) -> None:
    spec = pod(objects)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    sc = container(objects)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container(objects)["volumeMounts"]}
    assert "/tmp" in mounts  # the only other place libraries write to
