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
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

log = logging.getLogger(__name__)


class FeedbackReader:
    """All partitions of one topic, from the lowest offset any held state still needs."""

    def __init__(self, topic: str, client: dict[str, Any], max_records: int = 500) -> None:
        self.topic = topic
        self.max_records = max_records
        self.consumer = KafkaConsumer(group_id=None, enable_auto_commit=False,
                                      auto_offset_reset="earliest", **client)
        self.partitions: list[TopicPartition] = []
        # per partition, the offset after the newest record handed out at least once:
        # below it a record is a re-read for a state that lagged (count it only once)
        self.seen: dict[int, int] = {}

    def _assign(self) -> None:
        found = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(found)]
        if tps != self.partitions:
            self.consumer.assign(tps)
            for tp in tps:
                if tp not in self.partitions:
                    self.consumer.seek(tp, 0)
            self.partitions = tps

    def rewind(self, needs: Iterable[dict[int, int]]) -> None:
        """Go back to the lowest offset any state in `needs` (partition -> next offset it
        has applied) has not applied yet; a state without an entry needs everything."""
        self._assign()
        needs = list(needs)
        for tp in self.partitions:
            low = min((n.get(tp.partition, 0) for n in needs), default=None)
            if low is not None and low < self.consumer.position(tp):
                log.info("feedback %s:%d: re-reading from offset %d", tp.topic, tp.partition,
                         low)
                self.consumer.seek(tp, low)

    def poll(self, timeout_ms: int = 0) -> list[ConsumerRecord]:
        """New feedback records, in offset order per partition (none if there are none)."""
        if not self.partitions:
            self._assign()
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
