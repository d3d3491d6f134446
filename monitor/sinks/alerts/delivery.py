"""One HTTP attempt per call, and the retry policy around it.

Transient answers (429, 408, 5xx, timeouts, refused connections) are retried with capped
exponential backoff and jitter, and never sooner than the receiver's ``Retry-After``. Any
other 4xx (and an unexpected 3xx) means the request itself is wrong, so retrying cannot
help: the notification goes to the failed state, counted and logged.
"""

from __future__ import annotations

import logging
import random
import ssl
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from monitor.config import AlertsConfig, ReceiverConfig
from monitor.sinks.alerts.payloads import JSON, render
from monitor.sinks.alerts.signing import sign

log = logging.getLogger(__name__)

NOTIFICATION_ID_HEADER = "X-Monitor-Notification-Id"
USER_AGENT = "monitor-alerts/1"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    result: Literal["delivered", "retry", "failed"]
    error: str | None = None
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    >>> parse_retry_after("7", 0.0)
    7.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4.0)
    6.0
    >>> parse_retry_after("soon", 0.0) is None
    True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def classify(status: int, headers: httpx.Headers | dict[str, str], now: float) -> Outcome:
    """Map an HTTP status to delivered / retry / failed.

    >>> [classify(s, {}, 0.0).result for s in (200, 204, 429, 503, 400, 404, 302)]
    ['delivered', 'delivered', 'retry', 'retry', 'failed', 'failed', 'failed']
    """
    if 200 <= status < 300:
        return Outcome("delivered")
    if status in (408, 429) or status >= 500:
        wait = parse_retry_after(headers.get("retry-after"), now)
        return Outcome("retry", f"HTTP {status}", wait)
    return Outcome("failed", f"HTTP {status}")


def retry_delay(
    attempts: int, retry_after: float | None, config: AlertsConfig, rng: random.Random
) -> float:
    """Delay before the next try after `attempts` failed ones (1-based).

    Capped exponential backoff, of which a `jitter` share is drawn at random so receivers
    coming back are not hit by every monitor at the same instant; a ``Retry-After`` is a
    floor (bounded by the maximum age, after which the notification expires anyway).

    >>> cfg = AlertsConfig(backoff_initial_seconds=1, backoff_max_seconds=8, jitter=0)
    >>> [retry_delay(n, None, cfg, random.Random(0)) for n in (1, 2, 3, 4, 5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    >>> retry_delay(1, 30.0, cfg, random.Random(0))
    30.0
    """
    exponent = min(max(0, attempts - 1), 64)
    base = min(
        config.backoff_max_seconds,
        config.backoff_initial_seconds * config.backoff_multiplier**exponent,
    )
    delay = base * (1.0 - config.jitter * rng.random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.max_age_seconds))
    return delay


def _tls(receiver: ReceiverConfig) -> ssl.SSLContext | bool:
    if not receiver.verify_tls:
        log.warning("alerts receiver %s: TLS verification is OFF", receiver.name)
        return False
    return ssl.create_default_context(cafile=receiver.ca_file)


class Sender:
    """Posts rendered, signed notifications to one receiver over a kept-alive client."""

    def __init__(
        self,
        receiver: ReceiverConfig,
        secret: bytes | None,
        config: AlertsConfig,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.receiver = receiver
        self.config = config
        self._secret = secret
        self._client = httpx.Client(
            timeout=receiver.timeout_seconds,
            verify=_tls(receiver),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, **receiver.headers},
        )

    def send(self, doc: dict[str, Any], now: float) -> Outcome:
        body = render(doc, self.receiver.type, now, self.config)
        headers = {"Content-Type": JSON, NOTIFICATION_ID_HEADER: str(doc["id"])}
        if self._secret is not None:
            headers.update(sign(self._secret, body, now))
        try:
            response = self._client.post(self.receiver.url, content=body, headers=headers)
        except httpx.TimeoutException as err:
            return Outcome("retry", f"timeout: {type(err).__name__}")
        except httpx.TransportError as err:
            return Outcome("retry", f"{type(err).__name__}: {err}")
        return classify(response.status_code, response.headers, now)

    def close(self) -> None:
        self._client.close()
