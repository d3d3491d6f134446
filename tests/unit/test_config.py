import pytest

from monitor.config import load_config, parse_config
from monitor.errors import ConfigError

BASE = {"fields": {"text": ["description"]}}


def test_defaults_are_valid() -> None:
    cfg = parse_config(BASE)
    assert cfg.score.alpha == 0.001
    assert cfg.drift.false_alarm_probability == 0.01


def test_unknown_key_is_an_error_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"score\.alhpa"):
        parse_config({**BASE, "score": {"alhpa": 0.1}})


def test_nested_unknown_key_path() -> None:
    with pytest.raises(ConfigError, match=r"fields\.numeric\.0\.scale"):
        parse_config({"fields": {"numeric": [{"name": "amount", "scale": 2}]}})


def test_out_of_range_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"score\.alpha"):
        parse_config({**BASE, "score": {"alpha": 2}})


def test_nothing_to_embed_is_an_error() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        parse_config({"fields": {"id": "id"}})


def test_environment_overrides_file(tmp_path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("fields:\n  text: [description]\nscore:\n  alpha: 0.001\n")
    cfg = load_config(path, env={"MONITOR__SCORE__ALPHA": "0.05", "OTHER": "x"})
    assert cfg.score.alpha == 0.05


def test_environment_unknown_key_is_rejected(tmp_path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("fields:\n  text: [description]\n")
    with pytest.raises(ConfigError, match=r"score\.nope"):
        load_config(path, env={"MONITOR__SCORE__NOPE": "1"})


def test_config_is_frozen() -> None:
    cfg = parse_config(BASE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError
        cfg.score.alpha = 0.5  # type: ignore[misc]


def test_bad_yaml_and_missing_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml", env={})


def test_missing_secret_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read secret file"):
        parse_config(BASE, env={"MONITOR__KAFKA__SASL_PLAIN_PASSWORD": "file:/nonexistent/x"})


def test_numeric_environment_value_for_a_text_key_stays_text() -> None:
    cfg = parse_config(BASE, env={"MONITOR__KAFKA__SASL_PLAIN_USERNAME": "123"})
    assert cfg.kafka.sasl_plain_username == "123"
