"""The compose stack's demo producer (`python -m monitor.tools.produce`) against the real
embedded broker on 127.0.0.1, and its pacing on a fake clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.config import load_config
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.source.embedded import EmbeddedBroker
from monitor.tools.produce import Pacer
from tests.integration.daemon_helpers import (
    ROOT,
    DaemonProcess,
    free_port,
    new_topic,
    read_all,
    unique,
    wait_until,
)
from tests.integration.deploy_helpers import DEPLOY


def _produce(bootstrap: str, topic: str, events: int,
             chunk: int) -> subprocess.CompletedProcess[str]:
    """The compose stack's producer, as a process, unpaced."""
    return subprocess.run(
        [sys.executable, "-m", "monitor.tools.produce", "--bootstrap", bootstrap,
         "--topic", topic, "--events", str(events), "--rate", "0", "--chunk", str(chunk),
         "--connect-timeout", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_produces_exactly_n_keyed_records_with_unique_ids(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker.bootstrap, 3)
    out = _produce(broker.bootstrap, topic, events=1500, chunk=1000)
    assert out.returncode == 0, out.stderr
    assert "1,500 of 1,500 records delivered" in out.stderr
    records = read_all(broker.bootstrap, topic, 3)
    assert len(records) == 1500
    rows = [orjson.loads(r.value) for r in records
            if r.value.startswith(b"{") and b'"ts"' in r.value]
    assert len({row["id"] for row in rows}) == len(rows) > 1400  # unique across chunks
    for r in records:  # keyed by segment, so a segment's state lives on one partition
        if r.value.startswith(b"{") and b'"ts"' in r.value:
            assert r.key == orjson.loads(r.value)["category"].encode()
    by_key: dict[bytes, set[int]] = {}
    for r in records:
        if r.key is not None:
            by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values())
    assert len(records) - len(rows) >= 1  # poison lines are kept for the dead-letter path


def test_unreachable_broker_fails_within_the_connect_timeout() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "monitor.tools.produce", "--bootstrap",
         f"127.0.0.1:{free_port()}", "--topic", "t", "--events", "5", "--connect-timeout", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no broker" in out.stderr


def test_pacer_spaces_sends_at_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(rate=10, clock=lambda: now[0], sleep=sleep)
    for _ in range(21):
        pacer.wait()
    assert now[0] == pytest.approx(102.0)  # 20 gaps of 0.1 s
    unbounded = Pacer(rate=0, clock=lambda: now[0], sleep=sleep)
    before = len(slept)
    for _ in range(5):
        unbounded.wait()
    assert len(slept) == before


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_feed_is_scored_by_the_deploy_config(broker: EmbeddedBroker, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose pairing: the producer's stream, read by the daemon with
    deploy/config/monitor.yaml (only addresses, names and the state dir overridden, as the
    compose file and a test must): every valid event comes out scored, every poison line
    dead-lettered, with the segment the config names."""
    topic = new_topic(broker.bootstrap, 3)
    out = _produce(broker.bootstrap, topic, events=600, chunk=300)
    assert out.returncode == 0, out.stderr
    config_path = DEPLOY / "config" / "monitor.yaml"
    fields = load_config(config_path, {"MONITOR_WEBHOOK_SECRET": "x"}).fields
    sent = read_all(broker.bootstrap, topic, 3)
    valid = 0
    for r in sent:
        try:
            decode_json(r.value, fields, "x")
            valid += 1
        except DecodeError:
            pass
    assert len(sent) == 600 and 0 < 600 - valid < 10

    group = unique("deploy-feed")
    port = free_port()
    for key, value in {
        "MONITOR__KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "MONITOR__KAFKA__TOPICS": f"[{topic}]",
        "MONITOR__KAFKA__GROUP_ID": group,
        "MONITOR__KAFKA__SCORED_TOPIC": f"{topic}.scored",
        "MONITOR__KAFKA__DEAD_LETTER_TOPIC": f"{topic}.dlq",
        "MONITOR__KAFKA__CHANGELOG_TOPIC": f"{group}.changelog",
        "MONITOR__KAFKA__FEEDBACK_TOPIC": "null",
        "MONITOR__KAFKA__SESSION_TIMEOUT_MS": "6000",
        "MONITOR__KAFKA__FETCH_MAX_WAIT_MS": "50",
        "MONITOR__CHECKPOINT__STATE_DIR": str(tmp_path / "state"),
        "MONITOR__HTTP__HOST": "127.0.0.1",
        "MONITOR__HTTP__PORT": str(port),
        "MONITOR__ALERTS__RECEIVERS": "[]",  # compose host names; stay on 127.0.0.1
        "MONITOR_WEBHOOK_SECRET": "x",
    }.items():
        monkeypatch.setenv(key, value)
    daemon = DaemonProcess(config_path, tmp_path / "daemon.log", port).start()
    try:
        daemon.wait_ready(90)
        def all_scored() -> list[Any] | None:
            records = read_all(broker.bootstrap, f"{topic}.scored", 3, quiet_polls=2)
            return records if len(records) >= valid else None

        scored = wait_until(all_scored, 120, "every valid event scored", every_s=1.0)
        dead = read_all(broker.bootstrap, f"{topic}.dlq", 1, quiet_polls=2)
        assert daemon.stop() == 0, daemon.output()[-3000:]
    finally:
        if not daemon.exited():
            daemon.kill9()
    assert len(scored) == valid and len(dead) == 600 - valid
    rows = [orjson.loads(r.value) for r in scored]
    assert {row["segment"] for row in rows} <= {"groceries", "fuel", "restaurants",
                                                "transport", "utilities", "crypto", "gaming",
                                                "transfers"}
