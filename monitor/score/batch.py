"""Score one chunk of events for each of many segments in one vectorised pass.

A poll batch spread over 64 segments gives each segment a handful of events, and numpy
costs a few microseconds per call whatever the array size: scoring segment by segment
spent most of its time in call overhead. Here only what needs a segment's own arrays (its
centroids, its calibration ranks, its random stream) runs per segment, two or three
calls each; everything elementwise runs once over the rows of all segments together.

The arithmetic per row is the same whichever segments share the pass, so a segment's
scores do not depend on how a stream was batched (see `CentroidReference.nearest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from monitor.config import ScoreConfig
from monitor.embed.fields import FieldValues
from monitor.score.calibration import CalibrationReservoir
from monitor.score.evidence import FieldEvidence
from monitor.score.fraud import FraudPrototypes
from monitor.score.reference import CentroidReference, cosine_distance
from monitor.score.text_fields import TextEvidence

Matrix = npt.NDArray[np.float32]
Floats = npt.NDArray[np.float64]


class SegmentState(Protocol):
    """What a scoring pass reads of a segment (`SegmentModel` is the one implementation;
    the pass only reads, the segment learns afterwards in `observe`)."""

    cfg: ScoreConfig
    seed: int
    reference: CentroidReference | None
    reservoir: CalibrationReservoir
    margins: CalibrationReservoir
    pools: list[CalibrationReservoir]
    evidence: FieldEvidence | None
    text: TextEvidence | None
    fraud: FraudPrototypes
    rng: np.random.Generator

    @property
    def width(self) -> int: ...

    @property
    def evidence_weights(self) -> tuple[float, float]: ...


@dataclass(slots=True)
class Scored:
    """Per-row outputs of one scoring pass, as plain lists: each is read once per event
    (by the scored record, the detector, the gauges, the learning block), and turning a
    whole column into a list at once is far cheaper than indexing numpy row by row.

    With per-field evidence, `columns` holds each row's raw scores of the columns that
    calibrate against the segment's pools (the embedding distance unless text fields
    stand for it, then each numeric |z|), `pooled` their p-values, `text` the text
    fields' distances, p-values and the group's p-value, and `evidence` each row's p-value
    of every reported column; `driver` is the reported column that drove the combined
    score (-1 without per-field evidence).
    """

    score: list[float]
    p_value: list[float | None]  # None while the segment warms up
    outlier: list[bool]
    centroid: list[int]  # -1 while warming up
    fraud_similarity: list[float]
    normal_similarity: list[float]
    risk: list[float]
    smooth: list[float]  # randomised p-values, fed to the drift detector
    accept: list[bool]  # rows the reference (or the warm-up) may learn from
    warming_up: bool
    driver: list[int] = field(default_factory=list)
    columns: Floats | None = None  # (n, pooled columns)
    pooled: Floats | None = None  # (n, pooled columns): their p-values
    text: Floats | None = None  # (n, 2 * text fields + 1)
    evidence: Floats | None = None  # (n, reported columns)
    margin: Floats | None = None  # fraud minus normal similarity (NaN without prototypes)
    p_fraud: Floats | None = None  # its p-value against normal events' margins


def risk_score(p: Floats, p_fraud: Floats | None,
               weights: tuple[float, float] = (0.5, 0.5)) -> Floats:
    """Ranking score in [0, 1]: 1 - p^w_out · p_fraud^w_fraud (1 - p without fraud).

    `p_fraud` is how rarely a normal event comes as much closer to a confirmed case than
    to its nearest normal centroid (a calibrated p-value of that margin; None without
    confirmed cases). The weights are how strongly each kind of evidence has marked the
    confirmed cases so far (`SegmentModel.evidence_weights`): a weighted naive-Bayes
    combination, so evidence that has not told fraud from normal counts for little and
    cannot drag the other down (a maximum of the two did: measured on a message
    dataset, fraud similarity alone 0.945 AUROC, that maximum 0.906).

    >>> risk_score(np.array([0.5, 0.01]), None).tolist()
    [0.5, 0.99]
    >>> risk_score(np.array([0.5, 0.01]), np.array([0.001, 0.5]), (1.0, 0.0)).tolist()
    [0.5, 0.99]
    >>> risk_score(np.array([0.5, 0.01]), np.array([0.001, 0.5]), (0.5, 0.5)).round(3).tolist()
    [0.978, 0.929]
    """
    if p_fraud is None:
        return 1.0 - p
    w_out, w_fraud = weights
    log_p = w_out * np.log(np.maximum(p, 1e-300)) + w_fraud * np.log(np.maximum(p_fraud, 1e-300))
    out: Floats = -np.expm1(log_p)
    return out


def score_chunks(models: Sequence[SegmentState], x: Matrix, bounds: Sequence[int],
                 is_fraud: npt.NDArray[np.bool_], values: FieldValues | None = None) -> Scored:
    """Rows `bounds[j]:bounds[j + 1]` of `x` (and of `values`) belong to `models[j]`,
    whose reference is ready; scores every row against its segment's state before these
    rows.

    Draws each segment's tie-breaking uniforms from its own generator, in row order, so
    a segment's random stream is the same however its rows were batched.
    """
    cfg = models[0].cfg
    spans = list(zip(models, bounds[:-1], bounds[1:], strict=True))
    near, sims = [], []
    for m, a, b in spans:
        assert m.reference is not None
        i, sim = m.reference.nearest_similarity(x[a:b])
        near.append(i)
        sims.append(sim)
    idx = np.concatenate(near)
    dist = cosine_distance(np.concatenate(sims))
    s = dist
    if cfg.normalise_by_scale:
        scale = np.concatenate([m.reference.scales[i] for (m, _, _), i in zip(spans, near,
                                                                             strict=True)
                                if m.reference is not None])
        s = dist / np.maximum(scale, 1e-6)
    n = len(x)
    p, smooth = np.empty(n), np.empty(n)
    driver = np.full(n, -1, np.int64)
    fielded = None
    if models[0].evidence is not None:
        assert values is not None
        fielded = _Fielded(n, models[0], values)
        s = s.copy()
    for m, a, b in spans:
        # one row of uniforms per event, drawn in row order: the same draws per event
        # however the stream was batched (first the detector's, then one per text field)
        u = m.rng.random((b - a, 1 + (0 if m.text is None else len(m.text.names))))
        if fielded is not None:
            s[a:b], driver[a:b] = fielded.score(m, s[a:b], a, b, cfg.combine_below, u[:, 1:])
        p[a:b] = m.reservoir.p_values(s[a:b])
        smooth[a:b] = m.reservoir.smoothed(s[a:b], u[:, 0])
    normal_sim = 1.0 - dist
    fraud_sim, margin, p_fraud, risk = _fraud_evidence(spans, x, p, normal_sim)
    # a stricter bar than alpha for learning: borderline events (often the start of an
    # attack) neither vouch for themselves nor drag centroids towards them
    accept = (p > max(cfg.alpha, cfg.learn_p)) & ~is_fraud
    p_list: list[float | None] = list(p.tolist())
    f = fielded
    return Scored(s.tolist(), p_list, (p <= cfg.alpha).tolist(), idx.tolist(),
                  fraud_sim.tolist(), normal_sim.tolist(), risk.tolist(), smooth.tolist(),
                  accept.tolist(), False, driver.tolist(),
                  None if f is None else f.cols, None if f is None else f.pooled,
                  None if f is None else f.text, None if f is None else f.evid,
                  margin, p_fraud)


def _fraud_evidence(spans: list[tuple[SegmentState, int, int]], x: Matrix, p: Floats,
                    normal_sim: Floats) -> tuple[Floats, Floats, Floats, Floats]:
    """Per row: similarity to confirmed fraud, its margin over the nearest normal centroid
    (NaN without prototypes), that margin's p-value, and the risk."""
    risk = 1.0 - p
    fraud_sim = np.zeros(len(x))
    margin = np.full(len(x), np.nan)
    p_fraud = np.ones(len(x))
    for m, a, b in spans:
        if len(m.fraud):
            fraud_sim[a:b] = m.fraud.similarity(x[a:b])
            margin[a:b] = fraud_sim[a:b] - normal_sim[a:b]
            p_fraud[a:b] = m.margins.p_values(margin[a:b])
            risk[a:b] = risk_score(p[a:b], p_fraud[a:b], m.evidence_weights)
    return fraud_sim, margin, p_fraud, risk


