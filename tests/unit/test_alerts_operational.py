"""Operational alerts from the daemon's own hooks: failing checkpoints and dead-letter rate.

Driven through `Observer` (the hooks the loop calls) with an injected clock: each condition
fires once, is not re-submitted while it fires, and resolves with the same fingerprint.
The last test restarts a real `AlertSink` to show a condition that fired before a restart
still resolves after it.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from monitor.config import FieldsConfig, MonitorConfig
from monitor.events import Alert
from monitor.observer import Observer
from monitor.sinks.alerts import AlertsConfig, AlertSink, ReceiverConfig
from monitor.sinks.alerts.operational import checkpoint_alert, dead_letter_alert
from monitor.sinks.alerts.router import fingerprint
from tests.fakes import ManualClock, RecordingAlerts

T0 = 1_700_000_000.0


def observer(**alerts: object) -> tuple[Observer, list[Alert], ManualClock]:
    cfg = MonitorConfig(fields=FieldsConfig(id="id", categorical=["c"]),
                        alerts=AlertsConfig(**alerts))  # type: ignore[arg-type]
    clock = ManualClock(T0)
    submitted: list[Alert] = []
    return Observer(cfg, clock=clock, alerts=RecordingAlerts(submitted)), submitted, clock


def batch(obs: Observer, topic: str, records: int, dead: int) -> None:
    """One polled batch as the loop reports it: records first, then its dead letters."""
    obs.records(topic, 0, records)
    for _ in range(dead):
        obs.dead_letter(topic, 0)


def test_checkpoint_failure_fires_once_and_resolves_on_the_next_success() -> None:
    obs, submitted, clock = observer()
    obs.checkpointed(0.1, ok=True)
    assert submitted == []  # a success with nothing failing says nothing
    obs.checkpointed(0.1, ok=False)
    clock.now += 5
    obs.checkpointed(0.1, ok=False)  # still failing: no second firing
    [firing] = submitted
    assert (firing.kind, firing.status, firing.labels) == (
        "operational", "firing", {"condition": "checkpoint_failed"})
    assert firing.starts_at == T0 and "stops" in firing.annotations["summary"]
    clock.now += 5
    obs.checkpointed(0.1, ok=True)  # also one with nothing to commit
    obs.checkpointed(0.1, ok=True)
    [_, resolved] = submitted
    assert (resolved.status, resolved.ends_at) == ("resolved", T0 + 10)
    assert fingerprint(resolved) == fingerprint(firing)
    assert resolved.details == {"condition": "checkpoint_failed", "failures": 2}
    assert obs.metrics.checkpoint_failures._value.get() == 2


def test_dead_letter_rate_fires_once_per_topic_and_resolves_with_hysteresis() -> None:
    obs, submitted, clock = observer()
    batch(obs, "tx", 400, 4)  # 1 % of too few records: 4 < 1 % of 500
    assert submitted == []
    batch(obs, "tx", 100, 1)  # 5 of 500: fires
    [firing] = submitted
    assert firing.labels == {"condition": "dead_letter_rate", "topic": "tx"}
    assert firing.details["dead_letters"] == 5 and firing.details["records"] == 500
    assert firing.details["rate"] == 0.01 and firing.details["threshold"] == 0.01
    assert "1.0% of tx records" in firing.annotations["summary"]
    for _ in range(10):  # more of the same: deduplicated while firing
        clock.now += 1
        batch(obs, "tx", 100, 5)
    batch(obs, "other", 1000, 0)  # another topic is judged on its own
    assert submitted == [firing]
    clock.now += 1
    batch(obs, "tx", 1000, 0)  # 55 of 2500 = 2.2 %: firing
    batch(obs, "tx", 5000, 0)  # 55 of 7500 = 0.73 %: under 1 %, not under 0.5 %
    assert submitted == [firing]
    batch(obs, "tx", 4000, 0)  # 55 of 11500 = 0.48 %: resolved
    [_, resolved] = submitted
    assert (resolved.status, resolved.ends_at) == ("resolved", clock.now)
    assert fingerprint(resolved) == fingerprint(firing)
    batch(obs, "tx", 1000, 0)
    assert len(submitted) == 2


def test_old_dead_letters_leave_the_window_and_a_quiet_topic_resolves() -> None:
    obs, submitted, clock = observer(dead_letter_window_seconds=100.0)
    batch(obs, "tx", 10, 10)  # ten poison records on a quiet topic: 10 >= 1 % of 500
    assert [a.status for a in submitted] == ["firing"]
    clock.now += 50
    obs.checkpointed(0.1, ok=True)  # checkpoints re-judge idle topics ...
    assert len(submitted) == 1  # ... the dead letters are still in the window
    clock.now += 60
    obs.checkpointed(0.1, ok=True)
    assert [a.status for a in submitted] == ["firing", "resolved"]
    assert submitted[1].details["records"] == 0
    batch(obs, "tx", 1000, 4)  # a fresh window: 4 of 1000 is fine
    assert len(submitted) == 2


def test_nothing_is_tracked_without_receivers() -> None:
    obs, _, _ = observer()
    obs.submit = None
    batch(obs, "tx", 10, 10)
    obs.checkpointed(0.1, ok=False)
    assert obs.ops.windows == {} and obs.ops.checkpoint_failing is None


def sink(tmp_path: Path, answers: list[int]) -> AlertSink:
    def answer(request: httpx.Request) -> httpx.Response:
        answers.append(200)
        return httpx.Response(200)

    cfg = AlertsConfig(receivers=(ReceiverConfig(name="ops", url="http://127.0.0.1:9/ops"),),
                       group_wait_seconds=0.0)
    return AlertSink(cfg, tmp_path, clock=lambda: T0,
                     transports={"ops": httpx.MockTransport(answer)})


def test_a_condition_that_fired_before_a_restart_resolves_after_it(tmp_path: Path) -> None:
    sent: list[int] = []
    first = sink(tmp_path, sent)
    for alert in (checkpoint_alert("firing", T0, 1),
                  dead_letter_alert("tx", "firing", T0, {"rate": 0.5})):
        first.submit(alert)
    assert first.flush(timeout=5.0) and len(sent) == 1  # one group: kind, no segment
    first.stop()

    second = sink(tmp_path, sent)  # a new process on the same state directory
    try:
        assert second.firing(checkpoint_alert("firing", T0, 0))
        assert second.firing(dead_letter_alert("tx", "firing", T0, {}))
        assert not second.firing(dead_letter_alert("other", "firing", T0, {}))
        obs, submitted, _ = observer(dead_letter_window_seconds=100.0)
        obs.ops.firing = second.firing
        obs.checkpointed(0.1, ok=True)
        assert [(a.status, a.labels["condition"]) for a in submitted] == [
            ("resolved", "checkpoint_failed")]
        batch(obs, "tx", 100, 0)  # too few records to judge a fresh window yet
        batch(obs, "other", 100, 0)
        assert len(submitted) == 1
        batch(obs, "tx", 400, 0)  # 500 clean records: resolved; "other" never fired
        assert [a.status for a in submitted] == ["resolved", "resolved"]
        assert submitted[1].labels == {"condition": "dead_letter_rate", "topic": "tx"}
        for alert in submitted:
            second.submit(alert)
        assert second.flush(timeout=5.0) and len(sent) == 2
        assert not second.firing(checkpoint_alert("firing", T0, 0))
    finally:
        second.stop()
