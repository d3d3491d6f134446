"""What the daemon tells the outside world: metrics, /status, the status page (/), and
alerts with explanations.

The daemon calls a handful of hooks (`records`, `dead_letter`, `scored`, `checkpointed`,
`forget`); this module turns them into Prometheus series and `Alert` values for the alert
sink (built by `monitor.sinks.alerts.explain` and `.operational`). It never touches Kafka.
`lock` is held by the loop while it mutates partition state and by every scrape while it
reads it, so a scrape never sees a half-updated engine.
"""

from __future__ import annotations

import heapq
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import orjson

from monitor.config import MonitorConfig
from monitor.events import Alert, DriftAlarm, Event, Score
from monitor.pipeline import Pipeline
from monitor.sinks.alerts.explain import RecentFields, drift_alert, drift_resolved, outlier_alert
from monitor.sinks.alerts.operational import OperationalWatch
from monitor.sinks.labels import bounded_label
from monitor.sinks.metrics import OTHER, Metrics, PartitionView, ProcessView

log = logging.getLogger(__name__)

Key = tuple[str, int]
RECENT_OUTLIERS = 20  # the status page's newest outliers, process-wide
RECENT_ALARMS = 10
SEGMENT_ROWS = 50  # segments on the status page: drifting first, then the busiest


