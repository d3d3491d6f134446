"""The router: input records re-keyed by segment onto the internal topic.

It reads the input topics in its own consumer group, decodes each record (the full
decode: a record the scorer would reject is dead-lettered here, at its source, with the
same reason), and forwards the original bytes keyed by segment, with the source in the
headers (`monitor.repartition.origin`). Input offsets are committed only after every
forward and dead letter of the batch is acknowledged, so a crash replays, never loses; the
scorer drops what is replayed (`monitor.repartition.dedupe`).

Committing after every polled batch also keeps rebalances simple: a revoke happens inside
`poll()`, when everything read so far is already acknowledged and committed.

The segment picks the internal partition (`monitor.repartition.placement`); the router
refuses to go on if the internal topic's partition count changes under it. What it did is
reported to a `RouterReport` (metrics, input lag, dead-letter alerts); `healthy()` and
`ready()` answer its /healthz and /readyz.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from monitor.config import FieldsConfig, KafkaConfig
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.kafka_clients import check_futures
from monitor.repartition.origin import Origin
from monitor.repartition.placement import check_count, partition_of
from monitor.repartition.report import RouterReport
from monitor.sinks.topics import TopicSinks

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord]]


class Router:
    """`run()` until `stop` is set. `forwarded` and `dead_lettered` count records since
    the start (for logs and the bench)."""

    def __init__(self, k: KafkaConfig, fields: FieldsConfig, *, consumer: KafkaConsumer,
                 producer: KafkaProducer, dead_letters: TopicSinks,
                 report: RouterReport | None = None, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 stale_after_s: float = 30.0) -> None:
        self.k = k
        self.fields = fields
        self.consumer = consumer
        self.producer = producer
        self.dead_letters = dead_letters
        self.report = report
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stale_after_s = stale_after_s
        self.topic = k.by_segment_topic
        self.forwarded = 0
        self.dead_lettered = 0
        self.busy_s = 0.0  # time spent routing and committing, polls excluded
        self.last_tick = clock()
        self.failed: BaseException | None = None
        self.assigned = 0  # input partitions, as of the last poll
        self._partitions: int | None = None
        self._next: dict[tuple[str, int], int] = {}  # next input offset, once routed

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.last_tick = self.clock()
                batch = self.consumer.poll(timeout_ms=self.k.max_batch_wait_ms,
                                           max_records=self.k.max_batch_events)
                if batch:
                    start = time.perf_counter()
                    self.route(batch)
                    self.busy_s += time.perf_counter() - start
                elif self.report is not None:
                    self.report.idle()
                lags = self._lags()
                if self.report is not None:
                    self.report.lags(lags)
        except BaseException as err:
            self.failed = err
            raise

    # -- health -------------------------------------------------------------------------
    def healthy(self) -> tuple[bool, str]:
        if self.failed is not None:
            return False, f"router failed: {self.failed}"
        idle = self.clock() - self.last_tick
        ok = idle < self.stale_after_s
        return ok, f"router loop {'alive' if ok else 'stalled'} ({idle:.1f}s since last poll)"

    def ready(self) -> tuple[bool, str]:
        if not self.assigned:
            return False, "router: no input partition assigned yet"
        return True, f"router: {self.assigned} input partition(s) assigned"

    # -- routing ------------------------------------------------------------------------
    def route(self, batch: Batch) -> None:
        """Forward one polled batch, wait for every acknowledgement, then commit."""
        start = time.perf_counter()
        self._check_partitions()
        futures: list[FutureRecordMetadata] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        read: dict[tuple[str, int], int] = {}
        forwarded: dict[tuple[str, int], int] = {}
        dead: list[tuple[str, int]] = []
        for tp, records in batch.items():
            src = (tp.topic, tp.partition)
            read[src] = len(records)
            for r in records:
                fut = self._forward(r)
                if fut is None:
                    dead.append(src)
                else:
                    futures.append(fut)
                    forwarded[src] = forwarded.get(src, 0) + 1
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            self._next[src] = records[-1].offset + 1
        timeout = self.k.restore_timeout_s
        self.producer.flush(timeout=timeout)
        check_futures(futures, timeout, "repartitioned")
        self.dead_letters.check(timeout)
        if self.report is not None:
            self.report.routed(read, forwarded, dead, time.perf_counter() - start)
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
        """Where `segment` lives (`monitor.repartition.placement.partition_of`)."""
        if self._partitions is None:
            self._partitions = self._count()
        return partition_of(segment, self._partitions)

    def _count(self) -> int:
        return len(self.producer.partitions_for(self.topic))

    def _check_partitions(self) -> None:
        """Refuse to place by a partition count that is no longer the topic's (the
        producer's metadata is refreshed in the background, so this costs no request)."""
        if self._partitions is not None:
            check_count(self.topic, self._partitions, self._count())

    def _lags(self) -> dict[tuple[str, int], int | None]:
        """End offset (as the last fetch saw it) minus the next offset to route, per
        assigned input partition; None until both are known. Nothing here blocks."""
        out: dict[tuple[str, int], int | None] = {}
        parts = self.consumer.assignment()
        self.assigned = len(parts)  # read by /readyz: the consumer is this thread's only
        for tp in parts:
            src = (tp.topic, tp.partition)
            high, nxt = self.consumer.highwater(tp), self._next.get(src)
            out[src] = None if high is None or nxt is None else int(high) - nxt
        for src in set(self._next) - set(out):
            del self._next[src]  # revoked: its next owner routes from the commit
        return out
