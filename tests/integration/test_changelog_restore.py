"""The changelog restore on a real broker: the newest snapshot at or below the commit wins,
only that one is decoded when the records carry their offset header, and a record from a
release without the header is still read (decoded to learn its offset)."""

from __future__ import annotations

from daemon_helpers import unique
from kafka import KafkaProducer

from monitor.sinks.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.state.changelog import Changelog
from monitor.state.snapshot import Snapshot


def test_restore_decodes_only_the_snapshot_it_keeps(broker: EmbeddedBroker) -> None:
    topic = unique("changelog")
    create_topics(broker.bootstrap, [(topic, 2)])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    changelog = Changelog(producer, topic, 2, {"bootstrap_servers": broker.bootstrap})
    try:
        old = Snapshot("events", 0, 5, {"n": 5})  # as an older release wrote it: no header
        producer.send(topic, key=old.key, value=old.encode(), partition=0).get(timeout=30)
        for offset in (10, 20, 30):
            snap = Snapshot("events", 0, offset, {"n": offset})
            changelog.send(snap, snap.encode()).get(timeout=30)
        other = Snapshot("events", 2, 7, {"n": 7})  # same changelog partition, other key
        changelog.send(other, other.encode()).get(timeout=30)

        found = changelog.restore({("events", 0): 25, ("events", 2): 7}, timeout_s=30)
        stats = changelog.last_restore
        assert found[("events", 0)].offset == 20  # 30 is past the commit: a crashed checkpoint
        assert found[("events", 0)].state == {"n": 20}
        assert found[("events", 2)].offset == 7
        assert stats is not None and stats.records == 5
        assert stats.decodes == 3  # the header-less one, then the two kept

        assert changelog.restore({("events", 0): 6}, timeout_s=30)[("events", 0)].offset == 5
        assert changelog.restore({("events", 0): 4}, timeout_s=30) == {}
    finally:
        changelog.close()
        producer.close()
