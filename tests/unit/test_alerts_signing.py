"""HMAC signing and verification; secrets from config, environment and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ReceiverConfig
from monitor.errors import ConfigError
from monitor.sinks.alerts.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_secret,
    sign,
    verify,
)

BODY = b'{"schema":"monitor.alerts/v1","count":3}'


def test_verify_accepts_own_signature_and_rejects_tampering() -> None:
    h = sign(b"s3cret", BODY, 1000.0)
    ts, sig = h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER]
    assert verify(b"s3cret", BODY, ts, sig, now=1000.0)
    assert not verify(b"s3cret", BODY.replace(b"3", b"4"), ts, sig, now=1000.0)
    assert not verify(b"other", BODY, ts, sig, now=1000.0)
    assert not verify(b"s3cret", BODY, str(int(ts) + 1), sig, now=1000.0)  # ts is signed
    assert not verify(b"s3cret", BODY, ts, sig, now=2000.0)  # replayed too late
    assert not verify(b"s3cret", BODY, None, sig, now=1000.0)
    assert not verify(b"s3cret", BODY, "x", sig, now=1000.0)
    assert not verify(b"s3cret", BODY, ts, "v0=abc", now=1000.0)


def test_key_rotation_accepts_either_secret() -> None:
    h = sign(b"new", BODY, 5.0)
    assert verify([b"old", b"new"], BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=5.0)


def test_secret_sources(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/"
    assert load_secret(ReceiverConfig(name="a", url=url, secret="x"), {}) == b"x"
    rc = ReceiverConfig(name="a", url=url, secret_env="HOOK_SECRET")
    assert load_secret(rc, {"HOOK_SECRET": "y"}) == b"y"
    with pytest.raises(ConfigError, match="HOOK_SECRET"):
        load_secret(rc, {})
    path = tmp_path / "secret"
    path.write_text("z\n")
    assert load_secret(ReceiverConfig(name="a", url=url, secret_file=str(path)), {}) == b"z"
    with pytest.raises(ConfigError, match="secret_file"):
        load_secret(ReceiverConfig(name="a", url=url, secret_file=str(tmp_path / "no")), {})
    assert load_secret(ReceiverConfig(name="a", url=url), {}) is None
