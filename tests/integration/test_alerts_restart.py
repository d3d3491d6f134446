"""Must-show 2: kill -9 a process holding pending alerts; after restart they arrive.

The child is a real process using `AlertSink` with its background delivery thread. Its
receiver answers 503, so everything stays pending in the outbox; the test then SIGKILLs
it (no shutdown code runs), brings the receiver up and starts a second process on the
same state directory.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alerts_helpers import Receiver

ROOT = Path(__file__).resolve().parents[2]
SECRET = "restart-secret"
SEGMENTS = 5
OUTLIERS = 250

CHILD = """
import json, sys, time
from monitor.events import Alert, Score
from monitor.sinks.alerts.explain import explain_outlier
from monitor.sinks.alerts import AlertsConfig, AlertSink

cfg = AlertsConfig.model_validate_json(sys.argv[1])
sink = AlertSink(cfg, sys.argv[2])
if sys.argv[3] == "produce":
    for i in range(int(sys.argv[4])):
        sink.submit(Alert("drift", "firing", {"segment": f"s{i}"}, details={"statistic": 99.0}))
    for i in range(int(sys.argv[5])):
        s = Score(f"tx-{i}", "s0", 3.0, 1e-4, True, 0.0, 0.1, i / 1000, 0)
        sink.submit(explain_outlier("tx", s, time.time()))
    sink.route(time.time(), force=True)  # committed to the outbox before any delivery
    sink.start()
    deadline = time.monotonic() + 10
    while sink.counters["hook"].retried < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    sys.stdout.write(f"PENDING {sink.pending()}\\n")
    sys.stdout.flush()
    time.sleep(120)  # killed long before
else:
    ok = sink.flush(timeout=20)
    c = sink.counters["hook"]
    sys.stdout.write(json.dumps({"ok": ok, "sent": c.sent, "pending": sink.pending()}) + "\\n")
    sink.stop(timeout=2)
"""


def child(cfg: str, state: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, cfg, str(state), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "child said nothing in time"
    return proc.stdout.readline().strip()


@pytest.mark.timeout(90)
def test_kill_9_with_pending_alerts_then_restart_delivers_them(tmp_path: Path) -> None:
    receiver = Receiver(secret=SECRET.encode())
    receiver.down_until = time.monotonic() + 3600  # 503 until the restart
    receiver.start()
    cfg = json.dumps(
        {
            "receivers": [{"name": "hook", "url": receiver.url, "secret": SECRET}],
            "group_wait_seconds": 0,
            "backoff_initial_seconds": 0.2,
            "backoff_max_seconds": 1.0,
            "poll_interval_seconds": 0.05,
        }
    )
    state = tmp_path / "state"
    try:
        first = child(cfg, state, "produce", str(SEGMENTS), str(OUTLIERS))
        try:
            line = read_line(first, 30.0)
            assert line.startswith("PENDING"), (line, first.stderr)
            expected = int(line.split()[1])
            assert expected == SEGMENTS + 1  # drift per segment + one outlier group note
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(5)
        assert receiver.accepted == [] and receiver.unavailable > 0
        with sqlite3.connect(state / "alerts.sqlite") as db:
            [(pending,)] = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
        assert pending == expected  # the kill lost nothing

        receiver.down_until = 0.0
        second = child(cfg, state, "deliver")
        out, err = second.communicate(timeout=40)
        assert second.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result == {"ok": True, "sent": expected, "pending": 0}
    finally:
        receiver.stop()

    ids = [doc["id"] for doc in receiver.accepted]
    assert len(ids) == len(set(ids)) == expected
    segments = sorted(
        doc["group_labels"]["segment"]
        for doc in receiver.accepted
        if doc["group_labels"]["kind"] == "drift"
    )
    assert segments == [f"s{i}" for i in range(SEGMENTS)]
    outliers = [doc for doc in receiver.accepted if doc["group_labels"]["kind"] == "outlier"]
    assert sum(doc["count"] for doc in outliers) == OUTLIERS
    assert receiver.rejected_signatures == 0
