"""What the daemon tells the outside world: metrics, alerts with explanations, and the
state `/status` and the status page read (`monitor.sinks.status`).

A `BatchSink` (`monitor.outcome`): the daemon hands it every batch's and every feedback
poll's result, and tells it of assignments, revocations and checkpoints; this module
turns them into Prometheus series and `Alert` values for the alert sink it was built
with (alerts built by `monitor.sinks.alerts.explain`, `.drift_alerts` and `.operational`).
It never touches Kafka. `lock` is held by the loop while it mutates partition state and
by every scrape while it reads it, so a scrape never sees a half-updated engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from monitor.config import MonitorConfig
from monitor.events import Alert, DriftAlarm, Event, Score
from monitor.feedback import FlagPrecision
from monitor.outcome import BatchResult, FeedbackResult, LoopReport
from monitor.pipeline import Pipeline
from monitor.repartition.origin import Origin
from monitor.repartition.split import by_source
from monitor.sinks.alerts.drift_alerts import DriftAlerts
from monitor.sinks.alerts.explain import RecentFields, outlier_alert
from monitor.sinks.alerts.operational import OperationalWatch
from monitor.sinks.labels import bounded_label
from monitor.sinks.metrics import Metrics, PartitionView, ProcessView

log = logging.getLogger(__name__)

Key = tuple[str, int]
RECENT_OUTLIERS = 20  # the status page's newest outliers, process-wide
RECENT_ALARMS = 10


class AlertPort(Protocol):
    """What the observer asks of the alert sink (`monitor.sinks.alerts.AlertSink`)."""

    def submit(self, alert: Alert) -> None: ...

    def firing(self, alert: Alert) -> bool: ...

    def drop(self, labels: dict[str, str]) -> None: ...

    def checkpoint(self) -> None: ...

    def pending(self) -> int: ...


class Totals:
    """Process-wide counts for /status (since the process started)."""

    def __init__(self) -> None:
        self.events = self.scored = self.outliers = self.dead_letters = 0
        self.alarms = self.checkpoints = self.feedback = 0


class Observer:
    """Metrics, status and alert generation for one daemon process.

    `alerts` is the alert sink (None without receivers); `highwater` gives an input
    partition's end offset as the consumer last saw it (for the lag); `feedback` says
    whether a feedback topic is read (then /status and /metrics report how feedback
    judged the outlier flags). `input_name`: with repartition, how drift alerts name the
    input (`monitor.sinks.alerts.drift_alerts.input_label`); the scorer's own config
    names only the internal topic."""

    def __init__(self, cfg: MonitorConfig, clock: Callable[[], float] = time.time,
                 alerts: AlertPort | None = None,
                 highwater: Callable[[str, int], int | None] | None = None,
                 metrics: Metrics | None = None, input_name: str | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.alerts = alerts
        self.submit = alerts.submit if alerts is not None else None
        self.highwater = highwater
        self.lock = threading.RLock()
        self.partitions: dict[Key, Pipeline] = {}
        self.offsets: dict[Key, int] = {}  # next input offset of each partition
        self.totals = Totals()
        self.precision = FlagPrecision()
        self.cache_ratio: float | None = None
        self.last_alarm: dict[str, Any] | None = None
        # newest first on the status page: ids, scores and allow-listed fields only
        self.recent_outliers: deque[dict[str, Any]] = deque(maxlen=RECENT_OUTLIERS)
        self.recent_alarms: deque[dict[str, Any]] = deque(maxlen=RECENT_ALARMS)
        self.memory = RecentFields(cfg.alerts.allow_fields)  # empty without an allow-list
        # what fired before a restart can still resolve
        self.ops = OperationalWatch(cfg.alerts, clock, **(
            {"firing": alerts.firing} if alerts is not None else {}))
        self.reads_feedback = cfg.kafka.feedback_topic is not None
        self.counts_input = not cfg.kafka.repartition
        self.drift_alerts = DriftAlerts(self.submit, lambda a: self.ops.firing(a), input_name)
        self.metrics = metrics if metrics is not None else daemon_metrics(cfg, clock)
        self.metrics.read_state_from(self.view)

    # -- the BatchSink side: what the loop hands over --------------------------------------
    def batch(self, result: BatchResult, pipeline: Pipeline) -> None:
        """Counts and outliers per source partition (with repartition, the source records'
        partitions); drift and the lag per partition of the model."""
        t, p = result.topic, result.partition
        for part in by_source(result):
            if self.counts_input:  # with repartition the router reads (and counts) input
                self.records(part.topic, part.partition, part.received)
            for d in part.dead_letters:
                self.dead_letter(d.topic, d.partition, watch=self.counts_input)
            self.scored_events(part.topic, part.partition, pipeline, part.events, part.scores)
        if result.origins is not None and self.submit is not None:
            self.memory.remember(t, result.events)  # drift examples, found by the model
        if result.seconds.get("embed"):
            self.metrics.embed_seconds.observe(result.seconds["embed"])
        self.drift(t, p, pipeline, result.alarms, result.origins)
        self.offsets[(t, p)] = result.next_offset
        n = self.totals
        n.events += result.received
        n.scored += result.scored
        n.dead_letters += len(result.dead_letters)
        n.alarms += len(result.alarms)
        for s in result.scores:
            if s.outlier:
                n.outliers += 1
                self.precision.flagged(s.event_id)

    def feedback(self, result: FeedbackResult) -> None:
        for (t, p), count in result.received.items():
            self.records(t, p, count)
        for d in result.dead_letters:
            self.dead_letter(d.topic, d.partition)
        self.totals.dead_letters += len(result.dead_letters)
        for event_id, is_fraud in result.labels:
            self.precision.feedback(event_id, is_fraud)
        self.totals.feedback += len(result.labels)

    def loop(self, report: LoopReport) -> None:
        self.cache_ratio = report.cache_hit_ratio

    def checkpoint_alerts(self) -> None:
        """Make pending alerts durable (before the checkpoint commits offsets)."""
        if self.alerts is not None:
            self.alerts.checkpoint()

    def lag(self, topic: str, partition: int) -> int | None:
        high = self.highwater(topic, partition) if self.highwater is not None else None
        offset = self.offsets.get((topic, partition))
        return None if high is None or offset is None else max(0, high - offset)

    # -- hooks the loop calls -------------------------------------------------------------
    def assigned(self, topic: str, partition: int, pipeline: Pipeline, offset: int) -> None:
        """A partition restored here: its segments still drifting (as another process, or
        this one before a restart, left them) are resolved from here when they calm down."""
        self.partitions[(topic, partition)] = pipeline
        self.offsets[(topic, partition)] = offset
        self.drift_alerts.assigned(topic, partition, pipeline)

    def forget(self, topic: str, partition: int) -> None:
        """A partition revoked: its new owner resolves its drift alerts, so this process
        drops them without a word (a repeat of a firing it no longer watches would
        contradict the new owner's resolve)."""
        self.partitions.pop((topic, partition), None)
        self.offsets.pop((topic, partition), None)
        self.metrics.forget(topic, partition)
        for labels in self.drift_alerts.forget(topic, partition):
            if self.alerts is not None:
                self.alerts.drop(labels)
        with self.lock:  # the page shows nothing of a partition this process let go
            kept = [r for r in self.recent_alarms if r["model"] != [topic, partition]]
            self.recent_alarms.clear()
            self.recent_alarms.extend(kept)
            kept = [r for r in self.recent_outliers if (r["topic"], r["partition"]) != (
                topic, partition)]
            self.recent_outliers.clear()
            self.recent_outliers.extend(kept)

    def records(self, topic: str, partition: int, n: int) -> None:
        self.metrics.consumed.labels(topic, str(partition)).inc(n)
        if self.submit is not None:
            self._send(self.ops.records(topic, n))

    def dead_letter(self, topic: str, partition: int, watch: bool = True) -> None:
        """`watch`: part of the topic's dead-letter rate (which the router owns for the
        input with repartition)."""
        self.metrics.dead_lettered.labels(topic, str(partition)).inc()
        if self.submit is not None and watch:
            self._send(self.ops.dead_letter(topic))

    def scored(self, topic: str, partition: int, pipeline: Pipeline, events: Sequence[Event],
               scores: Sequence[Score], alarms: Sequence[DriftAlarm]) -> None:
        self.scored_events(topic, partition, pipeline, events, scores)
        self.drift(topic, partition, pipeline, alarms)

    def scored_events(self, topic: str, partition: int, pipeline: Pipeline,
                      events: Sequence[Event], scores: Sequence[Score]) -> None:
        """Latency, score and p-value metrics, outliers and their alerts."""
        m = self.metrics
        now = self.clock()
        m.latency.observe_many((topic,), [max(0.0, now - ev.timestamp) for ev in events
                                          if ev.timestamp is not None])
        scored = [s for s in scores if s.p_value is not None]
        m.score.observe_many((topic,), [s.score for s in scored])
        m.p_value.observe_many((topic,), [s.p_value for s in scored if s.p_value is not None])
        m.scored.labels(topic, str(partition)).inc(len(scored))
        if len(events) != len(scores):
            raise ValueError(f"{len(events)} events but {len(scores)} scores")
        flagged = [i for i, s in enumerate(scores) if s.outlier]
        allow = self.cfg.alerts.allow_fields
        for i in flagged[-RECENT_OUTLIERS:]:
            self.recent_outliers.append(_recent_outlier(topic, partition, events[i], scores[i],
                                                        now, allow))
        if self.submit is not None:
            self.memory.remember(topic, events)  # before any alert: examples may be new
            for i in flagged:
                self.submit(outlier_alert(topic, events[i], scores[i], pipeline, now, allow,
                                          self.memory))

    def drift(self, topic: str, partition: int, pipeline: Pipeline,
              alarms: Sequence[DriftAlarm], origins: Sequence[Origin] | None = None) -> None:
        """Drift alarms and resolutions of the partition whose model `pipeline` is;
        `origins` name the source record of each event (repartition)."""
        now = self.clock()
        for f in self.drift_alerts.alarmed(topic, partition, pipeline, alarms, origins, now,
                                           self.memory.describe):
            row: dict[str, Any] = {"topic": f.topic, "partition": f.partition,
                                   **f.alarm.as_dict()}
            if f.source is not None:
                row["source"] = f.source.where()
            self.last_alarm = row
            self.recent_alarms.append({**row, "time": now, "model": [topic, partition],
                                       "segment": bounded_label(f.alarm.segment)})

    def checkpointed(self, seconds: float, ok: bool, wrote: bool = True) -> None:
        """`wrote`: something was made durable and committed (only then is the duration
        a checkpoint's cost); a check that found everything durable is a success too."""
        if ok:
            self.totals.checkpoints += wrote
            if wrote:
                self.metrics.checkpoint_seconds.observe(seconds)
            self.metrics.checkpoint_last.set(self.clock())
        else:
            self.metrics.checkpoint_failures.inc()
        if self.submit is not None:
            self._send(self.ops.checkpointed(ok))

    def _send(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if self.submit is not None:
                self.submit(alert)

    # -- read side ------------------------------------------------------------------------
    def view(self) -> ProcessView:
        with self.lock:
            parts = [PartitionView(t, p, pl.engine, self.lag(t, p))
                     for (t, p), pl in sorted(self.partitions.items())]
            pending = self.alerts.pending() if self.alerts is not None else None
            flags = ((self.precision.true_positives, self.precision.false_positives)
                     if self.reads_feedback else None)
            return ProcessView(parts, self.cache_ratio, pending, flags)


def _recent_outlier(topic: str, partition: int, event: Event, s: Score, now: float,
                    allow: Sequence[str]) -> dict[str, Any]:
    """An outlier as the status page lists it: event fields only from the allow-list."""
    return {"time": now, "topic": topic, "partition": partition, "id": s.event_id,
            "segment": bounded_label(s.segment), "score": s.score, "p_value": s.p_value,
            "risk": s.risk, "driver": s.driver,
            "fields": {k: event.fields[k] for k in allow if k in event.fields}}


def daemon_metrics(cfg: MonitorConfig, clock: Callable[[], float] = time.time) -> Metrics:
    """The process's instruments (the observer adds the state series it reads at scrape)."""
    model = cfg.embed.model if cfg.fields.text or cfg.fields.template else ""
    return Metrics(segment_cap=cfg.metrics.segment_cap, clock=clock, model=model)
