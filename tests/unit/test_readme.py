"""The README documents what the code does: config reference, metrics, commands."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import AlertsConfig, DriftConfig, ScoreConfig
from monitor.events import Event
from monitor.repartition.report import RouterReport
from monitor.score.engine import Engine
from monitor.sinks.metrics import Metrics, PartitionView, ProcessView
from monitor.tools.config_reference import render

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_config_reference_is_current() -> None:
    assert render() in README, "run: python -m monitor.tools.config_reference --write README.md"


def _exported() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, label names) of every family a populated daemon registry exposes."""
    eng = Engine(ScoreConfig(warmup=20, k=2), DriftConfig(), segmented=True)
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    eng.process([Event(id=str(i), segment="s") for i in range(40)],
                x / np.linalg.norm(x, axis=1, keepdims=True))
    reg = CollectorRegistry()
    m = Metrics(reg, view=lambda: ProcessView([PartitionView("tx", 0, eng, lag=1)], 0.5, 0,
                                              (0, 0)))
    m.consumed.labels("tx", "0").inc()
    m.scored.labels("tx", "0").inc()
    m.dead_lettered.labels("tx", "0").inc()
    router = RouterReport(m, AlertsConfig())  # a repartition router's own series
    router.routed({("tx", 0): 1}, {("tx", 0): 1}, [], 0.01)
    router.lags({("tx", 0): 0})
    text = generate_latest(reg).decode()
    out = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", text, re.M):
        labels = set()
        for found in re.findall(rf"^{name}(?:_bucket|_sum|_count)?{{([^}}]*)}}", text, re.M):
            labels |= {kv.split("=")[0] for kv in found.split(",") if kv} - {"le"}
        out[name] = (kind, frozenset(labels))
    return out


def test_metrics_catalogue_matches_the_registry_both_ways() -> None:
    rows = re.findall(r"^\| `(monitor_\w+)` \| (\w+) \|([^|]*)\|", README, re.M)
    documented = {n: (k, frozenset(x.strip() for x in labels.split(",") if x.strip()))
                  for n, k, labels in rows}
    exported = _exported()
    assert set(documented) == set(exported), (set(documented) ^ set(exported))
    for name, (kind, labels) in exported.items():
        assert documented[name][0] == kind, (name, documented[name], kind)
        assert not labels or documented[name][1] == labels, (name, documented[name], labels)


def test_the_two_setup_commands_are_documented() -> None:
    assert "make demo" in README and "make test" in README


def test_deployment_walks_through_compose_then_kubernetes() -> None:
    deploy = README.index("\n## Deployment")
    compose = README.index("\n### Compose", deploy)
    kubernetes = README.index("\n### Kubernetes", deploy)
    assert deploy < compose < kubernetes < README.index("\n## ", deploy + 1)
