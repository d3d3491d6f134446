"""Scored and dead-letter topics: every valid event scored, every malformed one dead-lettered
with its reason, committed offsets at the end; /healthz and /readyz answer."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from daemon_helpers import (
    DaemonProcess,
    committed,
    free_port,
    new_topic,
    produce,
    read_all,
    stream,
    unique,
    wait_until,
    write_config,
)

from monitor.sinks.admin import create_topics, topic_partitions
from monitor.source.embedded import EmbeddedBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_every_event_scored_or_dead_lettered(broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group, port = new_topic(bootstrap, 1), unique("g"), free_port()
    lines = stream(2000, 20)
    produce(bootstrap, topic, lines)
    cfg = write_config(tmp_path / "m.yaml", bootstrap, topic, group, http_port=port)
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", port).start()
    try:
        daemon.wait_ready()
        assert daemon.get("/healthz")[0] == 200
        wait_until(lambda: committed(bootstrap, group, topic, 1)[0] == len(lines), 60,
                   "committed offset at the end")
        assert daemon.stop() == 0, daemon.output()
    finally:
        daemon.stop()

    malformed = {i for i, line in enumerate(lines) if not line.startswith(b'{"id":"tx-')}
    assert len(malformed) == 20
    scored = [orjson.loads(r.value) for r in read_all(bootstrap, f"{topic}.scored", 1)]
    dead = read_all(bootstrap, f"{topic}.dlq", 1)
    assert sorted({s["offset"] for s in scored}) == sorted(set(range(len(lines))) - malformed)
    assert {s["id"] for s in scored} == {f"tx-{i:07d}" for i in range(2000)}
    first = scored[0]
    assert first["topic"] == topic and first["partition"] == 0
    assert {"score", "p_value", "outlier", "fraud_similarity", "segment", "risk"} <= set(first)
    assert sorted(int(dict(r.headers)["monitor.source.offset"]) for r in dead) == \
        sorted(malformed)
    for r in dead:
        headers = dict(r.headers)
        assert headers["monitor.reason"], headers
        assert headers["monitor.source.topic"] == topic.encode()
        assert r.value == lines[int(headers["monitor.source.offset"])]


def test_pattern_subscription_reads_every_matching_topic(broker: EmbeddedBroker,
                                                         tmp_path: Path) -> None:
    """A pattern picks up every matching topic; output topics are sized like the largest
    (3 partitions here), and topics that do not match are left alone."""
    bootstrap = broker.bootstrap
    prefix, group, port = unique("pat"), unique("g"), free_port()
    create_topics(bootstrap, [(f"{prefix}-a", 1), (f"{prefix}-b", 3), (f"{prefix}x-c", 1)])
    lines = stream(900, 0)
    sent_a = produce(bootstrap, f"{prefix}-a", lines[:300])
    sent_b = produce(bootstrap, f"{prefix}-b", lines[300:], 3)
    produce(bootstrap, f"{prefix}x-c", lines[:10])  # does not match: never read
    cfg = write_config(tmp_path / "m.yaml", bootstrap, "unused", group, http_port=port,
                       kafka={"topics": [], "pattern": rf"{prefix}-[ab]$",
                              "scored_topic": f"{prefix}.scored",
                              "dead_letter_topic": f"{prefix}.dlq"})
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", port).start()
    try:
        wait_until(lambda: committed(bootstrap, group, f"{prefix}-a", 1)[0] == len(sent_a[0])
                   and committed(bootstrap, group, f"{prefix}-b", 3)
                   == {p: len(sent_b[p]) for p in range(3)}, 90, "both topics consumed")
        assert daemon.stop() == 0, daemon.output()
    finally:
        daemon.stop()
    assert committed(bootstrap, group, f"{prefix}x-c", 1)[0] is None
    scored = [orjson.loads(r.value) for r in read_all(bootstrap, f"{prefix}.scored", 3)]
    assert {s["topic"] for s in scored} == {f"{prefix}-a", f"{prefix}-b"}
    assert len(scored) == len(lines)
    assert topic_partitions(bootstrap, f"{group}.changelog") == 3
