"""One frozen, typed configuration tree, read once at start-up and passed down.

Unknown keys are errors (with their dotted path). Environment variables override the file
for deployment: ``MONITOR__SCORE__ALPHA=0.01`` sets ``score.alpha``; values are parsed as
YAML scalars, so ``true``, ``12`` and ``[a, b]`` work. A value ``file:/path`` on a key whose
name ends in ``password``, ``secret`` or ``token`` is read from that file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config.alerts import AlertsConfig
from monitor.config.base import Section, read_secret
from monitor.config.daemon import CheckpointConfig, HttpConfig, KafkaConfig, MetricsConfig
from monitor.config.pipeline import DriftConfig, EmbedConfig, FieldsConfig, ScoreConfig
from monitor.errors import ConfigError

ENV_PREFIX = "MONITOR__"


class MonitorConfig(Section):
    """The whole configuration tree."""

    fields: FieldsConfig
    embed: EmbedConfig = EmbedConfig()
    score: ScoreConfig = ScoreConfig()
    drift: DriftConfig = DriftConfig()
    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()
    kafka: KafkaConfig = KafkaConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    http: HttpConfig = HttpConfig()


def _format_error(err: ValidationError) -> str:
    """One line per offending key (one line in all for a single mistake)."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {msg}")
    if len(lines) == 1:
        return f"invalid configuration: {lines[0]}"
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _secret_from_file(key: str, value: Any) -> Any:
    """A ``file:/path`` value of a key named like a secret, read from its file."""
    if not key.endswith(("password", "secret", "token")):
        return value
    try:
        return read_secret(value)
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from None


def apply_env(tree: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``MONITOR__A__B=value`` variables onto a raw config tree.

    >>> apply_env({"score": {"alpha": 0.001}}, {"MONITOR__SCORE__ALPHA": "0.01"})
    {'score': {'alpha': 0.01}}
    """
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(tree)) or {}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        _set_path(out, path, _secret_from_file(path[-1], value))
    return out


def parse_config(tree: Mapping[str, Any], env: Mapping[str, str] | None = None) -> MonitorConfig:
    """Validate a raw tree (plus environment overrides) into a `MonitorConfig`."""
    raw = apply_env(dict(tree), env if env is not None else {})
    try:
        return MonitorConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> MonitorConfig:
    """Read a YAML file (or nothing) and the process environment into a `MonitorConfig`."""
    tree: Any = {}
    if path is not None:
        try:
            tree = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as err:
            raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config {path} is not valid YAML: {err}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
    return parse_config(tree, dict(os.environ) if env is None else env)
