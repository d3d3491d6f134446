"""Must-show 2 with the real daemon: kill -9 `monitor run` while alerts are pending; after a
restart on the same state directory each of them is delivered, exactly once.

The receiver answers 503 (Retry-After 1) until the restart. The stream (tabular, a low
alpha, fraud bursts, a drift and 4 % poison records) yields outlier and dead-letter-rate
alerts within seconds (and often a drift alert, which the test does not rely on). The
notifications pending at the kill are read from the outbox itself, so the test knows
exactly what must arrive.
"""

from __future__ import annotations

import collections
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from alerts_helpers import Receiver
from daemon_helpers import (
    DaemonProcess,
    free_port,
    new_topic,
    produce,
    stream,
    unique,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
VALID, POISON = 1500, 60
ID_HEADER = "X-Monitor-Notification-Id"


def pending_alerts(daemon: DaemonProcess) -> float:
    _, text = daemon.get("/metrics")
    found = re.search(r"^monitor_alerts_pending (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def events_done(daemon: DaemonProcess) -> int:
    _, text = daemon.get("/status")
    return int(json.loads(text or "{}").get("events", 0))


def test_kill_9_the_daemon_with_pending_alerts_then_restart_delivers_each_once(
        broker: Any, tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.down_until = time.monotonic() + 3600  # 503 until the restart
    receiver.start()
    topic, group, port = new_topic(broker.bootstrap, 1), unique("alerts-kill"), free_port()
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "monitor.yaml", broker.bootstrap, topic, group, http_port=port,
        state_dir=state, checkpoint={"every_events": 200, "every_seconds": 1},
        score={"warmup": 200, "alpha": 0.02},
        alerts={"receivers": [{"name": "hook", "url": receiver.url, "timeout_seconds": 2}],
                "group_wait_seconds": 0, "group_interval_seconds": 0.5,
                "backoff_initial_seconds": 0.2, "backoff_max_seconds": 1.0,
                "poll_interval_seconds": 0.05})
    lines = stream(VALID, POISON, seed=5)
    produce(broker.bootstrap, topic, lines)
    daemon = DaemonProcess(config, tmp_path / "daemon.log", port).start()
    try:
        daemon.wait_ready(60)
        wait_until(lambda: events_done(daemon) >= len(lines), 60, "the stream consumed")
        wait_until(lambda: pending_alerts(daemon) >= 3, 30, "pending notifications")
        assert receiver.unavailable > 0 and receiver.accepted == []
        daemon.kill9()
    finally:
        if not daemon.exited():
            daemon.kill9()
    with sqlite3.connect(state / "alerts.sqlite") as db:
        rows = db.execute("SELECT id, document FROM outbox WHERE state = 'pending'").fetchall()
    pending = {nid: json.loads(doc) for nid, doc in rows}
    kinds = {a["kind"] for doc in pending.values() for a in doc["alerts"]}
    assert len(pending) >= 3 and {"outlier", "operational"} <= kinds, kinds
    conditions = {a["labels"].get("condition") for doc in pending.values()
                  for a in doc["alerts"] if a["kind"] == "operational"}
    assert "dead_letter_rate" in conditions  # the daemon's own dead-letter alert

    receiver.down_until = 0.0
    again = DaemonProcess(config, tmp_path / "daemon2.log", port).start()
    try:
        again.wait_ready(60)

        def delivered() -> bool:
            with receiver.lock:
                return set(pending) <= {h.get(ID_HEADER) for h, _ in receiver.raw}

        wait_until(delivered, 40, "every pending notification delivered")
        wait_until(lambda: pending_alerts(again) == 0, 20, "an empty outbox")
        assert again.stop() == 0, again.output()
    finally:
        if not again.exited():
            again.kill9()
        receiver.stop()

    headers = [h.get(ID_HEADER) for h, _ in receiver.raw]
    seen = collections.Counter(headers)
    assert all(seen[nid] == 1 for nid in pending), seen  # each pending one exactly once
    assert len(seen) == len(headers)  # and nothing at all twice
    for headers_, body in receiver.raw:
        doc = json.loads(body)
        assert doc["id"] == headers_[ID_HEADER]
        if doc["id"] in pending:
            assert doc == pending[doc["id"]]  # as written before the kill
