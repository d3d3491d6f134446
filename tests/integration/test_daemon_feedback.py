"""Changelog restore picks the newest snapshot at or below the committed offset (even when
the broker's end offset is wrong), and the feedback topic grows the fraud prototypes."""

from __future__ import annotations

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

from monitor.source.embedded import EmbeddedBroker, create_topics
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


def test_feedback_topic_adds_fraud_prototypes(broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group, port = new_topic(bootstrap, 1), unique("g"), free_port()
    feedback = f"{topic}.feedback"
    create_topics(bootstrap, [(feedback, 1)])
    lines = [line for line in stream(600, 0) if b'"is_fraud":0' in line]
    produce(bootstrap, topic, lines)
    fraud = [orjson.dumps({"id": f"case-{i}", "ts": 1_767_225_600 + i, "merchant": "Wire-Now",
                           "category": "transfers", "amount": 2500 + i, "country": "NG",
                           "is_fraud": 1}) for i in range(3)]
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "m.yaml", bootstrap, topic, group, http_port=port,
                       state_dir=state, kafka={"feedback_topic": feedback})
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", port).start()
    try:
        wait_until(lambda: committed(bootstrap, group, topic, 1)[0] == len(lines), 60,
                   "stream consumed")
        produce(bootstrap, feedback, [*fraud, b"{not json"])
        wait_until(lambda: committed(bootstrap, group, feedback, 1)[0] == len(fraud) + 1, 60,
                   "feedback consumed and committed")
        status = orjson.loads(daemon.get("/status")[1])
        # a poison feedback record is dead-lettered and counted like any other
        assert status["dead_letters"] == 1 and status["feedback"] == len(fraud), status
        metrics = daemon.get("/metrics")[1]
        assert f'monitor_events_dead_lettered_total{{partition="0",topic="{feedback}"}} 1.0' \
            in metrics, metrics
        # nothing flagged was labelled yet: zero, but exported
        assert "monitor_flags_confirmed_total 0.0" in metrics
        assert "monitor_flags_refuted_total 0.0" in metrics
        assert daemon.stop() == 0, daemon.output()
    finally:
        daemon.stop()
    seg = local_snapshot(state, topic, 0).state["engine"]["segments"]["default"]
    assert len(seg["fraud"]["vectors"]) == len(fraud)
    assert seg["seen"] == len(lines)  # feedback is not counted as stream events
