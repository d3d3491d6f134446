"""deploy/compose.yaml, checked without a Docker engine: the Compose schema, every mounted file,
and every address one service uses to reach another, cross-checked against the repo, the
daemon's config model and the Prometheus/Alertmanager tools."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from monitor.config import parse_config
from monitor.sinks.alerts.payloads import _ALERTNAMES
from monitor.tools import produce
from tests.integration.daemon_helpers import free_port, wait_until
from tests.integration.deploy_helpers import DEPLOY, ROOT, load_yaml, require_routes, tool

COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE = load_yaml(COMPOSE_FILE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def interpolate(value: str) -> str:
    """Compose variable interpolation with an empty environment: `${X:-d}` -> d, `$$` -> `$`."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
    assert not re.search(r"\$\{?[A-Za-z_]", value.replace("$$", "")), \
        f"{value!r} needs a variable without a default"
    return value.replace("$$", "$")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    out = {}
    for vol in SERVICES[service].get("volumes", []):
        source, target = vol.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = (DEPLOY / source).resolve()
    return out


def host_path(service: str, container_path: str) -> Path:
    """Where a path inside the container comes from (longest bind-mount prefix)."""
    for target, source in sorted(mounts(service).items(), key=lambda kv: -len(kv[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into {service}")


def flag(service: str, name: str) -> str:
    for arg in SERVICES[service]["command"]:
        if arg.startswith(f"--{name}="):
            return str(arg.split("=", 1)[1])
    raise AssertionError(f"{service} has no --{name}")


def published(service: str) -> dict[int, str]:
    """Container port -> host binding of the service's published ports."""
    out = {}
    for spec in SERVICES[service].get("ports", []):
        host_ip, host_port, container = str(spec).rsplit(":", 2)
        out[int(container)] = f"{host_ip}:{host_port}"
    return out


def service_port(url_or_target: str) -> tuple[str, int]:
    parsed = urlparse(url_or_target if "//" in url_or_target else f"//{url_or_target}")
    assert parsed.hostname and parsed.port, url_or_target
    return parsed.hostname, parsed.port


def monitor_config() -> Any:
    """The monitor's config exactly as the compose service gets it: the mounted file plus
    the service's environment."""
    argv = SERVICES["monitor"]["command"]
    path = host_path("monitor", argv[argv.index("--config") + 1])
    return parse_config(load_yaml(path), environment("monitor"))


# -- the file itself -----------------------------------------------------------------------

def test_compose_file_matches_the_compose_specification() -> None:
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema (vendors the "
                        "Compose schema; no network needed)")
    import check_jsonschema
    import jsonschema

    schema_path = (Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
                   / "compose-spec.json")
    schema = json.loads(schema_path.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_stack_has_every_part_the_issue_asks_for() -> None:
    images = {name: str(s.get("image", "")) for name, s in SERVICES.items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert "broker,controller" in environment("kafka")["KAFKA_PROCESS_ROLES"]  # KRaft
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["alertmanager"].startswith("prom/alertmanager:")
    assert images["grafana"].startswith("grafana/grafana:")
    assert {"monitor", "producer", "webhook-echo", "kafka-init"} <= set(SERVICES)
    for name, image in images.items():  # pinned, so `up` today and next year agree
        if image and not image.startswith("monitor:"):
            assert ":" in image and not image.endswith(":latest"), name


def test_every_mounted_file_exists_in_the_repo() -> None:
    for name in SERVICES:
        for target, source in mounts(name).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
            assert ROOT in source.parents, f"{name}: {source} is outside the repository"


def test_builds_point_at_the_dockerfile_and_its_context() -> None:
    built = [n for n, s in SERVICES.items() if "build" in s]
    assert {"monitor", "producer"} <= set(built)
    for name in built:
        build = SERVICES[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_dependencies_exist_and_their_conditions_can_be_met() -> None:
    for name, svc in SERVICES.items():
        deps = svc.get("depends_on", {})
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) \
            else deps
        for dep, spec in deps.items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            cond = spec["condition"]
            if cond == "service_healthy":
                hc = SERVICES[dep].get("healthcheck")
                has_own = dep in ("monitor",)  # the image's HEALTHCHECK
                assert (hc and not hc.get("disable")) or has_own, f"{dep} has no healthcheck"
            if cond == "service_completed_successfully":
                assert SERVICES[dep].get("restart") == "no", f"{dep} must run once"


def test_ports_are_published_on_loopback_only() -> None:
    for name in SERVICES:
        for container, binding in published(name).items():
            assert binding.startswith("127.0.0.1:"), f"{name}:{container} -> {binding}"


# -- the monitor service ---------------------------------------------------------------------

def test_monitor_config_as_mounted_with_its_environment_is_valid() -> None:
    cfg = monitor_config()
    assert cfg.http.host == "0.0.0.0"
    assert cfg.http.port in published("monitor")
    # the image declares /var/lib/monitor; the compose file puts the named volume there
    assert cfg.checkpoint.state_dir == "/var/lib/monitor"
    assert any(v.split(":")[1] == cfg.checkpoint.state_dir
               for v in SERVICES["monitor"]["volumes"])
    for r in cfg.alerts.receivers:
        if r.secret_env:
            assert environment("monitor").get(r.secret_env), f"{r.secret_env} not set"


def test_monitor_reaches_kafka_on_its_advertised_listener() -> None:
    cfg = monitor_config()
    kafka = environment("kafka")
    advertised = {item.split("://", 1)[1]
                  for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert cfg.kafka.bootstrap_servers in advertised
    host, port = service_port(str(cfg.kafka.bootstrap_servers))
    assert host in SERVICES
    assert f"://:{port}" in kafka["KAFKA_LISTENERS"]


def test_kafka_kraft_settings_are_consistent() -> None:
    import base64

    kafka = environment("kafka")
    raw = base64.urlsafe_b64decode(kafka["CLUSTER_ID"] + "==")
    assert len(raw) == 16, "a KRaft cluster id is a base64 UUID"
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
                     .split(","))
    assert set(listeners) <= set(protocols)
    controller = kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]
    voter_port = kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].rsplit(":", 1)[1]
    assert listeners[controller] == f":{voter_port}"
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # one broker


def test_topics_the_monitor_reads_are_created_before_it_starts() -> None:
    cfg = monitor_config()
    script = SERVICES["kafka-init"]["command"][0]
    loop = re.search(r"for t in ([^;]+);", script)
    assert loop, script
    created = set(loop.group(1).split())
    assert set(cfg.kafka.topics) | {cfg.kafka.feedback_topic} <= created
    assert "--bootstrap-server kafka:9092" in script
    partitions = int(re.search(r"--partitions (\d+)", script).group(1))  # type: ignore[union-attr]
    assert partitions >= 1


def test_monitor_health_check_and_stop_grace_fit_the_daemon() -> None:
    cfg = monitor_config()
    grace = SERVICES["monitor"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > cfg.checkpoint.shutdown_timeout_s


# -- the producer ----------------------------------------------------------------------------

def test_producer_command_parses_and_feeds_the_monitors_topic() -> None:
    svc = SERVICES["producer"]
    assert svc["entrypoint"] == ["python", "-m", "monitor.tools.produce"]
    args = produce.build_parser().parse_args(svc["command"])
    cfg = monitor_config()
    assert args.bootstrap == cfg.kafka.bootstrap_servers
    assert args.topic in cfg.kafka.topics
    assert args.events > 0 and args.rate > 0
    assert svc["healthcheck"] == {"disable": True}  # it serves no /healthz


# -- Prometheus, Alertmanager, Grafana, webhook echo -----------------------------------------

def test_prometheus_scrapes_the_monitor_and_loads_the_mounted_rules() -> None:
    prom_cfg_path = host_path("prometheus", flag("prometheus", "config.file"))
    prom = load_yaml(prom_cfg_path)
    cfg = monitor_config()
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    assert f"monitor:{cfg.http.port}" in targets
    for rule_file in prom["rule_files"]:
        assert host_path("prometheus", rule_file) == DEPLOY / "prometheus" / "rules.yml"
    for am in prom["alerting"]["alertmanagers"]:
        for sc in am["static_configs"]:
            for target in sc["targets"]:
                host, port = service_port(target)
                assert host == "alertmanager" and port in published("alertmanager")


def test_prometheus_scrape_path_is_served_by_the_daemon() -> None:
    prom = load_yaml(host_path("prometheus", flag("prometheus", "config.file")))
    require_routes({job.get("metrics_path", "/metrics") for job in prom["scrape_configs"]},
                   "deploy/prometheus/prometheus.yml")


def test_promtool_check_config_with_the_compose_mounts(tmp_path: Path) -> None:
    promtool = tool("promtool", "apt-get install -y prometheus")
    prom = load_yaml(host_path("prometheus", flag("prometheus", "config.file")))
    # point rule_files at the files compose mounts there, then let promtool load them
    prom["rule_files"] = [str(host_path("prometheus", p)) for p in prom["rule_files"]]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(prom))
    out = subprocess.run([promtool, "check", "config", str(local)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    rules = load_yaml(DEPLOY / "prometheus" / "rules.yml")
    expected = sum(len(g["rules"]) for g in rules["groups"])
    assert re.search(rf"SUCCESS: {expected} rules found", out.stdout + out.stderr), out.stdout


def test_amtool_check_config() -> None:
    amtool = tool("amtool", "apt-get install -y prometheus-alertmanager")
    path = host_path("alertmanager", flag("alertmanager", "config.file"))
    out = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alerts_reach_the_webhook_echo() -> None:
    am = load_yaml(host_path("alertmanager", flag("alertmanager", "config.file")))
    echo_port = int(environment("webhook-echo")["ECHO_PORT"])
    urls = [w["url"] for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert urls
    for url in urls:
        assert service_port(url) == ("webhook-echo", echo_port)
    used = {am["route"]["receiver"]} | {r["receiver"] for r in am["route"].get("routes", [])}
    assert used <= {r["name"] for r in am["receivers"]}
    # the monitor's own receivers: the echo and Alertmanager's v2 API, both compose services
    for r in monitor_config().alerts.receivers:
        host, port = service_port(r.url)
        assert host in SERVICES
        if host == "webhook-echo":
            assert port == echo_port
        if r.type == "alertmanager":
            assert (host, port) == ("alertmanager", 9093)
            assert urlparse(r.url).path == "/api/v2/alerts"


def test_grafana_provisions_prometheus_and_the_generated_dashboards() -> None:
    prov = host_path("grafana", "/etc/grafana/provisioning")
    ds = load_yaml(prov / "datasources" / "prometheus.yml")["datasources"]
    assert [d["type"] for d in ds] == ["prometheus"]
    assert service_port(ds[0]["url"]) == ("prometheus", 9090)
    assert 9090 in published("prometheus")
    providers = load_yaml(prov / "dashboards" / "monitor.yml")["providers"]
    dash_dir = host_path("grafana", providers[0]["options"]["path"])
    assert dash_dir == ROOT / "dashboards"
    boards = sorted(dash_dir.glob("*.json"))
    assert len(boards) >= 2
    for board in boards:  # every dashboard selects its datasource by type, not a fixed uid
        variables = json.loads(board.read_text())["templating"]["list"]
        assert any(v["type"] == "datasource" and v["query"] == ds[0]["type"] for v in variables)
    home = environment("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home).is_file()


def test_webhook_echo_logs_posts_and_answers_health_checks(tmp_path: Path) -> None:
    port = free_port()
    script = host_path("webhook-echo", SERVICES["webhook-echo"]["command"][1])
    log = tmp_path / "echo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=out,
                                stderr=subprocess.STDOUT,
                                env={"ECHO_HOST": "127.0.0.1", "ECHO_PORT": str(port),
                                     "PYTHONUNBUFFERED": "1"})
    try:
        def health() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(health, 10, "webhook echo up", every_s=0.1)
        body = json.dumps({"status": "firing", "alerts": [{"labels": {"a": "b"}}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/hook", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-Monitor-Signature": "sha256=abc"})
        with urllib.request.urlopen(req, timeout=2) as r:
            assert r.status == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and '"firing"' not in log.read_text():
            time.sleep(0.05)
        record = next(json.loads(line) for line in log.read_text().splitlines()
                      if line.startswith("{"))
        assert record["path"] == "/hook" and record["body"]["status"] == "firing"
        assert record["headers"]["X-Monitor-Signature"] == "sha256=abc"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_every_alert_rule_routes_to_the_webhook_echo() -> None:
    amtool = tool("amtool", "apt-get install -y prometheus-alertmanager")
    path = host_path("alertmanager", flag("alertmanager", "config.file"))
    rules = load_yaml(DEPLOY / "prometheus" / "rules.yml")
    label_sets = [[f"alertname={r['alert']}", *(f"{k}={v}" for k, v in r["labels"].items())]
                  for g in rules["groups"] for r in g["rules"] if "alert" in r]
    # and what the monitor's own `alertmanager` receiver posts
    label_sets += [[f"alertname={name}", f"kind={kind}", "segment=fuel"]
                   for kind, name in _ALERTNAMES.items()]
    for labels in label_sets:
        out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                              "--verify.receivers=webhook-echo", *labels],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, (labels, out.stdout + out.stderr)
