"""The README documents what the code does: config reference, metrics, commands."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from monitor.config_reference import render
from monitor.sinks.metrics import Metrics

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_config_reference_is_current() -> None:
    assert render() in README, "run: python -m monitor.config_reference --write README.md"


def test_every_exported_metric_is_in_the_catalogue() -> None:
    reg = CollectorRegistry()
    Metrics(reg)
    names = set(re.findall(r"^# TYPE (\S+)", generate_latest(reg).decode(), re.M))
    missing = {n for n in names if n not in README}
    assert not missing, missing


def test_the_two_setup_commands_are_documented() -> None:
    assert "make demo" in README and "make test" in README
