"""The configuration tree: one frozen, typed model per section, unknown keys rejected.

Sections live by what reads them (`pipeline`, `daemon`, `alerts`), all on the one base in
`base`; `load` assembles the tree and reads it from YAML and the environment. This package
imports nothing of the daemon, so every layer may import it.
"""

from monitor.config.alerts import ALL_KINDS, AlertsConfig, Kind, ReceiverConfig
from monitor.config.base import Section, read_secret
from monitor.config.daemon import (
    EMBEDDED,
    CheckpointConfig,
    HttpConfig,
    KafkaConfig,
    MetricsConfig,
    check_address,
)
from monitor.config.load import ENV_PREFIX, MonitorConfig, apply_env, load_config, parse_config
from monitor.config.pipeline import (
    DriftConfig,
    EmbedConfig,
    FieldsConfig,
    NumericField,
    ScoreConfig,
)

__all__ = [
    "ALL_KINDS", "EMBEDDED", "ENV_PREFIX", "AlertsConfig", "CheckpointConfig", "DriftConfig",
    "EmbedConfig", "FieldsConfig", "HttpConfig", "KafkaConfig", "Kind", "MetricsConfig",
    "MonitorConfig", "NumericField", "ReceiverConfig", "ScoreConfig", "Section", "apply_env",
    "check_address", "load_config", "parse_config", "read_secret",
]
