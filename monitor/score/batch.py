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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from monitor.score.calibration import p_values_from_ranks
from monitor.score.reference import cosine_distance

if TYPE_CHECKING:
    from monitor.score.segment import SegmentModel

Matrix = npt.NDArray[np.float32]
Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class Scored:
    """Per-row outputs of one scoring pass, as plain lists: each is read once per event
    (by the scored record, the detector, the gauges, the learning block), and turning a
    whole column into a list at once is far cheaper than indexing numpy row by row."""

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


def risk_score(p: Floats, fraud_sim: Floats, normal_sim: Floats, has_fraud: bool) -> Floats:
    """Ranking score in [0, 1]: outlier evidence, raised by closeness to confirmed fraud.

    Fraud evidence is how much nearer the event is to a confirmed case than to normal
    traffic, squashed to (0, 1); without confirmed cases only outlier evidence counts.

    >>> risk_score(np.array([0.5]), np.array([0.9]), np.array([0.6]), True).round(3).tolist()
    [0.998]
    >>> risk_score(np.array([0.01]), np.array([0.0]), np.array([0.6]), False).tolist()
    [0.99]
    """
    outlier = 1.0 - p
    if not has_fraud:
        return outlier
    fraud = 1.0 / (1.0 + np.exp(-(fraud_sim - normal_sim) / 0.05))
    return np.maximum(outlier, fraud)


def score_chunks(models: Sequence[SegmentModel], x: Matrix, bounds: Sequence[int],
                 is_fraud: npt.NDArray[np.bool_]) -> Scored:
    """Rows `bounds[j]:bounds[j + 1]` of `x` belong to `models[j]`, whose reference is
    ready; scores every row against its segment's state before these rows.

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
    lo, hi, size, u = [], [], [], []
    for m, a, b in spans:
        cal = m.reservoir.sorted
        lo.append(cal.searchsorted(s[a:b], side="left"))
        hi.append(cal.searchsorted(s[a:b], side="right"))
        size.append(len(cal))
        u.append(m.rng.random(b - a))
    p, smooth = p_values_from_ranks(np.concatenate(lo), np.concatenate(hi),
                                    np.repeat(size, np.diff(bounds)), np.concatenate(u))
    normal_sim = 1.0 - dist
    risk = 1.0 - p
    fraud_sim = np.zeros(len(x))
    for m, a, b in spans:
        if len(m.fraud):
            fraud_sim[a:b] = m.fraud.similarity(x[a:b])
            risk[a:b] = risk_score(p[a:b], fraud_sim[a:b], normal_sim[a:b], True)
    # a stricter bar than alpha for learning: borderline events (often the start of an
    # attack) neither vouch for themselves nor drag centroids towards them
    accept = (p > max(cfg.alpha, cfg.learn_p)) & ~is_fraud
    return Scored(s.tolist(), p.tolist(), (p <= cfg.alpha).tolist(), idx.tolist(),
                  fraud_sim.tolist(), normal_sim.tolist(), risk.tolist(), smooth.tolist(),
                  accept.tolist(), False)


def warming(model: SegmentModel, x: Matrix, is_fraud: npt.NDArray[np.bool_]) -> Scored:
    """Rows that arrive before the segment's reference exists: no p-values yet; all but
    confirmed fraud join the warm-up sample."""
    n = len(x)
    zeros, nan = [0.0] * n, [float("nan")] * n
    return Scored(zeros, [None] * n, [False] * n, [-1] * n,
                  model.fraud.similarity(x).tolist(), zeros, zeros, nan,
                  (~is_fraud).tolist(), True)
