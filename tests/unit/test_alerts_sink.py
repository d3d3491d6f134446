"""AlertSink end to end on a fake clock and a fake transport (no sockets, no sleeps)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.events import Alert
from monitor.sinks.alerts import AlertsConfig, AlertSink, ReceiverConfig
from tests.fakes import ManualClock


class Receiver:
    """Answers 503 until `up_at`, then `status`; records what it accepted."""

    def __init__(self, clock: ManualClock, up_at: float, status: int = 200) -> None:
        self.clock, self.up_at, self.status = clock, up_at, status
        self.accepted: list[dict[str, Any]] = []
        self.calls = 0

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.clock.now < self.up_at:
            return httpx.Response(503)
        if self.status == 200:
            self.accepted.append(json.loads(req.content))
        return httpx.Response(self.status)


def sink(tmp_path: Path, clock: ManualClock, rx: Receiver, **kw: object) -> AlertSink:
    cfg = AlertsConfig(
        receivers=(ReceiverConfig(name="hook", url="http://127.0.0.1:9/", secret="k"),),
        **{
            "group_wait_seconds": 0.0,
            "group_interval_seconds": 1.0,
            "backoff_initial_seconds": 0.5,
            "backoff_max_seconds": 4.0,
            **kw,
        },
    )
    return AlertSink(cfg, tmp_path, clock=clock, transports={"hook": httpx.MockTransport(rx)})


def drift(segment: str, status: str) -> Alert:
    return Alert("drift", status, {"segment": segment}, details={"statistic": 1e3})


def run(s: AlertSink, clock: ManualClock, seconds: float, step: float = 0.25) -> None:
    end = clock.now + seconds
    while clock.now < end:
        s.pump()
        clock.now += step


def test_outage_then_recovery_delivers_each_once_in_group_order(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    rx = Receiver(clock, up_at=clock.now + 30.0)
    counts: list[tuple[str, str, int]] = []
    s = sink(tmp_path, clock, rx)
    s._on_count = lambda *a: counts.append(a)
    for seg in ("a", "b", "c"):
        s.submit(drift(seg, "firing"))
    run(s, clock, 3.0)
    for seg in ("a", "b"):
        s.submit(drift(seg, "resolved"))
    run(s, clock, 3.0)
    s.submit(drift("a", "firing"))
    run(s, clock, 60.0)
    assert s.pending() == 0
    ids = [d["id"] for d in rx.accepted]
    assert len(ids) == len(set(ids)) == 6
    for seg, expected in {
        "a": ["firing", "resolved", "firing"],
        "b": ["firing", "resolved"],
        "c": ["firing"],
    }.items():
        got = [d for d in rx.accepted if d["group_labels"]["segment"] == seg]
        assert [d["status"] for d in got] == expected
        seqs = [d["sequence"] for d in got]
        assert seqs == sorted(seqs)
    c = s.counters["hook"]
    assert (c.sent, c.failed, c.expired, c.notifications) == (6, 0, 0, 6)
    assert c.retried > 0 and ("hook", "sent", 1) in counts


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "monitor.sinks.alerts.sink" and r.levelno >= logging.ERROR
    ]


def test_client_errors_fail_and_are_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1_700_000_000.0)
    rx = Receiver(clock, up_at=0.0, status=400)
    counts: list[tuple[str, str, int]] = []
    s = sink(tmp_path, clock, rx)
    s._on_count = lambda *a: counts.append(a)
    s.submit(drift("a", "firing"))
    with caplog.at_level(logging.WARNING, logger="monitor.sinks.alerts"):
        run(s, clock, 2.0)
    assert rx.calls == 1 and s.counters["hook"].failed == 1 and s.pending() == 0
    assert ("hook", "failed", 1) in counts and s.outbox.counts() == {("hook", "failed"): 1}
    [message] = errors(caplog)
    assert "hook" in message and "HTTP 400" in message and "not retried" in message


def test_too_old_expires_and_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1_700_000_000.0)
    rx = Receiver(clock, up_at=float("inf"))
    counts: list[tuple[str, str, int]] = []
    s = sink(tmp_path, clock, rx, max_age_seconds=10.0)
    s._on_count = lambda *a: counts.append(a)
    s.submit(drift("a", "firing"))
    with caplog.at_level(logging.WARNING, logger="monitor.sinks.alerts"):
        run(s, clock, 20.0)
    assert s.counters["hook"].expired == 1 and s.pending() == 0
    assert s.outbox.counts() == {("hook", "expired"): 1}
    assert ("hook", "expired", 1) in counts
    [message] = errors(caplog)
    assert "hook" in message and "1 notification(s) expired" in message


def test_gathered_alerts_survive_restart_via_checkpoint(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    rx = Receiver(clock, up_at=0.0)
    s = sink(tmp_path, clock, rx, group_wait_seconds=30.0)
    for i in range(5):
        s.submit(Alert("outlier", "firing", {"segment": "x"}, details={"id": str(i)}))
    s.checkpoint()  # nothing due yet: held by the router, persisted with it
    s.outbox.close()
    clock.now += 31.0
    again = sink(tmp_path, clock, rx, group_wait_seconds=30.0)
    again.pump()
    assert [d["count"] for d in rx.accepted] == [5]


def test_receiver_kinds_filter(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    rx = Receiver(clock, up_at=0.0)
    cfg = AlertsConfig(
        group_wait_seconds=0.0,
        receivers=(ReceiverConfig(name="hook", url="http://127.0.0.1:9/", kinds=("drift",)),),
    )
    s = AlertSink(cfg, tmp_path, clock=clock, transports={"hook": httpx.MockTransport(rx)})
    s.submit(Alert("outlier", "firing", {"segment": "x"}))
    s.submit(drift("x", "firing"))
    s.pump()
    assert [d["group_labels"]["kind"] for d in rx.accepted] == ["drift"]


def test_stop_is_idempotent_and_context_manager_works(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    rx = Receiver(clock, up_at=0.0)
    with sink(tmp_path, clock, rx) as s:
        s.submit(drift("a", "firing"))
    assert [d["status"] for d in rx.accepted] == ["firing"]
    assert s.stop() is True


def test_alerts_dropped_at_the_group_cap_are_exported(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from monitor.sinks.metrics import Metrics

    clock = ManualClock(1_700_000_000.0)
    metrics = Metrics(CollectorRegistry())
    cfg = AlertsConfig(
        receivers=(ReceiverConfig(name="hook", url="http://127.0.0.1:9/", secret="k"),),
        group_wait_seconds=0.0, max_groups=1, group_by=("kind", "segment"))
    s = AlertSink(cfg, tmp_path, clock=clock, on_count=metrics.on_alert_count,
                  transports={"hook": httpx.MockTransport(Receiver(clock, 0.0))})
    for seg in ("a", "b", "c"):  # one group fits; the other two are dropped
        s.submit(drift(seg, "firing"))
    assert "monitor_alerts_dropped_total 2.0" in generate_latest(metrics.registry).decode()
