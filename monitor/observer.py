"""What the daemon tells the outside world: metrics, /status, and alerts with explanations.

The daemon calls a handful of hooks (`records`, `dead_letter`, `scored`, `checkpointed`,
`forget`); this module turns them into Prometheus series and `Alert` values for the alert
sink. It never touches Kafka. `lock` is held by the loop while it mutates partition state
and by every scrape while it reads it, so a scrape never sees a half-updated engine.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import orjson

from monitor.config import MonitorConfig
from monitor.embed.tabular import signed_log
from monitor.events import Alert, DriftAlarm, Event, Score
from monitor.pipeline import Pipeline
from monitor.sinks.metrics import Metrics, PartitionView, ProcessView

log = logging.getLogger(__name__)

Key = tuple[str, int]


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
        self.drifting: set[tuple[str, int, str]] = set()
        self.last_alarm: dict[str, Any] | None = None
        model = cfg.embed.model if cfg.fields.text or cfg.fields.template else ""
        self.metrics = Metrics(segment_cap=cfg.metrics.segment_cap, view=self.view,
                               clock=clock, model=model)

    # -- hooks the loop calls -------------------------------------------------------------
    def assigned(self, topic: str, partition: int, pipeline: Pipeline) -> None:
        self.partitions[(topic, partition)] = pipeline

    def forget(self, topic: str, partition: int) -> None:
        self.partitions.pop((topic, partition), None)
        self.metrics.forget(topic, partition)
        self.drifting = {d for d in self.drifting if d[:2] != (topic, partition)}

    def records(self, topic: str, partition: int, n: int) -> None:
        self.metrics.consumed.labels(topic, str(partition)).inc(n)

    def dead_letter(self, topic: str, partition: int) -> None:
        self.metrics.dead_lettered.labels(topic, str(partition)).inc()

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
        if self.submit is not None:
            for ev, s in zip(events, scores, strict=True):
                if s.outlier:
                    self.submit(outlier_alert(topic, ev, s, pipeline, now,
                                              self.cfg.alerts.allow_fields))
        for alarm in alarms:
            self.last_alarm = {"topic": topic, "partition": partition, **alarm.as_dict()}
            if self.submit is not None:
                self.submit(drift_alert(topic, alarm, now))
        self._resolve(topic, partition, pipeline, now)

    def checkpointed(self, seconds: float, ok: bool) -> None:
        if ok:
            self.metrics.checkpoint_seconds.observe(seconds)
            self.metrics.checkpoint_last.set(self.clock())
            return
        self.metrics.checkpoint_failures.inc()
        if self.submit is not None:
            self.submit(Alert(kind="operational", status="firing",
                              labels={"condition": "checkpoint_failed"},
                              annotations={"summary": "checkpoint failed: offsets not "
                                           "committed; the daemon stops"},
                              starts_at=self.clock()))

    def _resolve(self, topic: str, partition: int, pipeline: Pipeline, now: float) -> None:
        for name, model in pipeline.engine.segments.items():
            key = (topic, partition, name)
            if model.drifting:
                self.drifting.add(key)
            elif key in self.drifting:
                self.drifting.discard(key)
                if self.submit is not None:
                    self.submit(drift_resolved(topic, name, now))

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
                    "segments": len(eng.segments), "evicted": eng.evicted,
                    "warming_up": sum(1 for m in eng.segments.values() if not m.ready),
                    "drifting": sorted(n for n, m in eng.segments.items() if m.drifting),
                })
            return {**extra, "partitions": parts, "last_alarm": self.last_alarm}

    def status_json(self, extra: Callable[[], dict[str, Any]]) -> tuple[int, str, bytes]:
        body = orjson.dumps(self.status(extra()), option=orjson.OPT_INDENT_2)
        return 200, "application/json", body


def serve(observer: Observer, http: Any, extra: Callable[[], dict[str, Any]]) -> None:
    """Add /metrics and /status to the daemon's HTTP server."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    def metrics() -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(observer.metrics.registry)

    http.route("/metrics", metrics)
    http.route("/status", lambda: observer.status_json(extra))


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

    def detach() -> None:  # runs before the sink closes (LIFO): late revokes skip it
        observer.submit = None
        observer.sink_checkpoint = lambda: None
        observer.alerts_pending = lambda: None

    stack.callback(detach)


