"""The router: input records re-keyed by segment onto the internal topic.

It reads the input topics in its own consumer group, decodes each record (the full
decode: a record the scorer would reject is dead-lettered here, at its source, with the
same reason), and forwards the original bytes keyed by segment, with the source in the
headers (`monitor.repartition.origin`). Input offsets are committed only after every
forward and dead letter of the batch is acknowledged, so a crash replays, never loses; the
scorer drops what is replayed (`monitor.repartition.dedupe`).

Committing after every polled batch also keeps rebalances simple: a revoke happens inside
`poll()`, when everything read so far is already acknowledged and committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from monitor.config import FieldsConfig, KafkaConfig
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.kafka_clients import check_futures
from monitor.repartition.origin import Origin
from monitor.sinks.topics import TopicSinks

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord]]


class Router:
    """`run()` until `stop` is set. `forwarded` and `dead_lettered` count records since
    the start (for logs and the bench)."""

    def __init__(self, k: KafkaConfig, fields: FieldsConfig, *, consumer: KafkaConsumer,
                 producer: KafkaProducer, dead_letters: TopicSinks,
                 stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.k = k
        self.fields = fields
        self.consumer = consumer
        self.producer = producer
        self.dead_letters = dead_letters
        self.stop = stop or threading.Event()
        self.clock = clock
        self.topic = k.by_segment_topic
        self.forwarded = 0
        self.dead_lettered = 0
        self.busy_s = 0.0  # time spent routing and committing, polls excluded
        self._partitions: int | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            batch = self.consumer.poll(timeout_ms=self.k.max_batch_wait_ms,
                                       max_records=self.k.max_batch_events)
            if batch:
                start = time.perf_counter()
                self.route(batch)
                self.busy_s += time.perf_counter() - start

    def route(self, batch: Batch) -> None:
        """Forward one polled batch, wait for every acknowledgement, then commit."""
        futures: list[FutureRecordMetadata] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batch.items():
            for r in records:
                fut = self._forward(r)
                if fut is not None:
                    futures.append(fut)
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
        timeout = self.k.restore_timeout_s
        self.producer.flush(timeout=timeout)
        check_futures(futures, timeout, "repartitioned")
        self.dead_letters.check(timeout)
        self.consumer.commit(offsets)

    def _forward(self, r: ConsumerRecord) -> FutureRecordMetadata | None:
        origin = Origin(r.topic, r.partition, r.offset, r.timestamp)
        try:
            event = decode_json(r.value, self.fields, f"{r.topic}:{r.partition}:{r.offset}")
        except DecodeError as err:
            self.dead_letters.dead_letter(r.value, r.key, err.reason, r.topic, r.partition,
                                          r.offset, r.timestamp)
            self.dead_lettered += 1
            return None
        self.forwarded += 1
        # the segment picks the partition, so all of its events meet in one state; the
        # record keeps its own key, so the scored record is keyed like the input
        return self.producer.send(self.topic, key=r.key, value=r.value,
                                  partition=self.partition_of(event.segment),
                                  headers=origin.headers(), timestamp_ms=r.timestamp)

    def partition_of(self, segment: str) -> int:
        """Kafka's own key hash (murmur2, as the Java and kafka-python partitioners), so
        another client can compute where a segment lives."""
        if self._partitions is None:
            parts = self.producer.partitions_for(self.topic)
            self._partitions = len(parts)
        return int(murmur2(segment.encode()) & 0x7FFFFFFF) % self._partitions
