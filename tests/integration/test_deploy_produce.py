"""The compose stack's demo producer (`python -m monitor.source.produce`) against the real
embedded broker on 127.0.0.1, and its pacing on a fake clock."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from monitor.source.embedded import EmbeddedBroker
from monitor.source.produce import Pacer
from tests.integration.daemon_helpers import ROOT, new_topic, read_all


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_produces_exactly_n_keyed_records_with_unique_ids(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker.bootstrap, 3)
    out = subprocess.run(
        [sys.executable, "-m", "monitor.source.produce", "--bootstrap", broker.bootstrap,
         "--topic", topic, "--events", "1500", "--rate", "0", "--chunk", "1000",
         "--connect-timeout", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
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
    from tests.integration.daemon_helpers import free_port

    out = subprocess.run(
        [sys.executable, "-m", "monitor.source.produce", "--bootstrap",
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
