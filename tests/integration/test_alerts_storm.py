"""Must-show 3 and 4 over real HTTP: storms stay bounded; every signature verifies."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import httpx
import pytest
from alerts_helpers import Receiver

from monitor.events import Alert, Score
from monitor.sinks.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertsConfig,
    AlertSink,
    ReceiverConfig,
    verify,
)
from monitor.sinks.alerts.explain import explain_outlier

SECRET = b"storm-secret"
RATE_LIMIT = 10
EXAMPLES = 5


@pytest.mark.timeout(60)
def test_ten_thousand_outliers_in_ten_seconds_are_a_bounded_few_notifications(
    tmp_path: Path,
) -> None:
    receiver = Receiver(secret=SECRET).start()
    cfg = AlertsConfig(
        receivers=(
            ReceiverConfig(
                name="hook",
                url=receiver.url,
                secret=SECRET.decode(),
                rate_limit=RATE_LIMIT,
                rate_limit_window_seconds=60.0,
            ),
        ),
        group_wait_seconds=1.0,
        group_interval_seconds=1.0,
        max_examples=EXAMPLES,
        poll_interval_seconds=0.05,
        allow_fields=("merchant",),
    )
    sink = AlertSink(cfg, tmp_path)
    rng = random.Random(7)
    risks = []
    sink.start()
    try:
        t0 = time.monotonic()
        for batch in range(10):  # 10 x 1,000 outliers, paced over about 3 s
            for i in range(1000):
                risk = rng.random()
                risks.append(risk)
                score = Score(f"e{batch}-{i}", "card-present", 3.0, 1e-4, True, 0.0, 0.1, risk, 0)
                sink.submit(  # the observer's own builder: the shape production sends
                    explain_outlier(
                        "tx",
                        score,
                        time.time(),
                        features=[{"field": "amount", "z": 8.0, "value": 98765.4321}],
                        fields={"merchant": "ACME", "card_number": "4111-1111-1111-1111"},
                    )
                )
            time.sleep(0.3)
        assert time.monotonic() - t0 < 10.0
        assert sink.flush(timeout=15.0)
    finally:
        sink.stop(timeout=2.0)
        receiver.stop()

    docs = receiver.accepted
    assert 0 < len(docs) <= RATE_LIMIT
    assert sum(doc["count"] for doc in docs) == 10_000
    assert sum(a["count"] for doc in docs for a in doc["alerts"]) == 10_000
    assert receiver.rejected_signatures == 0
    top = sorted(risks, reverse=True)[:EXAMPLES]
    worst_seen = sorted(
        (e["risk"] for d in docs for a in d["alerts"] for e in a["examples"]), reverse=True
    )[:EXAMPLES]
    assert worst_seen == top  # the very worst events are among the examples
    for doc in docs:
        for alert in doc["alerts"]:
            assert len(alert["examples"]) <= EXAMPLES
            assert all(e["fields"] == {"merchant": "ACME"} for e in alert["examples"])
            assert all(e["event_id"].startswith("e") for e in alert["examples"])
            text = json.dumps(alert)  # neither the card number nor the amount got out
            assert "4111-1111" not in text and "98765" not in text


@pytest.mark.timeout(60)
def test_receiver_verifies_every_signature_and_a_tampered_body_fails(tmp_path: Path) -> None:
    receiver = Receiver(secret=SECRET).start()
    cfg = AlertsConfig(
        receivers=(
            ReceiverConfig(name="good", url=receiver.url, secret=SECRET.decode(), kinds=("drift",)),
            ReceiverConfig(
                name="wrong-key", url=receiver.url, secret="not-the-secret", kinds=("operational",)
            ),
        ),
        group_wait_seconds=0.0,
        poll_interval_seconds=0.05,
    )
    sink = AlertSink(cfg, tmp_path)
    try:
        for seg in ("a", "b", "c"):
            sink.submit(Alert("drift", "firing", {"segment": seg}))
            sink.submit(Alert("operational", "firing", {"segment": seg, "check": "dlq"}))
        assert sink.flush(timeout=10.0)
    finally:
        sink.stop(timeout=2.0)

    try:
        assert len(receiver.raw) == 3  # every request of "good" verified (else 401)
        for headers, body in receiver.raw:
            assert verify(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
        assert receiver.rejected_signatures == 3  # the wrong key never gets through ...
        assert sink.counters["wrong-key"].failed == 3  # ... and 401 is a counted failure
        assert sink.counters["good"].sent == 3

        headers, body = receiver.raw[0]
        tampered = body.replace(b'"firing"', b'"resolved"', 1)
        assert tampered != body
        assert not verify(SECRET, tampered, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
        replay = {k: headers[k] for k in (TIMESTAMP_HEADER, SIGNATURE_HEADER)}
        with httpx.Client(timeout=5.0) as client:  # the receiver itself refuses it
            answer = client.post(receiver.url, content=tampered, headers=replay)
            assert answer.status_code == 401
            assert client.post(receiver.url, content=body, headers=replay).status_code == 200
    finally:
        receiver.stop()
