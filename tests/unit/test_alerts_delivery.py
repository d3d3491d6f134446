"""One attempt against a fake transport: status classes, Retry-After, timeouts, headers."""

from __future__ import annotations

import random

import httpx

from monitor.config import AlertsConfig, ReceiverConfig
from monitor.sinks.alerts.delivery import NOTIFICATION_ID_HEADER, Sender, retry_delay
from monitor.sinks.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

DOC = {"id": "n1", "schema": "monitor.alerts/v1", "alerts": []}


def sender(handler: httpx.MockTransport, secret: bytes | None = b"k") -> Sender:
    rc = ReceiverConfig(name="r", url="http://127.0.0.1:9/hook", headers={"X-Team": "fraud"})
    return Sender(rc, secret, AlertsConfig(), transport=handler)


def answer(status: int, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda req: httpx.Response(status, headers=headers or {}))


def test_status_classes() -> None:
    assert sender(answer(202)).send(DOC, 0.0).result == "delivered"
    assert sender(answer(503)).send(DOC, 0.0).result == "retry"
    assert sender(answer(400)).send(DOC, 0.0).result == "failed"
    assert sender(answer(301)).send(DOC, 0.0).result == "failed"


def test_retry_after_is_read() -> None:
    out = sender(answer(429, {"Retry-After": "12"})).send(DOC, 0.0)
    assert (out.result, out.retry_after) == ("retry", 12.0)


def test_timeouts_and_refusals_retry() -> None:
    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    def refused(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    assert sender(httpx.MockTransport(slow)).send(DOC, 0.0).result == "retry"
    out = sender(httpx.MockTransport(refused)).send(DOC, 0.0)
    assert out.result == "retry" and out.error is not None and "ConnectError" in out.error


def test_request_is_signed_and_identified() -> None:
    seen: list[httpx.Request] = []

    def keep(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200)

    sender(httpx.MockTransport(keep)).send(DOC, 1000.0)
    [req] = seen
    h = req.headers
    assert h[NOTIFICATION_ID_HEADER] == "n1" and h["X-Team"] == "fraud"
    assert verify(b"k", req.content, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=1000.0)
    sender(httpx.MockTransport(keep), secret=None).send(DOC, 1000.0)
    assert SIGNATURE_HEADER not in seen[-1].headers


def test_backoff_grows_caps_and_jitters_within_bounds() -> None:
    cfg = AlertsConfig(backoff_initial_seconds=1, backoff_max_seconds=30, jitter=0.5)
    rng = random.Random(3)
    for attempt in range(1, 20):
        base = min(30.0, 2.0 ** (attempt - 1))
        d = retry_delay(attempt, None, cfg, rng)
        assert base * 0.5 <= d <= base
    assert retry_delay(1, 10**9, cfg, rng) == cfg.max_age_seconds