class _Fielded:
    """The per-field arrays of one scoring pass, filled segment by segment."""

    def __init__(self, n: int, first: SegmentState, values: FieldValues) -> None:
        self.values = values
        self.width = 0 if first.text is None else len(first.text.names)
        self.cols = np.empty((n, len(first.pools)))
        self.pooled = np.empty((n, len(first.pools)))
        self.text = np.empty((n, 2 * self.width + 1)) if self.width else None
        self.evid = np.empty((n, first.width))

    def score(self, m: SegmentState, dist: Floats, a: int, b: int, below: float,
              uniforms: Floats) -> tuple[Floats, npt.NDArray[np.int64]]:
        """Rows a:b of one segment: each column's p-value, their combined score, and the
        reported column that drove it (for the text group, its smallest field)."""
        assert m.evidence is not None
        part = self.values.take(slice(a, b))
        z = m.evidence.numeric_z(part)
        lead: list[Floats] = []
        if m.text is not None and self.text is not None:
            assert part.text is not None
            tdist, field_p, group_p = m.text.score(part.text, uniforms)
            self.text[a:b] = np.column_stack([tdist, field_p, group_p])
            lead = [group_p]
            self.cols[a:b] = z
        else:
            self.cols[a:b, 0] = dist
            self.cols[a:b, 1:] = z
        pooled = (np.column_stack([pool.p_values(self.cols[a:b, j])
                                   for j, pool in enumerate(m.pools)])
                  if m.pools else np.empty((b - a, 0)))
        self.pooled[a:b] = pooled
        counted = m.evidence.count_p(part)
        combined_in = np.column_stack([*lead, pooled, counted])
        driver = combined_in.argmin(axis=1)
        if lead and self.text is not None:
            fields = self.text[a:b, self.width : 2 * self.width]
            self.evid[a:b] = np.column_stack([fields, pooled, counted])
            # the group's column reports as its smallest field; the others shift along
            driver = np.where(driver == 0, fields.argmin(axis=1), driver + self.width - 1)
        else:
            self.evid[a:b] = combined_in
        return combined_score(combined_in, below), driver


