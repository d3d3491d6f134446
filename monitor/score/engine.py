"""Routes embedded events to their segment's model and collects scores and drift alarms.

The engine is pure computation (no I/O): the replay command and the Kafka daemon both
feed it `(events, vectors)` batches and consume the `Score` and `DriftAlarm` values.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.config import DriftConfig, FieldsConfig, ScoreConfig
from monitor.embed import Fields
from monitor.embed.fields import FieldLayout, FieldValues, empty, extract
from monitor.embed.tabular import stable_hash
from monitor.events import DriftAlarm, Event, Score
from monitor.score.batch import Scored, score_chunks, warming
from monitor.score.drift.martingale import threshold_for
from monitor.score.segment import SegmentModel
from monitor.score.segment_state import fitted_state, seed_segment
from monitor.score.view import SegmentView

Matrix = npt.NDArray[np.float32]

log = logging.getLogger(__name__)
_MIN_REFERENCE = 20  # fewer reference rows than this: the segment warms up from the stream
_SAID: set[tuple[int, str, float]] = set()  # resolution notes already logged


class Engine:
    """Per-segment models behind one `process` call, with a cap on live segments."""

    def __init__(self, score: ScoreConfig, drift: DriftConfig, segmented: bool,
                 fields: FieldsConfig | None = None) -> None:
        self.score_cfg = score
        self.drift_cfg = drift
        self.layout = None if fields is None else FieldLayout.from_config(fields, score)
        self._log = [] if fields is None else [f.log for f in fields.numeric]
        budget_segments = score.max_segments if segmented else 1
        self.threshold = drift.threshold or threshold_for(
            drift.false_alarm_probability, drift.horizon, budget_segments)
        self.segments: OrderedDict[str, SegmentModel] = OrderedDict()
        # fitted states (`monitor fit`) a segment without state of its own starts from; set
        # by `Pipeline`, not part of the state: a restored engine seeds the segments its
        # snapshot lacks, and an evicted segment seen again starts from the file again
        self.seeds: Mapping[str, dict[str, Any]] = {}
        self._resolution(max(1, round(score.warmup * score.holdout)), "a warm-up")
        self.index = 0  # events processed so far (stream position of the next event)
        self.evicted = 0

    def _segment(self, name: str) -> SegmentModel:
        model = self.segments.get(name)
        if model is None:
            if len(self.segments) >= self.score_cfg.max_segments:
                self.segments.popitem(last=False)
                self.evicted += 1
            seed = (self.score_cfg.seed * 1_000_003 + stable_hash(name)) % (2**32)
            model = SegmentModel(self.score_cfg, self.drift_cfg, self.threshold, seed,
                                 self.layout)
            fitted = self.seeds.get(name)
            if fitted is not None:
                seed_segment(model, fitted)
            self.segments[name] = model
        else:
            self.segments.move_to_end(name)
        return model

    def _route(self, events: Sequence[Event]) -> list[tuple[str, SegmentModel, list[int]]]:
        """Each event's segment model, event by event: recency and eviction follow the
        stream, not the batch, so the same stream evicts the same segments however it was
        cut. A segment evicted and seen again within one batch gets a fresh model for its
        later rows; the evicted one still scores the rows it had."""
        groups: dict[int, tuple[str, SegmentModel, list[int]]] = {}
        last = None
        for i, e in enumerate(events):
            name = e.segment
            if name != last:
                model = self._segment(name)
                last = name
            groups.setdefault(id(model), (name, model, []))[2].append(i)
        return list(groups.values())

    def fit_reference(self, events: Sequence[Event], x: Matrix,
                      text: Fields | None = None) -> dict[str, int]:
        """Build references from labelled-normal reference rows; confirmed fraud in the
        reference seeds the fraud prototypes instead. Returns rows used per segment."""
        groups = _group(events)
        values = self.values(events, text)
        used: dict[str, int] = {}
        for name, rows in groups.items():
            model = self._segment(name)
            fraud = [i for i in rows if events[i].label is True]
            normal = [i for i in rows if events[i].label is not True]
            if fraud:
                model.fraud.add(x[fraud])
            if len(normal) >= _MIN_REFERENCE:
                model.fit(x[normal], [events[i].id for i in normal], values=values.take(normal))
            else:
                model.warm_x.append(x[normal])
                model.warm_values.append(values.take(normal))
                model.warm_ids.extend(events[i].id for i in normal)
            used[name] = len(normal)
        sizes = [len(m.reservoir) for m in self.segments.values() if m.ready]
        if sizes:
            self._resolution(min(sizes), "the reference")
        return used

    def _resolution(self, n: int, source: str) -> None:
        """Say once per process when alpha lies below what `n` calibration scores resolve
        (an engine is built per partition: the same words each time would be noise)."""
        floor = 1.0 / (n + 1)
        alpha = self.score_cfg.alpha
        if alpha >= floor or (n, source, alpha) in _SAID:
            return
        _SAID.add((n, source, alpha))
        if self.score_cfg.tail:  # reachable through the fitted tail: worth knowing, no fault
            log.info("score.alpha %g is below 1/(n+1) = %.3g of the %d calibration scores "
                        "%s gives: p-values below that come from the fitted exponential "
                        "tail until the calibration grows (monitor_p_value_floor)",
                        alpha, floor, n, source)
        else:
            log.warning("score.alpha %g cannot be reached: %s gives %d calibration scores, "
                        "so no p-value is below %.3g while score.tail is off", alpha, source,
                        n, floor)

    def values(self, events: Sequence[Event], text: Fields | None = None) -> FieldValues:
        """The raw values the per-field evidence reads (none without fields); `text` is
        each text field's embedding (`CompositeEncoder.encode_parts`)."""
        if self.layout is None:
            return empty(len(events))
        return extract(self.layout, self._log, events, text)

    def process(self, events: Sequence[Event], x: Matrix,
                text: Fields | None = None) -> tuple[list[Score], list[DriftAlarm]]:
        """Score every event (in stream order within its segment), learn, detect drift.

        A segment's rows are cut where its learning blocks end; the k-th piece of every
        segment is scored in one pass (`score_chunks`), so a batch costs a few passes,
        not one per segment.
        """
        scores: list[Score | None] = [None] * len(events)
        alarms: list[DriftAlarm] = []
        is_fraud = np.fromiter((e.label is True for e in events), bool, len(events))
        values = self.values(events, text)
        todo = self._route(events)
        block = self.score_cfg.learn_block
        while todo:
            pieces, later = [], []
            for name, model, rows in todo:
                size = min(len(rows), block - model.seen % block)
                pieces.append((name, model, rows[:size]))
                if size < len(rows):
                    later.append((name, model, rows[size:]))
            pieces.sort(key=lambda piece: not piece[1].ready)  # ready segments first
            alarms += self._pass(pieces, events, x, values, is_fraud, scores)
            todo = later
        self.index += len(events)
        return [s for s in scores if s is not None], sorted(alarms, key=lambda a: a.index)

    def _pass(self, pieces: list[tuple[str, SegmentModel, list[int]]],
              events: Sequence[Event], x: Matrix, values: FieldValues,
              is_fraud: npt.NDArray[np.bool_], scores: list[Score | None]) -> list[DriftAlarm]:
        """Score one piece per segment (ready segments first, in one `score_chunks`),
        hand each segment its rows, and fill in the events' scores."""
        rows = [i for _, _, chunk in pieces for i in chunk]
        xs, fraud, vs = x[rows], is_fraud[rows], values.take(rows)
        bounds = np.cumsum([0] + [len(chunk) for _, _, chunk in pieces]).tolist()
        ids = [events[i].id for i in rows]
        times = [events[i].timestamp for i in rows]
        fraud_list = fraud.tolist()
        ready = sum(1 for piece in pieces if piece[1].ready)
        end = bounds[ready]
        if ready:
            scored = score_chunks([m for _, m, _ in pieces[:ready]], xs[:end],
                                  bounds[: ready + 1], fraud[:end], vs.take(slice(0, end)))
            self._collect(scores, pieces[:ready], rows[:end], ids[:end], scored)
        alarms = []
        for j, (name, model, chunk) in enumerate(pieces):
            a, b = bounds[j], bounds[j + 1]
            if j < ready:
                found = model.observe(xs[a:b], ids[a:b], fraud_list[a:b], times[a:b], scored,
                                      a, b, vs.take(slice(a, b)))
            else:
                warm = warming(model, xs[a:b], fraud[a:b])
                found = model.observe(xs[a:b], ids[a:b], fraud_list[a:b], times[a:b], warm, 0,
                                      b - a, vs.take(slice(a, b)))
                self._collect(scores, [(name, model, chunk)], chunk, ids[a:b], warm)
            alarms += [self._alarm(model, name, chunk[k], stat, snap, events[chunk[k]])
                       for k, stat, snap in found]
        return alarms

    @staticmethod
    def _collect(scores: list[Score | None], pieces: list[tuple[str, SegmentModel, list[int]]],
                 rows: list[int], ids: list[str], res: Scored) -> None:
        names = [name for name, _, chunk in pieces for _ in chunk]
        warm = res.warming_up
        columns = pieces[0][1].columns
        drivers = [columns[d] if d >= 0 else "" for d in res.driver]
        evidence: list[dict[str, float] | None] = (
            [None] * len(rows) if res.evidence is None
            else [dict(zip(columns, row, strict=True)) for row in res.evidence.tolist()])
        for i, eid, name, sc, p, out, fs, ns, risk, c, drv, ev in zip(
                rows, ids, names, res.score, res.p_value, res.outlier, res.fraud_similarity,
                res.normal_similarity, res.risk, res.centroid, drivers, evidence, strict=True):
            scores[i] = Score(eid, name, sc, p, out, fs, ns, risk, c, warm, drv, ev)

    def _alarm(self, model: SegmentModel, name: str, row: int, stat: float,
               g: dict[str, Any], event: Event) -> DriftAlarm:
        alarm = DriftAlarm(
            index=self.index + row, segment=name, statistic=stat, threshold=self.threshold,
            detector=model.watch.detector.name, grown=tuple(g["grown"]), shrunk=tuple(g["shrunk"]),
            centroid_shift=g["centroid_shift"], occupancy_divergence=g["occupancy_divergence"],
            outlier_rate=g["outlier_rate"], timestamp=event.timestamp,
            examples=tuple(g["examples"]))
        return alarm

    def views(self) -> list[tuple[str, SegmentView]]:
        """Every segment's read-only view, least recently seen first."""
        return [(name, SegmentView(m)) for name, m in self.segments.items()]

    @property
    def segment_count(self) -> int:
        return len(self.segments)

    def view(self, name: str) -> SegmentView | None:
        model = self.segments.get(name)
        return None if model is None else SegmentView(model)

    def confirm(self, events: Sequence[Event], x: Matrix, text: Fields | None = None) -> None:
        """Confirmed fraud from feedback (not in the stream): a prototype for its segment
        (scored first, so the risk learns how each evidence marks fraud); a segment not
        seen yet is created, seeded with it."""
        new = []
        for i, event in enumerate(events):
            model = self.segments.get(event.segment)
            if model is not None:
                model.confirm(x[i : i + 1],
                              self.values([event], None if text is None else text[i : i + 1]))
            else:
                new.append(i)
        if new:
            self.fit_reference([events[i] for i in new], x[new],
                               None if text is None else text[new])

    def fitted_states(self) -> dict[str, dict[str, Any]]:
        """Each segment's fitted state without its drift watch (a seed file's segments)."""
        return {name: fitted_state(m) for name, m in self.segments.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "evicted": self.evicted,
            "threshold": self.threshold,
            "segments": {name: m.state_dict() for name, m in self.segments.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.index = int(state["index"])
        self.evicted = int(state["evicted"])
        self.threshold = float(state["threshold"])
        self.segments = OrderedDict()
        for name, seg_state in state["segments"].items():
            model = SegmentModel(self.score_cfg, self.drift_cfg, self.threshold, 0, self.layout)
            model.load_state_dict(seg_state)
            self.segments[name] = model


def _group(events: Sequence[Event]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        groups.setdefault(e.segment, []).append(i)
    return groups
