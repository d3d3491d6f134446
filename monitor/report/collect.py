"""What `monitor replay --html` gathers while the replay runs: a few arrays per batch.

Everything here is per batch and vectorised (numpy over the batch, a dict lookup per
event at most): the collector must not slow the replay down. Memory is bounded where the
stream is not: embeddings are reservoir samples, the top outliers a small heap; per-event
arrays are a few bytes per event.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from monitor.events import DriftAlarm, Event, Score

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

Floats = npt.NDArray[np.float64]
MAP_POINTS = 2_000  # embeddings kept per side (reference, stream) for the 2-D map
TOP_OUTLIERS = 25


class Reservoir:
    """A uniform sample of at most `cap` rows (and their per-row metadata) of a stream of
    batches (algorithm R, vectorised over each batch).

    >>> r = Reservoir(3, np.random.default_rng(0))
    >>> r.add(np.eye(5, dtype=np.float32), index=np.arange(5))
    >>> r.x.shape, r.seen, len(r.meta["index"])
    ((3, 5), 5, 3)
    """

    def __init__(self, cap: int, rng: np.random.Generator) -> None:
        self.cap = cap
        self.rng = rng
        self.seen = 0
        self.x = np.zeros((0, 0), np.float32)
        self.meta: dict[str, npt.NDArray[Any]] = {}

    def add(self, x: npt.NDArray[np.float32], **meta: npt.NDArray[Any]) -> None:
        m = len(x)
        if m == 0:
            return
        fill = max(0, min(m, self.cap - self.seen))
        if fill:
            self.x = x[:fill].copy() if not len(self.x) else np.vstack([self.x, x[:fill]])
            for k, v in meta.items():
                old = self.meta.get(k)
                self.meta[k] = v[:fill].copy() if old is None else np.concatenate([old, v[:fill]])
        if fill < m:
            pos = self.seen + np.arange(fill, m)
            slot = self.rng.integers(0, pos + 1)
            keep = np.flatnonzero(slot < self.cap)
            self.x[slot[keep]] = x[fill + keep]
            for k, v in meta.items():
                self.meta[k][slot[keep]] = v[fill + keep]
        self.seen += m


class ReplayCollector:
    """Fed by `replay()` (reference embeddings once, then every scored batch); read by
    `monitor.report.html.render` at the end."""

    def __init__(self, pipeline: Pipeline, seed: int = 0, top: int = TOP_OUTLIERS,
                 map_points: int = MAP_POINTS) -> None:
        self.pipeline = pipeline
        self.allow = tuple(pipeline.cfg.alerts.allow_fields)
        self.alpha = pipeline.cfg.score.alpha
        rng = np.random.default_rng(seed)
        self.reference_sample = Reservoir(map_points, rng)
        self.stream_sample = Reservoir(map_points, rng)
        self.reference_from_file = False
        self.top = top
        self._heap: list[tuple[float, float, int, dict[str, Any]]] = []  # risk, -p, index
        self.segment_codes: dict[str, int] = {}
        self._names: list[str] = []  # segment name by code
        self._parts: dict[str, list[npt.NDArray[Any]]] = {
            k: [] for k in ("p", "score", "risk", "fraud", "outlier", "label", "segment")}
        self._drift: list[tuple[int, npt.NDArray[np.int64], Floats]] = []
        self.alarms: list[DriftAlarm] = []
        self.events = 0

    def reference(self, events: Sequence[Event], x: npt.NDArray[np.float32]) -> None:
        """The embedded reference file (a sample of it is kept for the map)."""
        self.reference_from_file = True
        self.reference_sample.add(x, index=np.full(len(x), -1))

    def batch(self, events: Sequence[Event], x: npt.NDArray[np.float32], results: Sequence[Score],
              alarms: Sequence[DriftAlarm]) -> None:
        """One processed batch: `events` as read (with their labels), their embeddings and
        scores, and the drift alarms the batch raised."""
        n = len(results)
        if n == 0:
            return
        cols = list(zip(*results, strict=True))
        p = np.array(cols[3], np.float64)  # None (warming up) -> nan
        risk = np.array(cols[7], np.float64)
        outlier = np.array(cols[4], bool)
        codes = self.segment_codes
        seg = np.array([codes.setdefault(s, len(codes)) for s in cols[1]], np.int64)
        if len(codes) > len(self._names):
            self._names = list(codes)
        label = np.fromiter((-1 if e.label is None else int(e.label) for e in events),
                            np.int8, n)
        parts = self._parts
        parts["p"].append(p)
        parts["score"].append(np.array(cols[2], np.float64))
        parts["risk"].append(risk)
        parts["fraud"].append(np.array(cols[5], np.float64))
        parts["outlier"].append(outlier)
        parts["label"].append(label)
        parts["segment"].append(seg)
        index = self.events + np.arange(n)
        warm = np.isnan(p)
        if not self.reference_from_file and warm.any():
            self.reference_sample.add(x[warm], index=index[warm])
        live = ~warm
        if live.any():
            self.stream_sample.add(x[live], index=index[live], p=p[live],
                                   outlier=outlier[live], label=label[live])
        self._top_outliers(events, results, risk, p, outlier)
        self.events += n
        self.alarms.extend(alarms)
        self._sample_drift(np.unique(seg))

    def _sample_drift(self, touched: npt.NDArray[np.int64]) -> None:
        """Each touched segment's detector statistic after the batch."""
        names = self._names
        engine = self.pipeline.engine
        stats = np.full(len(touched), np.nan)
        for j, code in enumerate(touched.tolist()):
            view = engine.view(names[code])
            if view is not None:
                stats[j] = view.statistic
        self._drift.append((self.events, touched, stats))

    def _top_outliers(self, events: Sequence[Event], results: Sequence[Score], risk: Floats,
                      p: Floats, outlier: npt.NDArray[np.bool_]) -> None:
        """Keep the `top` flagged events by risk (ties, common as risk nears 1, by the
        smaller p-value)."""
        heap = self._heap
        floor = heap[0][0] if len(heap) >= self.top else -np.inf
        cand = np.flatnonzero(outlier & (risk >= floor))
        if len(cand) > self.top:
            cand = cand[np.lexsort((p[cand], -risk[cand]))[: self.top]]
        for i in cand.tolist():
            key = (float(risk[i]), -float(p[i]), self.events + i)
            if len(heap) < self.top:
                heapq.heappush(heap, (*key, self._explain(events[i], results[i])))
            elif key > heap[0][:3]:
                heapq.heapreplace(heap, (*key, self._explain(events[i], results[i])))

    def _explain(self, event: Event, s: Score) -> dict[str, Any]:
        """What an outlier alert would carry about this event (allow-listed fields only)."""
        from monitor.sinks.alerts.explain import deviating_features

        view = self.pipeline.engine.view(s.segment)
        exemplars = view.exemplars(s.centroid) if view is not None else []
        return {"id": s.event_id, "segment": s.segment, "p_value": s.p_value, "score": s.score,
                "risk": s.risk, "fraud_similarity": s.fraud_similarity,
                "centroid": s.centroid, "exemplars": exemplars, "driver": s.driver,
                "evidence": None if s.evidence is None else dict(s.evidence),
                "features": deviating_features(event, self.pipeline, allow=self.allow),
                "fields": {k: event.fields[k] for k in self.allow if k in event.fields},
                "label": event.label}

    # -- read by the renderer -------------------------------------------------------------
    def array(self, name: str) -> npt.NDArray[Any]:
        """One per-event column over the whole replay (p is nan while warming up)."""
        parts = self._parts[name]
        if parts:
            return np.concatenate(parts)
        return np.zeros(0, {"outlier": bool, "label": np.int8, "segment": np.int64}.get(name,
                                                                                     np.float64))

    def top_outliers(self) -> list[dict[str, Any]]:
        """The flagged events with the highest risk, highest first, with their index."""
        ranked = sorted(self._heap, key=lambda item: item[:3], reverse=True)
        return [dict(rec, index=i) for _, _, i, rec in ranked]

    def drift_series(self, segment: str) -> tuple[npt.NDArray[np.int64], Floats]:
        """(event index after the batch, statistic) samples of one segment."""
        code = self.segment_codes[segment]
        xs, ys = [], []
        for at, touched, stats in self._drift:
            hit = np.flatnonzero(touched == code)
            if len(hit):
                xs.append(at)
                ys.append(float(stats[hit[0]]))
        return np.array(xs, np.int64), np.array(ys, np.float64)
