"""The internal topic's partition count decides where each segment lives. Given another
count, most segments would belong to partitions that do not hold their state: the scorer
refuses to go on, with the reason, and commits nothing (a partition added to the internal
topic; the router's own check is a unit test)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from daemon_helpers import (
    DaemonProcess,
    committed,
    free_port,
    new_topic,
    read_all,
    unique,
    wait_until,
    write_config,
)
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata
from repartition_helpers import FIELDS, make_stream, produce_keyed

from monitor.sinks.admin import create_topics, topic_partitions
from monitor.source.embedded import EmbeddedBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _commit(bootstrap: str, group: str, topic: str, marks: dict[int, int | None]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(m, "", -1)
                         for p, m in marks.items() if m is not None})
    finally:
        consumer.close(autocommit=False)


def test_a_state_placed_by_another_partition_count_is_refused(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group = new_topic(bootstrap, 2), unique("g-resize")
    internal, port = f"{group}.by-segment", free_port()
    cfg = write_config(tmp_path / "resize.yaml", bootstrap, topic, group, http_port=port,
                       state_dir=tmp_path / "state", fields=FIELDS, score={"warmup": 50},
                       kafka={"repartition": True, "repartition_partitions": 2,
                              "scored_topic": f"{group}.scored"})
    rows = make_stream(100, 1000)  # 6 segments, no drift
    daemon = DaemonProcess(cfg, tmp_path / "first.log", port).start()
    try:
        daemon.wait_ready(90)
        produce_keyed(bootstrap, topic, rows, 1000, chunk=200, pause_s=0.0)
        wait_until(lambda: len(read_all(bootstrap, f"{group}.scored", 2, quiet_polls=1))
                   >= len(rows), 120, "every event scored", every_s=2)
    finally:
        assert daemon.stop() == 0, daemon.output()[-3000:]  # its last checkpoint
    before = committed(bootstrap, group, internal, 2)
    assert sum(v or 0 for v in before.values()) == len(rows)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([internal])
    finally:
        admin.close()
    wait_until(lambda: topic_partitions(bootstrap, internal, {}) is None, 30,
               "the internal topic deleted")
    create_topics(bootstrap, [(internal, 3)])
    # Kafka's CreatePartitions keeps the group's commits, but the embedded broker lacks that
    # request and drops them with the deleted topic: put them back, so the state is what
    # adding a partition leaves (commits and changelog as they were, one more partition)
    _commit(bootstrap, group, internal, before)
    marks = committed(bootstrap, group, internal, 3)
    assert marks == {**before, 2: None}

    again = DaemonProcess(cfg, tmp_path / "second.log", port, ("--role", "scorer")).start()
    deadline = time.monotonic() + 120
    while not again.exited() and time.monotonic() < deadline:
        time.sleep(0.5)
    code = again.stop()
    out = again.output()
    assert code != 0, out[-3000:]
    assert f"the internal topic {internal} has 3 partitions but the state of partition" in out
    assert "start a new kafka.group_id" in out
    assert committed(bootstrap, group, internal, 3) == marks  # nothing committed
