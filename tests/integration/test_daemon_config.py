"""Kafka, checkpoint and HTTP config: defaults keep old configs valid, security settings
pass through, secrets come from the environment or a file and never show in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError

FIELDS = {"numeric": [{"name": "amount"}]}


def test_defaults_parse_without_kafka_section() -> None:
    cfg = parse_config({"fields": FIELDS})
    assert cfg.kafka.embedded and cfg.kafka.changelog == "monitor.changelog"
    assert cfg.http.host == "127.0.0.1" and cfg.checkpoint.every_events > 0


def test_sasl_ssl_pass_through_with_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = parse_config(
        {"fields": FIELDS, "kafka": {"bootstrap_servers": "k1:9093,k2:9093",
                                     "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                                     "sasl_plain_username": "monitor",
                                     "ssl_cafile": "/etc/ca.pem"}},
        env={"MONITOR__KAFKA__SASL_PLAIN_PASSWORD": f"file:{secret}"})
    opts = cfg.kafka.client_options("k1:9093")
    assert opts["sasl_plain_password"] == "s3cret"
    assert opts["security_protocol"] == "SASL_SSL" and opts["ssl_cafile"] == "/etc/ca.pem"
    assert "s3cret" not in repr(cfg)


def test_unknown_kafka_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap"):
        parse_config({"fields": FIELDS, "kafka": {"bootstrap": "x"}})


def test_a_pattern_that_would_read_our_own_output_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"also matches \['tx\.scored'\]"):
        parse_config({"fields": FIELDS, "kafka": {"pattern": r"tx\..*",
                                                  "scored_topic": "tx.scored"}})
    with pytest.raises(ConfigError, match="not a valid regex"):
        parse_config({"fields": FIELDS, "kafka": {"pattern": "tx[("}})
    ok = parse_config({"fields": FIELDS, "kafka": {"pattern": r"tx\.(cards|wires)$"}})
    assert ok.kafka.pattern is not None


def test_backoff_is_capped_jittered_and_gives_up_at_the_deadline() -> None:
    from monitor.errors import FatalError
    from monitor.kafka_clients import with_backoff

    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    def connect() -> None:
        now[0] += 0.01
        raise OSError("refused")

    with pytest.raises(FatalError, match="cannot reach the Kafka broker"):
        with_backoff(connect, "test", deadline_s=20, backoff_max_s=2, sleep=sleep,
                     clock=lambda: now[0])
    assert max(waits) <= 2 and waits[0] <= 0.2 and 19 <= now[0] <= 21
    assert len(waits) > 8  # retried all along, not once


def test_backoff_returns_once_connected() -> None:
    from monitor.kafka_clients import with_backoff

    calls = iter([OSError("no"), OSError("no"), "ok"])

    def connect() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert with_backoff(connect, "t", 10, 1, sleep=lambda s: None) == "ok"
