"""Scored-events and dead-letter topics, through one shared producer.

Delivery futures are kept until the next checkpoint, which flushes the producer and checks
every one of them before it commits any offset (`check`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from monitor.events import Score
from monitor.kafka_clients import check_futures
from monitor.outcome import BatchResult, DeadLetter, FeedbackResult, LoopReport

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

# Dead-letter headers (values are UTF-8 text)
H_REASON = "monitor.reason"
H_TOPIC = "monitor.source.topic"
H_PARTITION = "monitor.source.partition"
H_OFFSET = "monitor.source.offset"
H_TIMESTAMP = "monitor.source.timestamp"


def scored_record(score: Score, topic: str, partition: int, offset: int,
                  key: bytes | None, timestamp: float | None) -> dict[str, Any]:
    """The JSON body of one scored event (schema in the README)."""
    row = score.as_dict()
    row.update(key=None if key is None else key.decode("utf-8", "replace"),
               topic=topic, partition=partition, offset=offset, timestamp=timestamp)
    return row


ScoredRow = tuple[Score, int, bytes | None, float | None]  # score, offset, key, timestamp


class TopicSinks:
    """Sends scored events and dead letters; `check()` raises if any delivery failed.

    A `BatchSink` (`monitor.outcome`): the daemon hands it every batch's result."""

    def __init__(self, producer: KafkaProducer, scored_topic: str, dead_letter_topic: str) -> None:
        self.producer = producer
        self.scored_topic = scored_topic
        self.dead_letter_topic = dead_letter_topic
        self.pending: list[FutureRecordMetadata] = []

    def batch(self, result: BatchResult, pipeline: Pipeline) -> None:
        self._dead_letters(result.dead_letters)
        times = [ev.timestamp for ev in result.events]
        if result.origins is not None:  # repartitioned: each row names its source record
            for o, row in zip(result.origins, zip(result.scores, result.offsets, result.keys,
                                                  times, strict=True), strict=True):
                self.scored(o.topic, o.partition, [row])
            return
        self.scored(result.topic, result.partition,
                    list(zip(result.scores, result.offsets, result.keys, times, strict=True)))

    def feedback(self, result: FeedbackResult) -> None:
        self._dead_letters(result.dead_letters)

    def loop(self, report: LoopReport) -> None:
        """Nothing: deliveries are checked at the checkpoint."""

    def _dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for d in letters:
            self.dead_letter(d.value, d.key, d.reason, d.topic, d.partition, d.offset,
                             d.timestamp_ms)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every record sent so far is delivered (or failed)."""
        self.producer.flush(timeout=timeout_s)

    def scored(self, topic: str, partition: int, rows: Sequence[ScoredRow]) -> None:
        """Send one batch of scored events of an input partition."""
        send, out = self.producer.send, self.scored_topic
        for score, offset, key, timestamp in rows:
            body = orjson.dumps(scored_record(score, topic, partition, offset, key, timestamp))
            # keyed like the input, or by event id, so one key's scores stay in order
            self.pending.append(send(out, key=key if key is not None
                                     else score.event_id.encode(), value=body))

    def dead_letter(self, value: bytes | None, key: bytes | None, reason: str, topic: str,
                    partition: int, offset: int, timestamp_ms: int | None = None) -> None:
        """Send a record that could not be decoded, its value and key untouched, so it can
        be replayed or inspected as it was.

        A tombstone's value stays null (kafka-python sends `value=None` as a null value):
        `b""` would be a different record. kafka-python refuses a record with neither key
        nor value (ValueError), which would stop the daemon, so a tombstone without a key
        gets the empty key `b""`; its value, the part the reason is about, stays null.
        """
        headers = [(H_REASON, reason.encode()), (H_TOPIC, topic.encode()),
                   (H_PARTITION, str(partition).encode()), (H_OFFSET, str(offset).encode())]
        if timestamp_ms is not None:
            headers.append((H_TIMESTAMP, str(timestamp_ms).encode()))
        if key is None and value is None:
            key = b""
        self.pending.append(self.producer.send(self.dead_letter_topic, key=key, value=value,
                                               headers=headers))

    def check(self, timeout_s: float = 30.0) -> None:
        """After a flush: every send since the last check must have succeeded."""
        pending, self.pending = self.pending, []
        check_futures(pending, timeout_s, "output")
