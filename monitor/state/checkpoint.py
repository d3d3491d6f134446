"""The checkpoint: the ONE place where input offsets are committed.

Order (each step only after the previous one succeeded):
1. flush the producer and check every scored/dead-letter delivery;
2. send the changed partitions' snapshots to the changelog, flush, check each delivery;
3. write the local snapshot files (a restart fast path; the changelog is the truth);
4. commit the offsets of exactly those states.
A failure raises `FatalError` before the commit: the events since the last commit are
replayed against the state of that commit, so nothing is lost or counted twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from monitor.errors import FatalError
from monitor.kafka_clients import check_futures
from monitor.state.changelog import Changelog
from monitor.state.partition import PartitionState
from monitor.state.snapshot import SnapshotStore

log = logging.getLogger(__name__)


class CheckedSinks(Protocol):
    """What the checkpoint asks of the output sinks (`monitor.sinks.topics.TopicSinks`):
    after the producer's flush, raise if any of their sends since the last check failed."""

    def check(self, timeout_s: float) -> None: ...


class Checkpointer:
    def __init__(self, consumer: KafkaConsumer, producer: KafkaProducer, sinks: CheckedSinks,
                 changelog: Changelog, store: SnapshotStore | None,
                 clock: Callable[[], float] = time.monotonic,
                 max_snapshot_bytes: int = 16 << 20) -> None:
        self.consumer = consumer
        self.producer = producer
        self.sinks = sinks
        self.changelog = changelog
        self.store = store
        self.clock = clock
        self.max_snapshot_bytes = max_snapshot_bytes
        self.last = clock()
        self.count = 0

    def due(self, events_since: int, every_events: int, every_seconds: float) -> bool:
        return events_since >= every_events or self.clock() - self.last >= every_seconds

    def checkpoint(self, states: Iterable[PartitionState], timeout_s: float = 30.0) -> int:
        """Make `states` durable and commit their offsets; returns partitions committed."""
        changed = [s for s in states if s.dirty and s.restored]
        self.last = self.clock()
        if not changed:
            return 0
        self.producer.flush(timeout=timeout_s)
        self.sinks.check(timeout_s)
        encoded = []
        futures = []
        for st in changed:
            snap = st.snapshot()
            data = snap.encode()
            if len(data) > self.max_snapshot_bytes:
                raise FatalError(f"state of {snap.topic}:{snap.partition} is {len(data):,} "
                                 f"bytes, over kafka.max_snapshot_bytes "
                                 f"({self.max_snapshot_bytes:,}): raise it (and the broker's "
                                 "message.max.bytes), or lower score.max_segments, "
                                 "score.reservoir (each segment keeps one calibration pool, "
                                 "plus one per numeric field with per-field evidence) or "
                                 "score.k_max/score.warmup")
            encoded.append((snap, data))
            futures.append(self.changelog.send(snap, data))
        self.producer.flush(timeout=timeout_s)
        check_futures(futures, timeout_s, "changelog")
        if self.store is not None:
            for snap, data in encoded:
                self.store.write(snap, data)
        offsets = {TopicPartition(s.topic, s.partition): OffsetAndMetadata(s.offset, "", -1)
                   for s in changed}
        self.consumer.commit(offsets)
        for st in changed:
            st.dirty = False
        self.count += 1
        log.info("checkpoint %d: committed %s", self.count,
                 {f"{tp.topic}:{tp.partition}": om.offset for tp, om in offsets.items()})
        return len(offsets)
