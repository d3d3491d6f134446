"""Shared facts for the deployment tests: what the code serves and exports, read from the code
itself, so a manifest that names a route, port, metric or config key the daemon does not
have fails a test."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import AlertsConfig
from monitor.repartition.report import RouterReport
from monitor.sinks.metrics import Metrics
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC_TOKEN = re.compile(r"\bmonitor_[a-z0-9_]+\b")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path_or_text: Path | str) -> list[Any]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return [d for d in yaml.safe_load_all(text) if d is not None]


@cache
def served_routes() -> frozenset[str]:
    """Paths the daemon registers on its HTTP server: every `<x>.route("/path", ...)` call
    in monitor/ (the server answers 404 to anything else)."""
    routes: set[str] = set()
    for path in (ROOT / "monitor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "route" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and node.args[0].value.startswith("/")):
                routes.add(node.args[0].value)
    return frozenset(routes)


def require_routes(paths: set[str], where: str) -> None:
    """Every path a deploy file probes or scrapes must be one the daemon serves."""
    missing = paths - served_routes()
    assert not missing, f"{where} uses routes the daemon does not serve: " \
                        f"{sorted(missing)} (served: {sorted(served_routes())})"


@cache
def exported_metrics() -> frozenset[str]:
    """Every series name `Metrics` exposes, with the suffixes Prometheus sees
    (`_total`, `_bucket`/`_sum`/`_count`, `_info`)."""
    reg = CollectorRegistry()
    RouterReport(Metrics(reg), AlertsConfig())  # a repartition router's series too
    text = generate_latest(reg).decode()
    names: set[str] = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        if fam.type == "counter":
            names.add(f"{fam.name}_total")
        elif fam.type == "histogram":
            names |= {f"{fam.name}_{s}" for s in ("bucket", "sum", "count")}
        elif fam.type == "info":
            names.add(f"{fam.name}_info")
    return frozenset(names)


def metric_tokens(text: str) -> set[str]:
    return set(METRIC_TOKEN.findall(text))


def tool(name: str, hint: str) -> str:
    return require_tool(name, hint=hint)
