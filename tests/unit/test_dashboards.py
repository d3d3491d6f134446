"""Dashboards are generated from code: committed JSON matches, and every query is real."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import AlertsConfig
from monitor.repartition.report import RouterReport
from monitor.sinks.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("dash_gen", ROOT / "dashboards" / "generate.py")
assert spec is not None and spec.loader is not None
gen = importlib.util.module_from_spec(spec)
sys.modules["dash_gen"] = gen  # dataclasses resolve their module through sys.modules
spec.loader.exec_module(gen)


def _exported() -> set[str]:
    reg = CollectorRegistry()
    RouterReport(Metrics(reg), AlertsConfig())  # the router's series are on the same pages
    names = set(re.findall(r"^# TYPE (\S+) (\S+)", generate_latest(reg).decode(), re.M))
    out = set()
    for name, kind in names:
        out.add(name)
        if kind == "histogram":
            out |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return out


def test_committed_json_is_what_the_generator_makes() -> None:
    for name, text in gen.render().items():
        assert (ROOT / "dashboards" / name).read_text() == text, (
            f"dashboards/{name} differs: run `python dashboards/generate.py`")


def test_every_panel_has_unit_description_and_known_metrics() -> None:
    exported = _exported()
    for name in gen.DASHBOARDS:
        dash = json.loads((ROOT / "dashboards" / name).read_text())
        assert dash["templating"]["list"][0]["type"] == "datasource"
        for panel in dash["panels"]:
            assert panel["description"], panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
            for target in panel["targets"]:
                used = set(re.findall(r"\bmonitor_[a-z_]+", target["expr"]))
                assert used and used <= exported, (panel["title"], used - exported)
