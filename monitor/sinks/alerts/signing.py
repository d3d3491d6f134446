"""HMAC-SHA256 request signing, and the check a receiver runs.

The signature covers ``"<timestamp>." + body`` so a captured request cannot be replayed
later with a fresh timestamp, and a receiver rejects timestamps outside a tolerance.
Headers::

    X-Monitor-Timestamp: 1700000000
    X-Monitor-Signature: v1=<hex digest>[,v1=<hex digest of another key>]
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterable, Mapping

from monitor.config import ReceiverConfig
from monitor.config.base import SECRET_FILE_PREFIX, read_secret
from monitor.errors import ConfigError

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Monitor-Timestamp"
SIGNATURE_HEADER = "X-Monitor-Signature"
SCHEME = "v1"


def _digest(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: float) -> dict[str, str]:
    """Headers to add to a request carrying `body`.

    >>> sign(b"k", b"{}", 1700000000.9)[TIMESTAMP_HEADER]
    '1700000000'
    """
    ts = str(int(timestamp))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"{SCHEME}={_digest(secret, ts, body)}"}


def verify(
    secrets: bytes | Iterable[bytes],
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance_seconds: float = 300.0,
) -> bool:
    """True when `signature` is a valid v1 HMAC of `timestamp` + `body` under any secret.

    Several secrets allow key rotation. Comparison is constant-time.

    >>> h = sign(b"k", b"{}", 1700000000)
    >>> verify(b"k", b"{}", h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=1700000010)
    True
    >>> verify(b"k", b"{ }", h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=1700000010)
    False
    """
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        return False
    keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
    offered = [
        part.strip()[len(SCHEME) + 1 :]
        for part in signature.split(",")
        if part.strip().startswith(SCHEME + "=")
    ]
    ok = False
    for key in keys:
        expected = _digest(key, timestamp, body)
        for candidate in offered:
            ok |= hmac.compare_digest(expected, candidate)
    return ok


def load_secret(receiver: ReceiverConfig, env: Mapping[str, str]) -> bytes | None:
    """The receiver's signing secret from config, environment or file; None when unset."""
    if receiver.secret:
        return receiver.secret.encode()
    if receiver.secret_env:
        value = env.get(receiver.secret_env)
        if not value:
            raise ConfigError(
                f"alerts receiver {receiver.name}: environment variable "
                f"{receiver.secret_env} is not set"
            )
        return value.encode()
    if receiver.secret_file:
        try:
            value = str(read_secret(SECRET_FILE_PREFIX + receiver.secret_file))
        except ValueError as err:
            raise ConfigError(f"alerts receiver {receiver.name}: secret_file: {err}") from None
        if not value:
            raise ConfigError(f"alerts receiver {receiver.name}: secret_file is empty")
        return value.encode()
    if receiver.type == "webhook":
        log.warning("alerts receiver %s has no secret: requests are unsigned", receiver.name)
    return None