def combined_score(evidence: Floats, below: float) -> Floats:
    """-log of each row's smallest column p-value, plus log(below / p) for each other
    column whose p-value is below `below` (a truncated product on top of the minimum).

    The minimum lets one extreme column carry an event, and a noisy column can only add
    its own false alarms at its own rate instead of diluting the others (Sparkov card
    transactions, 12 columns: minimum 0.913 AUROC, Cauchy combination 0.867, Fisher
    0.720). The truncated part lets independent pieces of evidence add up, as they do in
    an analyst's eye (an unseen merchant, abroad, at 50 times the usual amount), while a
    column above `below` adds nothing. The result is no p-value itself: the segment
    calibrates it against its own pool, so the final p-value is valid whatever the
    dependence between columns.

    >>> combined_score(np.array([[0.5, 0.001], [0.001, 0.001], [1.0, 0.8]]), 0.01).round(3)
    array([6.908, 9.21 , 0.223])
    """
    low = np.maximum(evidence, 1e-300)
    least = low.min(axis=1)
    extra = np.log(below / low).clip(min=0.0).sum(axis=1) - np.log(below / least).clip(min=0.0)
    out: Floats = -np.log(least) + extra
    return out


def warming(model: SegmentState, x: Matrix, is_fraud: npt.NDArray[np.bool_]) -> Scored:
    """Rows that arrive before the segment's reference exists: no p-values yet; all but
    confirmed fraud join the warm-up sample."""
    n = len(x)
    zeros, nan = [0.0] * n, [float("nan")] * n
    return Scored(zeros, [None] * n, [False] * n, [-1] * n,
                  model.fraud.similarity(x).tolist(), zeros, zeros, nan,
                  (~is_fraud).tolist(), True, [-1] * n)