def deviating_features(event: Event, pipeline: Pipeline, top: int = 3,
                       allow: Collection[str] = ()) -> list[dict[str, Any]]:
    """The numeric fields furthest from their robust centre, as robust z-scores.

    Field names and z-scores say why without saying what: the event's own value is added
    only for fields in `allow` (``alerts.allow_fields``), so no value leaks by default.
    """
    tab = pipeline.encoder.tabular
    if tab is None or not tab.numeric:
        return []
    out: list[dict[str, Any]] = []
    for j, f in enumerate(tab.numeric):
        x = event.numeric.get(f.name, math.nan)
        if math.isnan(x):
            continue
        v = float(signed_log(x)) if f.log else x  # type: ignore[arg-type]
        z = (v - tab.scaler.center[j]) / tab.scaler.spread[j]
        item: dict[str, Any] = {"field": f.name, "z": round(float(z), 2)}
        if f.name in allow:
            item["value"] = x
        out.append(item)
    return sorted(out, key=lambda d: -abs(d["z"]))[:top]


def outlier_alert(topic: str, event: Event, s: Score, pipeline: Pipeline, now: float,
                  allow: Collection[str] = ()) -> Alert:
    """One outlier; the sink groups a storm of them into counted notifications."""
    model = pipeline.engine.segments.get(s.segment)
    ref = model.reference if model is not None else None
    exemplars = list(ref.exemplars[s.centroid]) if ref is not None and s.centroid >= 0 else []
    return explain_outlier(topic, s, now, exemplars=exemplars,
                           features=deviating_features(event, pipeline, allow=allow),
                           fields={k: v for k, v in event.fields.items() if k in allow})


def explain_outlier(topic: str, s: Score, now: float, *, exemplars: Sequence[str] = (),
                    features: Sequence[dict[str, Any]] = (),
                    fields: Mapping[str, Any] | None = None) -> Alert:
    """The outlier alert for score `s`: the one shape every receiver and test sees.

    `details["event_id"]` names the event (the sink ranks and shows the worst ones);
    `fields` should already be allow-listed, the sink redacts them again regardless.
    """
    return Alert(
        kind="outlier", status="firing", labels={"topic": topic, "segment": s.segment},
        annotations={"summary": f"outlier in {topic} segment {s.segment}"},
        details={"event_id": s.event_id, "score": s.score, "p_value": s.p_value,
                 "fraud_similarity": s.fraud_similarity, "risk": s.risk,
                 "nearest_centroid": s.centroid, "centroid_exemplars": list(exemplars),
                 "deviating_features": [dict(f) for f in features],
                 "fields": dict(fields or {})},
        starts_at=now)


def drift_resolved(topic: str, segment: str, now: float) -> Alert:
    """The segment stayed quiet for the hysteresis: same fingerprint as its firing alert."""
    return Alert(kind="drift", status="resolved", labels={"topic": topic, "segment": segment},
                 annotations={"summary": f"drift in {topic} segment {segment} resolved"},
                 starts_at=now, ends_at=now)


def drift_alert(topic: str, alarm: DriftAlarm, now: float) -> Alert:
    """A segment's detector alarmed: the statistic, what moved, and recent examples."""
    return Alert(
        kind="drift", status="firing", labels={"topic": topic, "segment": alarm.segment},
        annotations={"summary": f"drift in {topic} segment {alarm.segment}",
                     "description": f"Shiryaev-Roberts statistic {alarm.statistic:.3g} >= "
                                    f"{alarm.threshold:.3g} at event {alarm.index}"},
        details={"statistic": alarm.statistic, "threshold": alarm.threshold,
                 "detector": alarm.detector, "index": alarm.index,
                 "grown_clusters": list(alarm.grown), "shrunk_clusters": list(alarm.shrunk),
                 "centroid_shift": alarm.centroid_shift,
                 "occupancy_divergence": alarm.occupancy_divergence,
                 "outlier_rate": alarm.outlier_rate, "example_ids": list(alarm.examples)},
        starts_at=now)
