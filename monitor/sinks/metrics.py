"""Prometheus metrics: every series the daemon exports, in one module, on an injected registry.

Two kinds of series. Event counters and histograms are updated by the loop as it works.
Everything that describes state (per-segment drift statistics, reference size, lag, cache
hit ratio) is computed at scrape time by `StateCollector` from the live partition states,
so a revoked partition's series vanish with it and no stale gauge outlives its segment.

Segment labels are bounded: the `segment_cap - 1` busiest segments (by events, over all
partitions) keep their names, the rest are summed (counters) or maxed (drift state and
statistic) or averaged (window gauges) under ``segment="other"``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.score.engine import Engine
from monitor.sinks.histogram import BatchHistogram
from monitor.sinks.labels import bounded_label

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the exposition for no dashboard use

OTHER = "other"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
EMBED_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
SCORE_BUCKETS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0)
P_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass
class PartitionView:
    """What the collector needs to know about one assigned input partition."""

    topic: str
    partition: int
    engine: Engine
    lag: int | None = None


@dataclass
class ProcessView:
    """Process-wide values read at scrape time."""

    partitions: list[PartitionView] = field(default_factory=list)
    cache_hit_ratio: float | None = None
    alerts_pending: int | None = None
    flags: tuple[int, int] | None = None  # outlier flags confirmed, refuted by feedback


class Metrics:
    """The daemon's instruments. Pass a fresh `CollectorRegistry()` in tests."""

    def __init__(self, registry: CollectorRegistry | None = None, segment_cap: int = 20,
                 view: Callable[[], ProcessView] | None = None,
                 clock: Callable[[], float] = time.time, model: str = "") -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        tp = ["topic", "partition"]
        self.consumed = Counter("monitor_events_consumed", "Records read from input topics.",
                                tp, registry=r)
        self.scored = Counter("monitor_events_scored", "Events scored (past warm-up).", tp,
                              registry=r)
        self.dead_lettered = Counter("monitor_events_dead_lettered",
                                     "Undecodable or invalid records sent to the dead-letter "
                                     "topic.", tp, registry=r)
        # per-event histograms take whole batches (see histogram.py)
        self.latency = BatchHistogram("monitor_processing_latency_seconds",
                                      "Event time to scored, per event.", ["topic"],
                                      LATENCY_BUCKETS, r)
        self.embed_seconds = Histogram("monitor_embed_batch_seconds",
                                       "Wall time to embed one batch.", buckets=EMBED_BUCKETS,
                                       registry=r)
        self.score = BatchHistogram("monitor_outlier_score", "Nonconformity (cosine distance "
                                    "to the nearest reference centroid).", ["topic"],
                                    SCORE_BUCKETS, r)
        self.p_value = BatchHistogram("monitor_p_value", "Conformal p-values of scored events.",
                                      ["topic"], P_BUCKETS, r)
        self.checkpoint_seconds = Histogram("monitor_checkpoint_duration_seconds",
                                            "Checkpoint wall time (flush, changelog, commit).",
                                            buckets=EMBED_BUCKETS, registry=r)
        self.checkpoint_last = Gauge("monitor_checkpoint_last_success_timestamp_seconds",
                                     "Unix time of the last successful checkpoint.",
                                     registry=r)
        self.checkpoint_failures = Counter("monitor_checkpoint_failures",
                                           "Checkpoints that failed.", registry=r)
        self.alerts_sent = Counter("monitor_alerts_sent", "Alert notifications delivered.",
                                   registry=r)
        self.alerts_failed = Counter("monitor_alerts_failed", "Alert notifications that "
                                     "failed for good (rejected or expired).", registry=r)
        self.alerts_dropped = Counter("monitor_alerts_dropped", "Alerts dropped before any "
                                      "notification: a receiver's group cap was reached.",
                                      registry=r)
        Info("monitor_build", "Build information.", registry=r).info(
            {"version": __version__, "python": sys.version.split()[0], "model": model})
        self.collector = StateCollector(view or ProcessView, segment_cap, clock)
        r.register(self.collector)

    def read_state_from(self, view: Callable[[], ProcessView]) -> None:
        """The state series come from `view()` at every scrape (the observer's)."""
        self.collector.view = view

    def forget(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's loop-updated series (state series vanish by design)."""
        for c in (self.consumed, self.scored, self.dead_lettered):
            with contextlib.suppress(KeyError):
                c.remove(topic, str(partition))

    def on_alert_count(self, receiver: str, counter: str, n: int) -> None:
        """Callback for the alert sink's counters."""
        if counter == "sent":
            self.alerts_sent.inc(n)
        elif counter in ("failed", "expired"):
            self.alerts_failed.inc(n)
        elif counter == "dropped" and n > 0:
            self.alerts_dropped.inc(n)


def _family(kind: str, name: str, doc: str, labels: list[str]) -> Any:
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(name, doc, labels=labels)


class StateCollector(Collector):
    """Computes the state series from a `ProcessView` at every scrape."""

    def __init__(self, view: Callable[[], ProcessView], segment_cap: int,
                 clock: Callable[[], float]) -> None:
        self.view = view
        self.segment_cap = max(1, segment_cap)
        self.clock = clock

    def named_segments(self, parts: Iterable[PartitionView]) -> set[str]:
        volume: dict[str, int] = {}
        for pv in parts:
            for name, model in pv.engine.views():
                volume[name] = volume.get(name, 0) + model.seen
        if len(volume) <= self.segment_cap:
            return set(volume)
        ranked = sorted(volume, key=lambda s: (-volume[s], s))
        return set(ranked[: self.segment_cap - 1])

    def collect(self) -> Iterator[Metric]:
        view = self.view()
        seg = ["topic", "partition", "segment"]
        det = [*seg, "detector"]
        fam = {
            "events": _family("counter", "monitor_segment_events", "Events seen per segment "
                              "(warm-up included).", seg),
            "outliers": _family("counter", "monitor_outliers", "Events flagged with p <= alpha.",
                                seg),
            "stat": _family("gauge", "monitor_drift_statistic", "Drift detector statistic "
                            "(alarm at monitor_drift_threshold).", det),
            "threshold": _family("gauge", "monitor_drift_threshold", "Alarm threshold of the "
                                 "drift detector.", ["topic", "partition", "detector"]),
            "state": _family("gauge", "monitor_drift_state", "1 while a segment is drifting "
                             "(alarm, then hysteresis), else 0.", seg),
            "alarms": _family("counter", "monitor_drift_alarms", "Drift alarms raised.", det),
            "shift": _family("gauge", "monitor_centroid_shift", "1 - cosine between the recent "
                             "window's and the reference's mass centres.", seg),
            "occ": _family("gauge", "monitor_occupancy_divergence_bits", "Jensen-Shannon "
                           "divergence (bits) of window vs reference cluster occupancy.", seg),
            "rate": _family("gauge", "monitor_window_outlier_ratio", "Share of outliers in the "
                            "recent window (compare with alpha).", seg),
            "centroids": _family("gauge", "monitor_reference_centroids", "Centroids in the "
                                 "segment's reference.", seg),
            "weight": _family("gauge", "monitor_reference_weight", "Decayed number of events "
                              "the reference stands for.", seg),
            "age": _family("gauge", "monitor_reference_age_seconds", "Seconds since the "
                           "reference last learned (event time).", seg),
            "floor": _family("gauge", "monitor_p_value_floor", "Smallest p-value the "
                             "segment's calibration scores resolve, 1/(n+1); below it "
                             "p-values come from the fitted tail (score.tail).", seg),
            "segments": _family("gauge", "monitor_active_segments", "Segments held in memory.",
                                ["topic", "partition"]),
            "evicted": _family("counter", "monitor_segments_evicted", "Segments evicted by the "
                               "max_segments cap.", ["topic", "partition"]),
            "lag": _family("gauge", "monitor_consumer_lag_records", "Records behind the "
                           "partition's high watermark.", ["topic", "partition"]),
        }
        named = self.named_segments(view.partitions)
        now = self.clock()
        for pv in view.partitions:
            self._partition(pv, named, now, fam)
        yield from fam.values()
        ratio = GaugeMetricFamily("monitor_embedding_cache_hit_ratio",
                                  "Share of text lookups answered by the embedding cache.")
        if view.cache_hit_ratio is not None:
            ratio.add_metric([], view.cache_hit_ratio)
        yield ratio
        pending = GaugeMetricFamily("monitor_alerts_pending", "Notifications in the outbox "
                                    "waiting for delivery.")
        if view.alerts_pending is not None:
            pending.add_metric([], view.alerts_pending)
        yield pending
        confirmed = CounterMetricFamily("monitor_flags_confirmed", "Outlier flags that "
                                        "feedback later confirmed as fraud.")
        refuted = CounterMetricFamily("monitor_flags_refuted", "Outlier flags that feedback "
                                      "later labelled not fraud.")
        if view.flags is not None:
            confirmed.add_metric([], view.flags[0])
            refuted.add_metric([], view.flags[1])
        yield confirmed
        yield refuted

    def _partition(self, pv: PartitionView, named: set[str], now: float,
                   fam: dict[str, Any]) -> None:
        t, p = pv.topic, str(pv.partition)
        eng = pv.engine
        fam["segments"].add_metric([t, p], eng.segment_count)
        fam["evicted"].add_metric([t, p], eng.evicted)
        fam["threshold"].add_metric([t, p, "shiryaev_roberts"], eng.threshold)
        if pv.lag is not None:
            fam["lag"].add_metric([t, p], max(0, pv.lag))
        groups: dict[str, list[Any]] = {}
        for name, model in eng.views():
            groups.setdefault(bounded_label(name) if name in named else OTHER, []).append(model)
        for label, models in groups.items():
            key = [t, p, label]
            fam["events"].add_metric(key, sum(m.seen for m in models))
            fam["outliers"].add_metric(key, sum(m.outliers for m in models))
            detector = models[0].detector
            fam["stat"].add_metric([*key, detector],
                                   max(m.statistic for m in models))
            fam["alarms"].add_metric([*key, detector],
                                     sum(m.alarms for m in models))
            fam["state"].add_metric(key, float(any(m.drifting for m in models)))
            ready = [m for m in models if m.ready]
            snaps = [m.gauges() for m in ready]
            n = max(1, len(snaps))
            fam["shift"].add_metric(key, sum(s["centroid_shift"] for s in snaps) / n)
            fam["occ"].add_metric(key, sum(s["occupancy_divergence"] for s in snaps) / n)
            fam["rate"].add_metric(key, sum(m.window_outlier_rate for m in models)
                                   / max(1, len(models)))
            refs = [m.reference for m in ready if m.reference is not None]
            floors = [m.p_value_floor for m in ready if m.p_value_floor is not None]
            if floors:  # the coarsest calibration among the segments behind this label
                fam["floor"].add_metric(key, max(floors))
            fam["centroids"].add_metric(key, sum(r.centroids for r in refs))
            fam["weight"].add_metric(key, sum(r.weight for r in refs))
            times = [r.last_time for r in refs if r.last_time is not None]
            if times:
                fam["age"].add_metric(key, max(0.0, now - min(times)))
