"""Alert rules: promtool checks and unit tests, runbook links, and metric names that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import AlertsConfig
from monitor.repartition.report import RouterReport
from monitor.sinks.metrics import Metrics
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULES = yaml.safe_load((PROM / "rules.yml").read_text())
ALERTS = [r for g in RULES["groups"] for r in g["rules"] if "alert" in r]


def _promtool() -> str:
    return require_tool("promtool", hint="apt-get install -y prometheus; `make test` does")


def test_promtool_check_rules() -> None:
    out = subprocess.run([_promtool(), "check", "rules", str(PROM / "rules.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_rule_unit_tests_cover_every_alert() -> None:
    tests = yaml.safe_load((PROM / "rules.test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]
              if case.get("exp_alerts")}
    assert tested == {a["alert"] for a in ALERTS}
    out = subprocess.run([_promtool(), "test", "rules", "rules.test.yml"], cwd=PROM,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_check_config() -> None:
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    # the compose file mounts rules.yml at this path; check the config with a local copy
    cfg["rule_files"] = [str(PROM / "rules.yml")]
    local = PROM.parent / ".prometheus-check.yml"
    try:
        local.write_text(yaml.safe_dump(cfg))
        out = subprocess.run([_promtool(), "check", "config", str(local)], capture_output=True,
                             text=True, timeout=60)
    finally:
        local.unlink(missing_ok=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("alert", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_every_alert_is_complete_and_links_to_its_runbook_section(alert: dict) -> None:
    assert alert.get("for"), "every alert needs for:"
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}
    ann = alert["annotations"]
    assert ann["summary"] and ann["description"]
    anchor = ann["runbook_url"].split("#", 1)[1]
    headings = re.findall(r"^## (.+)$", (ROOT / "deploy" / "RUNBOOK.md").read_text(), re.M)
    assert anchor in {h.strip().lower().replace(" ", "-") for h in headings}


def test_rules_only_use_metrics_the_daemon_exports() -> None:
    reg = CollectorRegistry()
    RouterReport(Metrics(reg), AlertsConfig())  # a repartition router's series too
    exported = set(re.findall(r"^# TYPE (\S+)", generate_latest(reg).decode(), re.M))
    exported |= {f"{n}_total" for n in exported} | {"up"}
    used = {m for a in ALERTS for m in re.findall(r"\b(monitor_[a-z_]+|up)\b", a["expr"])}
    assert used <= exported, used - exported
