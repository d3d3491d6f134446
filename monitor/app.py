"""The daemon: wires the Kafka edges to the pipeline and runs poll -> process -> checkpoint.

It wires, it does not compute: decoding is `monitor.decode`, scoring the `Pipeline` of each
input partition, durability `monitor.state.checkpoint` (the only place offsets are
committed), outputs `monitor.sinks.topics`. One text model serves every partition.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import MonitorConfig
from monitor.embed import TextModel
from monitor.embed.composite import CompositeEncoder, build_encoder
from monitor.errors import FatalError, MonitorError
from monitor.handler import BatchHandler
from monitor.http import HttpServer, check
from monitor.observer import Observer, open_alert_sink, serve
from monitor.pipeline import Pipeline
from monitor.sinks.topics import TopicSinks
from monitor.source.admin import ensure_output_topics
from monitor.source.feedback import FeedbackReader
from monitor.source.kafka import (
    Rebalance,
    make_consumer,
    make_producer,
    probe,
    subscribe,
    with_backoff,
)
from monitor.state.changelog import Changelog
from monitor.state.checkpoint import Checkpointer
from monitor.state.partition import PartitionState
from monitor.state.recovery import restore_partitions
from monitor.state.seed import Seed
from monitor.state.snapshot import SnapshotStore
from monitor.stats import StageTimes, Stats

log = logging.getLogger(__name__)
T = TypeVar("T")


def load_text_model(cfg: MonitorConfig) -> TextModel | None:
    """The one text model of the process, or None when no field is text."""
    if not (cfg.fields.text or cfg.fields.template):
        return None
    from monitor.embed.profiles import load_text_model as load_profile

    e = cfg.embed
    return load_profile(e.profile, e.model, e.device, e.batch_size, e.max_seq_length, e.threads,
                        e.cache_dir)


class Daemon:
    """`Daemon(cfg, bootstrap).run()` until `stop` is set; raises `FatalError` on failure."""

    def __init__(self, cfg: MonitorConfig, bootstrap: str | list[str],
                 text_model: TextModel | None = None, stop: threading.Event | None = None,
                 on_batch: Callable[[Daemon], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, seed: Seed | None = None) -> None:
        self.cfg = cfg
        self.seed = seed  # `monitor fit` output: where a partition or segment without state starts
        self.k = cfg.kafka
        self.bootstrap = bootstrap
        self.text_model = text_model
        self._text = build_encoder(cfg, text_model).text  # shared cache across partitions
        self.stop = stop or threading.Event()
        self.on_batch = on_batch
        self.clock = clock
        self.stats = Stats()
        self.states: dict[TopicPartition, PartitionState] = {}
        self.pending: set[TopicPartition] = set()
        self.joined = False
        self.fatal: MonitorError | None = None
        self.failed = False
        self.generation = 0  # assignments received
        self.last_tick = clock()
        self.http_port: int | None = None
        self.restoring_since: float | None = None  # clock() when a restore began
        self.feedback: FeedbackReader | None = None
        self.observer = Observer(cfg)
        self.stages = StageTimes()
        self.polled_at: float | None = None  # perf_counter when the last records arrived
        self.handler = BatchHandler(cfg, self.observer, self.stats, self.stages)

    def new_pipeline(self) -> Pipeline:
        own = build_encoder(self.cfg, self.text_model)
        enc = CompositeEncoder(self._text, own.tabular, self.cfg.embed.text_weight,
                               self.cfg.embed.tabular_weight)
        return Pipeline(self.cfg, enc, self.seed)

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
            return False, "not assigned yet" if self.generation == 0 else "rebalancing"
        if self.pending:
            return False, f"restoring {len(self.pending)} partition(s)"
        return True, f"ready: {len(self.states)} partition(s) assigned and restored"

    # -- wiring -------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise FatalError("stopped while waiting for the Kafka broker")

    def run(self) -> None:
        client = self.k.client_options(self.bootstrap)
        k = self.k
        with ExitStack() as stack:
            def retry(connect: Callable[[], T], what: str) -> T:
                return with_backoff(connect, what, k.start_deadline_s, k.start_backoff_max_s,
                                    sleep=self._sleep)

            # local resources first: a bad state_dir or a taken port is said in one line at
            # once, not after the broker retries
            store = SnapshotStore(self.cfg.checkpoint.state_dir) \
                if self.cfg.checkpoint.state_dir else None
            h = self.cfg.http
            http = HttpServer(h.host, h.port, timeout_s=h.timeout_s,
                              max_connections=h.max_connections) if h.enabled else None
            if http is not None:
                stack.callback(http.server.server_close)
            retry(lambda: probe(self.bootstrap), f"bootstrap {self.bootstrap}")
            changelog_parts = retry(lambda: ensure_output_topics(self.bootstrap, k, client),
                                    "topic set-up")
            producer = retry(lambda: make_producer(k, client), "producer")
            stack.callback(producer.close)
            self.consumer = consumer = retry(lambda: make_consumer(k, client), "consumer")
            stack.callback(lambda: consumer.close(autocommit=False))
            self.sinks = self.handler.sinks = TopicSinks(producer, k.scored_topic,
                                                         k.dead_letter_topic)
            self.changelog = Changelog(producer, k.changelog, changelog_parts, client)
            stack.callback(self.changelog.close)
            self.checkpointer = Checkpointer(consumer, producer, self.sinks, self.changelog, store,
                                             self.clock, k.max_snapshot_bytes)
            if http is not None:
                http.route("/healthz", check(self.healthy))
                http.route("/readyz", check(self.ready))
                serve(self.observer, http, self._status)
                stack.enter_context(http)
                self.http_port = http.port
            open_alert_sink(self.cfg, self.observer, os.environ, stack)
            self.observer.lag = self._lag
            if self._text is not None:
                cache = self._text.cache
                self.observer.cache_ratio = lambda: cache.hit_ratio
            topic = k.feedback_topic
            if topic is not None:
                prec = self.stats.precision
                self.observer.flags = lambda: (prec.true_positives, prec.false_positives)
                self.feedback = retry(lambda: FeedbackReader(topic, client), "feedback reader")
                stack.callback(self.feedback.close)
            subscribe(consumer, k, Rebalance(consumer, self._on_revoked, self._on_assigned))
            try:
                self._loop()
                self._checkpoint()
            except BaseException:
                self.failed = True  # closing the consumer revokes: do not checkpoint then
                raise

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
            if self.on_batch is not None:
                self.on_batch(self)

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
            self.observer.sink_checkpoint()  # pending alerts durable before the commit
            done = self.checkpointer.checkpoint(list(self.states.values()),
                                                self.cfg.checkpoint.shutdown_timeout_s)
        except MonitorError:
            self.observer.checkpointed(time.perf_counter() - start, ok=False)
            raise
        finally:
            self.stages.add(commit=time.perf_counter() - start)
        if done:
            self.stats.checkpoints += 1
        # nothing to commit is a success too: all state is durable as of now, and an idle
        # daemon must not look like one whose checkpoints fail
        self.observer.checkpointed(time.perf_counter() - start, ok=True, wrote=bool(done))

    def _lag(self, topic: str, partition: int) -> int | None:
        tp, st = TopicPartition(topic, partition), self.states.get(TopicPartition(topic, partition))
        high = self.consumer.highwater(tp) if st is not None else None
        return None if high is None or st is None else max(0, high - st.offset)

    def _status(self) -> dict[str, object]:
        s = self.stats
        return {"ready": self.ready()[1], "healthy": self.healthy()[1], "events": s.events,
                "scored": s.scored, "outliers": s.outliers, "dead_letters": s.dead_letters,
                "alarms": s.alarms_total, "checkpoints": s.checkpoints,
                "feedback": s.feedback, "flag_precision": s.precision.precision}

    # -- rebalance ----------------------------------------------------------------------
    def _on_revoked(self, tps: list[TopicPartition]) -> None:
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

    def _on_assigned(self, tps: list[TopicPartition]) -> None:
        self.joined = True
        self.generation += 1
        self.pending.update(tps)

    def _restore_pending(self) -> None:
        if not self.pending:
            return
        tps = sorted(self.pending)
        self.restoring_since = self.clock()
        try:
            restored = restore_partitions(self.consumer, tps, self.changelog,
                                          self.checkpointer.store, self.new_pipeline,
                                          self.k.restore_timeout_s, self.k.feedback_topic)
        finally:
            self.restoring_since = None
        with self.observer.lock:
            self.states.update(restored)
            for tp, st in restored.items():
                self.observer.assigned(tp.topic, tp.partition, st.pipeline)
        if self.feedback is not None:  # from what the states held now have yet to apply
            self.feedback.position(st.feedback for st in self.states.values())
        self.consumer.resume(*tps)
        self.pending.clear()

    # -- processing ---------------------------------------------------------------------
    def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> int:
        with self.observer.lock:
            return self._process_locked(tp, records)

    def _process_locked(self, tp: TopicPartition, records: list[ConsumerRecord]) -> int:
        self.observer.records(tp.topic, tp.partition, len(records))
        st = self.states.get(tp)
        return 0 if st is None else self.handler.records(tp, st, records)

    def _feedback(self) -> int:
        if self.feedback is None:
            return 0
        records = self.feedback.poll()
        if not records:
            return 0
        with self.observer.lock:
            return self.handler.feedback(records, self.states.values(),
                                         self.feedback.first_sighting)
