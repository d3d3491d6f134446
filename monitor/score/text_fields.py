"""Per-field text evidence: each text field against its own reference, one calibrated group.

The joint embedding averages every text field and then joins the tabular block: one
near-unique field (a merchant name, a job title) sets the distance for all of them,
and a field that is unusual on its own is diluted by the fields that are not. Here each
text field (or the template) has its own centroids, fitted and learned exactly like the
segment's joint reference, and its own pool of out-of-sample distances. The group's
evidence is the smallest of its fields' p-values, as -log p, calibrated once more
against the same held-out rows: one column in the combination whatever the number of
fields, so adding a noisy field costs the other evidence no more than one column does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.config import ScoreConfig
from monitor.embed import Fields
from monitor.score.calibration import CalibrationReservoir
from monitor.score.reference import CentroidReference

Floats = npt.NDArray[np.float64]


def leave_one_out(pool: Floats, scores: Floats) -> Floats:
    """p-values of scores that are themselves in the sorted pool, each against the rest:
    #{s_i >= s} / n (one of those is the score itself).

    >>> leave_one_out(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0])).tolist()
    [0.3333333333333333, 1.0]
    """
    out: Floats = (len(pool) - pool.searchsorted(scores, side="left")) / len(pool)
    return out


def group_score(p: Floats) -> Floats:
    """The group's raw score: -log of each row's smallest field p-value.

    >>> group_score(np.array([[0.5, 0.01], [1.0, 1.0]])).round(3).tolist()
    [4.605, -0.0]
    """
    out: Floats = -np.log(np.maximum(p.min(axis=1), 1e-300))
    return out


class TextEvidence:
    """One reference and one distance pool per text field, and the group's pool."""

    def __init__(self, names: tuple[str, ...], cfg: ScoreConfig) -> None:
        self.names = names
        self.cfg = cfg
        self.refs: list[CentroidReference] = []
        self.pools = [CalibrationReservoir(cfg.reservoir, cfg.tail, predictive=False)
                      for _ in names]
        self.group = CalibrationReservoir(cfg.reservoir, cfg.tail, predictive=False)

    def fit(self, fit: Fields, held: Fields, k: int, seed: int, trim: float) -> Floats:
        """Fit each field's centroids on `fit`, calibrate on `held`; returns the held rows'
        group scores, each against the other held rows (leave one out), for the
        combination's own calibration."""
        self.refs = [CentroidReference.fit(np.ascontiguousarray(fit[:, t]), min(k, len(fit)),
                                           seed + 1 + t, exemplars=0, trim=trim)
                     for t in range(len(self.names))]
        dist = self.distances(held)
        for t, pool in enumerate(self.pools):
            pool.add(dist[:, t])
        loo = np.column_stack([leave_one_out(pool.sorted, dist[:, t])
                               for t, pool in enumerate(self.pools)])
        raw = group_score(loo)
        self.group.add(raw)
        return leave_one_out(self.group.sorted, raw)

    def distances(self, text: Fields) -> Floats:
        """(rows, fields) cosine distance of each field to its nearest centroid."""
        return np.column_stack([ref.nearest(np.ascontiguousarray(text[:, t]))[1]
                                for t, ref in enumerate(self.refs)])

    def score(self, text: Fields, uniforms: Floats) -> tuple[Floats, Floats, Floats]:
        """Per row: field distances, field p-values (ties broken by `uniforms`, one per
        row and field: see `CalibrationReservoir.randomised`), and the group's
        calibrated p-value."""
        dist = self.distances(text)
        field_p = np.column_stack([pool.randomised(dist[:, t], uniforms[:, t])
                                   for t, pool in enumerate(self.pools)])
        return dist, field_p, self.group.p_values(group_score(field_p))

    def calibrate(self, dist: Floats, field_p: Floats, group_p: Floats, bar: float,
                  rng: np.random.Generator) -> None:
        """Normal events' distances join the pools (those at or below `bar` replaced by
        tail draws, as for every pool: see `CalibrationReservoir.calibrate`)."""
        for t, pool in enumerate(self.pools):
            pool.calibrate(dist[:, t], field_p[:, t] <= bar, bar, rng)
        self.group.calibrate(group_score(field_p), group_p <= bar, bar, rng)

    def learn(self, text: Fields, decay: float) -> None:
        """Fold accepted rows into each field's centroids (the joint reference's rule)."""
        for t, ref in enumerate(self.refs):
            rows = np.ascontiguousarray(text[:, t])
            idx, dist = ref.nearest(rows)
            ref.learn(rows, idx, dist, decay)

    def state_dict(self) -> dict[str, Any]:
        return {"refs": [ref.state_dict() for ref in self.refs],
                "pools": [pool.state_dict() for pool in self.pools],
                "group": self.group.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.refs = [CentroidReference.from_state(r) for r in state["refs"]]
        for pool, pool_state in zip(self.pools, state["pools"], strict=True):
            pool.load_state_dict(pool_state)
        self.group.load_state_dict(state["group"])