class Observer:
    """Metrics, status and alert generation for one daemon process."""

    def __init__(self, cfg: MonitorConfig, clock: Callable[[], float] = time.time,
                 submit: Callable[[Alert], None] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.submit = submit
        self.lock = threading.RLock()
        self.partitions: dict[Key, Pipeline] = {}
        self.lag: Callable[[str, int], int | None] = lambda t, p: None
        self.cache_ratio: Callable[[], float | None] = lambda: None
        self.alerts_pending: Callable[[], int | None] = lambda: None
        self.flags: Callable[[], tuple[int, int] | None] = lambda: None  # feedback on flags
        self.sink_checkpoint: Callable[[], None] = lambda: None
        self.drop_alerts: Callable[[dict[str, str]], None] = lambda labels: None
        self.drifting: set[tuple[str, int, str]] = set()
        self.last_alarm: dict[str, Any] | None = None
        # newest first on the status page: ids, scores and allow-listed fields only
        self.recent_outliers: deque[dict[str, Any]] = deque(maxlen=RECENT_OUTLIERS)
        self.recent_alarms: deque[dict[str, Any]] = deque(maxlen=RECENT_ALARMS)
        self.memory = RecentFields(cfg.alerts.allow_fields)  # empty without an allow-list
        self.ops = OperationalWatch(cfg.alerts, clock)
        model = cfg.embed.model if cfg.fields.text or cfg.fields.template else ""
        self.metrics = Metrics(segment_cap=cfg.metrics.segment_cap, view=self.view,
                               clock=clock, model=model)

    # -- hooks the loop calls -------------------------------------------------------------
    def assigned(self, topic: str, partition: int, pipeline: Pipeline) -> None:
        """A partition restored here: its segments still drifting (as another process, or
        this one before a restart, left them) are resolved from here when they calm down."""
        self.partitions[(topic, partition)] = pipeline
        self.drifting |= {(topic, partition, name)
                          for name, m in pipeline.engine.views() if m.drifting}

    def forget(self, topic: str, partition: int) -> None:
        """A partition revoked: its new owner resolves its drift alerts, so this process
        drops them without a word (a repeat of a firing it no longer watches would
        contradict the new owner's resolve)."""
        self.partitions.pop((topic, partition), None)
        self.metrics.forget(topic, partition)
        self.drifting = {d for d in self.drifting if d[:2] != (topic, partition)}
        self.drop_alerts({"topic": topic, "partition": str(partition)})
        with self.lock:  # the page shows nothing of a partition this process let go
            for ring in (self.recent_alarms, self.recent_outliers):
                kept = [r for r in ring if (r["topic"], r["partition"]) != (topic, partition)]
                ring.clear()
                ring.extend(kept)

    def records(self, topic: str, partition: int, n: int) -> None:
        self.metrics.consumed.labels(topic, str(partition)).inc(n)
        if self.submit is not None:
            self._send(self.ops.records(topic, n))

    def dead_letter(self, topic: str, partition: int) -> None:
        self.metrics.dead_lettered.labels(topic, str(partition)).inc()
        if self.submit is not None:
            self._send(self.ops.dead_letter(topic))

    def scored(self, topic: str, partition: int, pipeline: Pipeline, events: Sequence[Event],
               scores: Sequence[Score], alarms: Sequence[DriftAlarm]) -> None:
        m = self.metrics
        now = self.clock()
        if pipeline.last_embed_seconds is not None:
            m.embed_seconds.observe(pipeline.last_embed_seconds)
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
        for alarm in alarms:
            self.last_alarm = {"topic": topic, "partition": partition, **alarm.as_dict()}
            self.recent_alarms.append({**self.last_alarm, "time": now,
                                       "segment": bounded_label(alarm.segment)})
            # an episode may end within the batch that began it: it still resolves
            self.drifting.add((topic, partition, alarm.segment))
            if self.submit is not None:
                self.submit(drift_alert(topic, alarm, now, partition=partition,
                                        examples=self.memory.describe(topic, alarm.examples)))
        self._resolve(topic, partition, pipeline, now)

    def checkpointed(self, seconds: float, ok: bool, wrote: bool = True) -> None:
        """`wrote`: something was made durable and committed (only then is the duration
        a checkpoint's cost); a check that found everything durable is a success too."""
        if ok:
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

    def _resolve(self, topic: str, partition: int, pipeline: Pipeline, now: float) -> None:
        """Resolve per partition: each partition holds its own model of a segment."""
        for name, model in pipeline.engine.views():
            key = (topic, partition, name)
            if model.drifting:
                self.drifting.add(key)
            elif key in self.drifting:
                self.drifting.discard(key)
                if self.submit is not None:
                    self.submit(drift_resolved(topic, name, now, partition=partition))
                    self._resolve_unpartitioned(topic, name, now)

    def _resolve_unpartitioned(self, topic: str, segment: str, now: float) -> None:
        """Drift alerts fired before their labels named the partition never resolve
        otherwise: resolve one still held as firing once no partition drifts there."""
        if any(t == topic and n == segment for t, _, n in self.drifting):
            return
        legacy = drift_resolved(topic, segment, now)
        if self.submit is not None and self.ops.firing(legacy):
            self.submit(legacy)

    # -- read side ------------------------------------------------------------------------
    def view(self) -> ProcessView:
        with self.lock:
            parts = [PartitionView(t, p, pl.engine, self.lag(t, p))
                     for (t, p), pl in sorted(self.partitions.items())]
            return ProcessView(parts, self.cache_ratio(), self.alerts_pending(), self.flags())

    def status(self, extra: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            parts = []
            for (t, p), pl in sorted(self.partitions.items()):
                eng = pl.engine
                parts.append({
                    "topic": t, "partition": p, "lag": self.lag(t, p), "events": eng.index,
                    "segments": eng.segment_count, "evicted": eng.evicted,
                    "warming_up": sum(1 for m in (v for _, v in eng.views()) if not m.ready),
                    "drifting": sorted(bounded_label(n) for n, m in eng.views()
                                       if m.drifting),
                })
            alarm = self.last_alarm
            if alarm is not None and "segment" in alarm:
                alarm = alarm | {"segment": bounded_label(str(alarm["segment"]))}
            return {**extra, "partitions": parts, "last_alarm": alarm}

    def status_json(self, extra: Callable[[], dict[str, Any]]) -> tuple[int, str, bytes]:
        body = orjson.dumps(self.status(extra()), option=orjson.OPT_INDENT_2)
        return 200, "application/json", body

    def page(self, extra: dict[str, Any], rows: int = SEGMENT_ROWS) -> dict[str, Any]:
        """What the status page shows: `status()` plus at most `rows` segments, the newest
        alarms and outliers. Only segments named elsewhere are listed: drifting ones (as in
        `/status`), then the busiest that keep their name in `/metrics`; names bounded."""
        with self.lock:
            status = self.status(extra)
            named = self.metrics.collector.named_segments(
                PartitionView(t, p, pl.engine) for (t, p), pl in self.partitions.items())
            ranked = heapq.nsmallest(
                rows, ((not m.drifting, -m.seen, name, key)
                       for key, pl in self.partitions.items()
                       for name, m in pl.engine.views()
                       if m.drifting or name in named))
            segments = []
            for _, _, name, (t, p) in ranked:
                eng = self.partitions[(t, p)].engine
                m = eng.view(name)
                assert m is not None  # ranked from this engine's views just above
                state = "drifting" if m.drifting else "stable" if m.ready else "warming up"
                segments.append({
                    "topic": t, "partition": p, "segment": bounded_label(name),
                    "state": state, "events": m.seen, "outliers": m.outliers,
                    "outlier_rate": m.window_outlier_rate,
                    "statistic": m.statistic, "threshold": eng.threshold,
                })
            total = sum(pl.engine.segment_count for pl in self.partitions.values())
            # the same rule for the rows of alarms and outliers: a segment /metrics folds
            # into "other" (and that is not drifting) is not named here either
            shown = {bounded_label(n) for n in named} | {
                bounded_label(n) for pl in self.partitions.values()
                for n, m in pl.engine.views() if m.drifting}

            def fold(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
                return [r if r["segment"] in shown else r | {"segment": OTHER}
                        for r in reversed(list(rows))]

            return {"status": status, "segments": segments, "segments_total": total,
                    "alarms": fold(self.recent_alarms), "outliers": fold(self.recent_outliers)}


def _recent_outlier(topic: str, partition: int, event: Event, s: Score, now: float,
                    allow: Sequence[str]) -> dict[str, Any]:
    """An outlier as the status page lists it: event fields only from the allow-list."""
    return {"time": now, "topic": topic, "partition": partition, "id": s.event_id,
            "segment": bounded_label(s.segment), "score": s.score, "p_value": s.p_value,
            "risk": s.risk, "driver": s.driver,
            "fields": {k: event.fields[k] for k in allow if k in event.fields}}


def serve(observer: Observer, http: Any, extra: Callable[[], dict[str, Any]]) -> None:
    """Add /metrics, /status and the HTML status page (/) to the daemon's HTTP server."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from monitor.sinks.status_page import CONTENT_TYPE, render

    def metrics() -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(observer.metrics.registry)

    http.route("/metrics", metrics)
    http.route("/status", lambda: observer.status_json(extra))
    http.route("/", lambda: (200, CONTENT_TYPE, render(observer.page(extra()))))


def open_alert_sink(cfg: MonitorConfig, observer: Observer, env: Mapping[str, str],
                    stack: ExitStack) -> None:
    """Start the alert sink when receivers are configured and connect it to `observer`."""
    if not cfg.alerts.receivers:
        return
    from monitor.sinks.alerts import AlertSink

    state_dir = cfg.checkpoint.state_dir
    if state_dir is None:
        state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="monitor-alerts-"))
        log.warning("checkpoint.state_dir is not set: the alert outbox lives in %s and does "
                    "not survive a restart", state_dir)
    sink = AlertSink(cfg.alerts, state_dir, env=env, on_count=observer.metrics.on_alert_count)
    stack.enter_context(sink)
    observer.submit = sink.submit
    observer.alerts_pending = sink.pending
    observer.sink_checkpoint = sink.checkpoint
    observer.ops.firing = sink.firing  # what fired before a restart can still resolve
    observer.drop_alerts = sink.drop

    def detach() -> None:  # runs before the sink closes (LIFO): late revokes skip it
        observer.submit = None
        observer.sink_checkpoint = lambda: None
        observer.alerts_pending = lambda: None
        observer.ops.firing = lambda alert: False
        observer.drop_alerts = lambda labels: None

    stack.callback(detach)
