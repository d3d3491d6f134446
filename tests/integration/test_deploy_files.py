"""Every file under deploy/: YAML parses, and every metric name it mentions is one the daemon
exports (rules, runbook, manifests, dashboards' provisioning alike)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.deploy_helpers import DEPLOY, exported_metrics, metric_tokens

YAML_FILES = sorted(p for ext in ("*.yml", "*.yaml") for p in DEPLOY.rglob(ext))
TEXT_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in
                    {".yml", ".yaml", ".md", ".service", ".env", ""} and "." not in p.stem[:1])


def _id(p: Path) -> str:
    return str(p.relative_to(DEPLOY))


def test_the_deploy_tree_has_every_deliverable() -> None:
    for rel in ("Dockerfile", "compose.yaml", "k8s/kustomization.yaml",
                "systemd/monitor.service", "alertmanager/alertmanager.yml", "RUNBOOK.md",
                "prometheus/prometheus.yml", "prometheus/rules.yml", "config/monitor.yaml"):
        assert (DEPLOY / rel).is_file(), rel


@pytest.mark.parametrize("path", YAML_FILES, ids=_id)
def test_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


def test_metric_names_mentioned_anywhere_in_deploy_are_exported() -> None:
    unknown = {}
    for path in TEXT_FILES:
        missing = metric_tokens(path.read_text()) - exported_metrics()
        if missing:
            unknown[_id(path)] = sorted(missing)
    assert not unknown, unknown
    assert len(TEXT_FILES) >= 10
