"""The feedback topic, read in full by every daemon of a consumer group.

Confirmed cases must reach every partition's fraud prototypes, wherever that partition
runs, so the feedback topic is not split by the group: each daemon assigns itself all its
partitions, outside any group. What each partition state has applied is recorded in the
state itself (`PartitionState.feedback`, checkpointed with it), not committed: a state
restored from an older snapshot re-reads exactly what it had not made durable, and a
record is never applied to a state twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

log = logging.getLogger(__name__)


class FeedbackReader:
    """All partitions of one topic, from the lowest offset any held state still needs.

    Nothing is read until `position` has been told what the held states need (a daemon
    with no partition has nowhere to apply feedback). The topic's partitions are looked up
    again every `refresh_s`: a partition added later is picked up, and a topic that does
    not exist yet costs one metadata request per `refresh_s`, not one per loop.
    """

    def __init__(self, topic: str, client: dict[str, Any], max_records: int = 500,
                 refresh_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 consumer: Any = None) -> None:
        self.topic = topic
        self.max_records = max_records
        self.refresh_s = refresh_s
        self.clock = clock
        self.consumer = consumer if consumer is not None else KafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **client)
        self.partitions: list[TopicPartition] = []
        self.needs: list[dict[int, int]] | None = None  # per held state: partition -> offset
        self._next_refresh = float("-inf")
        # per partition, the offset after the newest record handed out at least once:
        # below it a record is a re-read for a state that lagged (count it only once)
        self.seen: dict[int, int] = {}

    def _refresh(self) -> None:
        now = self.clock()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self.refresh_s
        found = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(found)]
        if tps != self.partitions:
            log.info("feedback topic %s: partitions %s", self.topic, sorted(found))
            self.consumer.assign(tps)
            self.partitions = tps
            self._seek()

    def _seek(self) -> None:
        for tp in self.partitions:
            want = min((n.get(tp.partition, 0) for n in self.needs or ()), default=0)
            if self.consumer.position(tp) != want:
                self.consumer.seek(tp, want)

    def position(self, needs: Iterable[dict[int, int]]) -> None:
        """Read from the lowest offset any held state (its partition -> next offset it
        has yet to apply) needs; a state without an entry needs everything. Moves back for
        a state restored from an older snapshot, forward past what all have applied."""
        self.needs = [dict(n) for n in needs] or None
        self._next_refresh = float("-inf")  # states changed: look at the topic again
        self._refresh()
        self._seek()

    def poll(self, timeout_ms: int = 0) -> list[ConsumerRecord]:
        """New feedback records, in offset order per partition (none if there are none)."""
        if self.needs is None:
            return []
        self._refresh()
        if not self.partitions:
            return []
        got = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        return [r for records in got.values() for r in records]

    def first_sighting(self, record: ConsumerRecord) -> bool:
        """True the first time this process reads `record` (for counters and dead letters)."""
        new = record.offset >= self.seen.get(record.partition, 0)
        if new:
            self.seen[record.partition] = record.offset + 1
        return bool(new)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
