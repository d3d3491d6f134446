"""Changelog restore picks the newest snapshot at or below the committed offset (even when
the broker's end offset is wrong), and the feedback topic grows the fraud prototypes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pytest
from daemon_helpers import (
    DaemonProcess,
    committed,
    free_port,
    local_snapshot,
    new_topic,
    produce,
    stream,
    unique,
    wait_until,
    write_config,
)
from kafka import KafkaProducer

from monitor.sinks.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.state.changelog import Changelog
from monitor.state.snapshot import Snapshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_restore_newest_snapshot_not_past_the_commit(broker: EmbeddedBroker) -> None:
    topic = unique("changelog")
    create_topics(broker.bootstrap, [(topic, 2)], compacted=[topic])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    log = Changelog(producer, topic, 2, {"bootstrap_servers": broker.bootstrap})
    try:
        # all in one batch per partition: the broker's end offset is then too small
        for offset in (100, 200, 300):
            for p in (0, 1, 2):
                snap = Snapshot("src", p, offset, {"x": np.full(3, offset, np.float32)})
                log.send(snap, snap.encode())
        producer.flush()
        found = log.restore({("src", 0): 200, ("src", 1): 300, ("src", 2): 99,
                             ("src", 3): 500, ("src", 4): None}, timeout_s=30)
    finally:
        log.close()
        producer.close()
    assert {k: s.offset for k, s in found.items()} == {("src", 0): 200, ("src", 1): 300}
    assert found[("src", 0)].state["x"].tolist() == [200.0] * 3


def _fraud_vectors(state_dir: Path, topic: str, p: int) -> int:
    snap = local_snapshot(state_dir, topic, p)
    return len(snap.state["engine"]["segments"]["default"]["fraud"]["vectors"])


def _status(d: DaemonProcess) -> dict:
    code, body = d.get("/status")
    return orjson.loads(body) if code == 200 else {}


@pytest.mark.timeout(300)
def test_feedback_reaches_every_partition_once(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Two daemons split a 2-partition topic; each applies every confirmed case to its own
    partition. One is killed -9; the other takes its partition over from the changelog and
    does not apply the cases to it a second time."""
    bootstrap = broker.bootstrap
    topic, group = new_topic(bootstrap, 2), unique("g")
    feedback = f"{topic}.feedback"
    create_topics(bootstrap, [(feedback, 1)])
    lines = [line for line in stream(700, 0) if b'"is_fraud":0' in line]
    first = produce(bootstrap, topic, lines[:600], 2)
    daemons = {}
    for name in ("a", "b"):
        port = free_port()
        cfg = write_config(tmp_path / f"{name}.yaml", bootstrap, topic, group, http_port=port,
                           state_dir=tmp_path / name, kafka={"feedback_topic": feedback,
                                                             "client_id": name},
                           checkpoint={"every_seconds": 1})
        daemons[name] = DaemonProcess(cfg, tmp_path / f"{name}.log", port).start()
    a, b = daemons["a"], daemons["b"]
    fraud = [orjson.dumps({"id": f"case-{i}", "ts": 1_767_225_600 + i, "merchant": "Wire-Now",
                           "category": "transfers", "amount": 2500 + i, "country": "NG",
                           "is_fraud": 1}) for i in range(3)]
    try:
        wait_until(lambda: committed(bootstrap, group, topic, 2)
                   == {p: len(first[p]) for p in (0, 1)}, 90, "stream consumed by the group")
        owner = {p: n for n in ("a", "b") for p in (0, 1)
                 if (tmp_path / n / f"{topic}-{p}.snap").exists()}
        assert sorted(owner.values()) == ["a", "b"], owner  # one partition each
        produce(bootstrap, feedback, [*fraud, b"{not json"])
        for d in (a, b):  # every daemon reads every case, and counts each once
            wait_until(lambda d=d: _status(d).get("feedback") == len(fraud), 60,
                       "feedback read by both daemons")
            status = _status(d)
            assert status["dead_letters"] == 1, status
        metrics = a.get("/metrics")[1]
        assert "monitor_flags_confirmed_total 0.0" in metrics  # exported; nothing flagged
        # both partitions' durable states hold the cases (checkpointed within a second)
        wait_until(lambda: all(_fraud_vectors(tmp_path / owner[p], topic, p) == len(fraud)
                               for p in (0, 1)), 30, "cases checkpointed in both partitions")
        b.kill9()
        wait_until(lambda: _assigned(a) == 2, 60, "a takes over b's partition")
        second = produce(bootstrap, topic, lines[600:], 2, start=600)
        wait_until(lambda: committed(bootstrap, group, topic, 2)
                   == {p: len(first[p]) + len(second[p]) for p in (0, 1)}, 90,
                   "the rest consumed by a")
        assert a.stop() == 0, a.output()
    finally:
        for d in (a, b):
            if not d.exited():
                d.stop()
    for p in (0, 1):
        snap = local_snapshot(tmp_path / "a", topic, p)
        seg = snap.state["engine"]["segments"]["default"]
        assert len(seg["fraud"]["vectors"]) == len(fraud), (p, owner)  # not applied twice
        assert [list(x) for x in snap.state["feedback"]] == [[0, len(fraud) + 1]]
        assert seg["seen"] == len(first[p]) + len(second[p])  # feedback is not stream events


def _assigned(d: DaemonProcess) -> int:
    status, text = d.get("/readyz")
    m = re.search(r"ready: (\d+) partition", text)
    return int(m.group(1)) if status == 200 and m else -1
