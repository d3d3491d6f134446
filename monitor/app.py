"""The daemon: runs poll -> process -> sinks -> checkpoint over the partitions it owns.

It is built with everything it depends on (`monitor.wiring.open_daemon` builds those
from the config): the consumer, the output-topic sinks, the changelog, the checkpointer,
the observer and any other sinks. Each batch's outcome is a value (`BatchResult`) that the
daemon applies to the partition state and hands to every sink; durability is
`monitor.state.checkpoint` (the only place offsets are committed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import MonitorConfig
from monitor.embed.text import TextEncoder
from monitor.errors import MonitorError
from monitor.handler import BatchHandler
from monitor.http import HttpServer, check
from monitor.observer import Observer
from monitor.outcome import BatchSink, LoopReport, StageTimes
from monitor.pipeline import Pipeline
from monitor.repartition.placement import check_restored
from monitor.sinks.topics import TopicSinks
from monitor.source.feedback import FeedbackReader
from monitor.state.changelog import Changelog
from monitor.state.checkpoint import Checkpointer
from monitor.state.partition import PartitionState
from monitor.state.recovery import restore_partitions

log = logging.getLogger(__name__)


class Daemon:
    """`run()` until `stop` is set; raises `FatalError` on failure.

    `pipelines` makes the model of a newly assigned partition; `text` is the text
    encoder every pipeline shares (its cache), None without text fields; `http`, when
    given, gets /healthz and /readyz (the caller adds the observer's pages and serves it);
    `handler` turns records into results (the repartition scorer's reads the source
    headers)."""

    def __init__(self, cfg: MonitorConfig, *, consumer: KafkaConsumer, topics: TopicSinks,
                 changelog: Changelog, checkpointer: Checkpointer, observer: Observer,
                 pipelines: Callable[[], Pipeline], text: TextEncoder | None = None,
                 feedback: FeedbackReader | None = None, sinks: Sequence[BatchSink] = (),
                 http: HttpServer | None = None, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 handler: BatchHandler | None = None) -> None:
        self.cfg = cfg
        self.k = cfg.kafka
        self.consumer = consumer
        self.topics = topics
        self.changelog = changelog
        self.checkpointer = checkpointer
        self.observer = observer
        self.pipelines = pipelines
        self.text = text
        self.feedback = feedback
        self.extra_sinks = tuple(sinks)
        self.http = http
        self.stop = stop or threading.Event()
        self.clock = clock
        self.handler = handler or BatchHandler(cfg.fields)
        self.states: dict[TopicPartition, PartitionState] = {}
        self.pending: set[TopicPartition] = set()
        self.joined = False
        self.fatal: MonitorError | None = None
        self.failed = False
        self.assignments = 0  # assignments received
        self.last_tick = clock()
        self.restoring_since: float | None = None  # clock() when a restore began
        self.stages = StageTimes()
        self.polled_at: float | None = None  # perf_counter when the last records arrived
        self.checkpoints = 0
        if http is not None:
            http.route("/healthz", check(self.healthy))
            http.route("/readyz", check(self.ready))

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http is not None else None

    def run(self) -> None:
        """Poll, process and checkpoint until `stop`; a last checkpoint on the way out.
        The caller closes the clients (the consumer first: its revoke checkpoints)."""
        try:
            self._loop()
            self._checkpoint()
            self._report()  # the sinks see the last checkpoint too
        except BaseException:
            self.failed = True  # closing the consumer revokes: do not checkpoint then
            raise

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every scored record and dead letter sent so far is delivered."""
        self.topics.flush(timeout_s)

    # -- health -------------------------------------------------------------------------
    def healthy(self) -> tuple[bool, str]:
        idle = self.clock() - self.last_tick
        if self.fatal is not None:
            return False, f"failed: {self.fatal}"
        if self.restoring_since is not None:
            # a restore reads the changelog inside the loop; it has its own deadline, and a
            # liveness probe must not restart the pod for it
            took = self.clock() - self.restoring_since
            ok = took < self.k.restore_timeout_s + self.cfg.http.stale_after_s
            return ok, f"restoring partition state ({took:.1f}s)"
        ok = idle < self.cfg.http.stale_after_s
        return ok, f"loop {'alive' if ok else 'stalled'} ({idle:.1f}s since last poll)"

    def ready(self) -> tuple[bool, str]:
        if not self.joined:
            return False, "not assigned yet" if self.assignments == 0 else "rebalancing"
        if self.pending:
            return False, f"restoring {len(self.pending)} partition(s)"
        return True, f"ready: {len(self.states)} partition(s) assigned and restored"

    def _loop(self) -> None:
        since = 0
        cp = self.cfg.checkpoint
        while not self.stop.is_set():
            self.last_tick = self.clock()
            self._restore_pending()
            start = time.perf_counter()
            batch = self._poll_batch()
            self.polled_at = time.perf_counter()
            if batch:
                self.stages.add(consume=self.polled_at - start)
            else:
                self.stages.idle += self.polled_at - start
            for tp, records in batch.items():
                since += self._process(tp, records)
            since += self._feedback()
            idle = not batch and cp.on_idle and since > 0
            if idle or self.checkpointer.due(since, cp.every_events, cp.every_seconds):
                self._checkpoint()
                since = 0
            self._report()

    def _sinks(self) -> tuple[BatchSink, ...]:
        return (self.topics, self.observer, *self.extra_sinks)

    def _report(self) -> None:
        text = self.text
        report = LoopReport(self.stages, self.polled_at,
                            text.cache.hit_ratio if text is not None else None,
                            text.texts_embedded if text is not None else 0, self.checkpoints)
        for sink in self._sinks():
            sink.loop(report)

    def _poll_batch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to `max_batch_events` records, waiting at most `max_batch_wait_ms` to fill the
        batch (the encoder is most efficient on full batches)."""
        deadline = self.clock() + self.k.max_batch_wait_ms / 1000
        merged: dict[TopicPartition, list[ConsumerRecord]] = {}
        n = 0
        while n < self.k.max_batch_events and not self.stop.is_set():
            left_ms = int((deadline - self.clock()) * 1000)
            got = self.consumer.poll(timeout_ms=max(left_ms, 0),
                                     max_records=self.k.max_batch_events - n)
            if self.fatal is not None:
                raise self.fatal
            for tp, records in got.items():
                merged.setdefault(tp, []).extend(records)
                n += len(records)
            if left_ms <= 0 or not got:
                break
        return merged

    def _checkpoint(self) -> None:
        start = time.perf_counter()
        try:
            self.observer.checkpoint_alerts()  # pending alerts durable before the commit
            done = self.checkpointer.checkpoint(list(self.states.values()),
                                                self.cfg.checkpoint.shutdown_timeout_s)
        except MonitorError:
            self.observer.checkpointed(time.perf_counter() - start, ok=False)
            raise
        finally:
            self.stages.add(commit=time.perf_counter() - start)
        if done:
            self.checkpoints += 1
        # nothing to commit is a success too: all state is durable as of now, and an idle
        # daemon must not look like one whose checkpoints fail
        self.observer.checkpointed(time.perf_counter() - start, ok=True, wrote=bool(done))

    def status(self) -> dict[str, object]:
        """/status: readiness and health here, the counts from the observer."""
        return {"ready": self.ready()[1], "healthy": self.healthy()[1]}

    # -- rebalance ----------------------------------------------------------------------
    def on_revoked(self, tps: list[TopicPartition]) -> None:
        try:
            if not self.failed:
                self._checkpoint()
        except MonitorError as err:  # kafka-python swallows listener errors: re-raise in loop
            self.fatal = err
        for tp in tps:
            with self.observer.lock:
                self.states.pop(tp, None)
                self.observer.forget(tp.topic, tp.partition)
            self.pending.discard(tp)
        self.joined = False  # until the next assignment

    def on_assigned(self, tps: list[TopicPartition]) -> None:
        self.joined = True
        self.assignments += 1
        self.pending.update(tps)

    def _restore_pending(self) -> None:
        if not self.pending:
            return
        tps = sorted(self.pending)
        self.restoring_since = self.clock()
        try:
            restored = restore_partitions(self.consumer, tps, self.changelog,
                                          self.checkpointer.store, self.pipelines,
                                          self.k.restore_timeout_s, self.k.feedback_topic)
        finally:
            self.restoring_since = None
        if self.handler.repartitioned:
            self._check_placement(restored)
        with self.observer.lock:
            self.states.update(restored)
            for tp, st in restored.items():
                self.observer.assigned(tp.topic, tp.partition, st.pipeline, st.offset)
        if self.feedback is not None:  # from what the states held now have yet to apply
            self.feedback.position(st.feedback for st in self.states.values())
        self.consumer.resume(*tps)
        self.pending.clear()

    def _check_placement(self, restored: dict[TopicPartition, PartitionState]) -> None:
        """A repartitioned state's segments must still hash to its partition (the internal
        topic's partition count has not changed): else stop, committing nothing."""
        for tp, st in restored.items():
            parts = self.consumer.partitions_for_topic(tp.topic)
            if parts:
                check_restored(tp.topic, tp.partition,
                               [name for name, _ in st.pipeline.engine.views()], len(parts))

    # -- processing ---------------------------------------------------------------------
    def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> int:
        with self.observer.lock:
            return self._process_locked(tp, records)

    def _process_locked(self, tp: TopicPartition, records: list[ConsumerRecord]) -> int:
        st = self.states.get(tp)
        result = None if st is None else self.handler.process(st, records)
        if st is None or result is None:
            return 0
        st.apply(result)
        self.stages.add(**result.seconds)
        if result.alarms:
            for alarm in result.alarms:
                log.warning("drift in %s:%d segment %r at event %d (statistic %.3g)",
                            tp.topic, tp.partition, alarm.segment, alarm.index,
                            alarm.statistic)
        start = time.perf_counter()
        self.topics.batch(result, st.pipeline)
        produced = time.perf_counter()
        self.observer.batch(result, st.pipeline)
        self.stages.add(produce=produced - start, metrics=time.perf_counter() - produced)
        for sink in self.extra_sinks:
            sink.batch(result, st.pipeline)
        return result.received

    def _feedback(self) -> int:
        if self.feedback is None:
            return 0
        records = self.feedback.poll()
        if not records:
            return 0
        with self.observer.lock:
            result = self.handler.feedback(records, self.states.values(),
                                           self.feedback.first_sighting)
            for sink in self._sinks():
                sink.feedback(result)
        return len(records)
