"""One segment's scoring state: warm-up, reference, calibration, fraud prototypes, drift.

Score before learn: every event is scored against the state as it was before the event
arrived. Learning is applied in blocks of `learn_block` events of this segment, counted
from the segment's first event, so the outcome does not depend on how a stream was cut
into poll batches (a replay after a crash reproduces the same state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.config import DriftConfig, ScoreConfig
from monitor.drift.gauges import WindowGauges
from monitor.drift.martingale import ShiryaevRoberts
from monitor.score.calibration import CalibrationReservoir
from monitor.score.fraud import FraudPrototypes
from monitor.score.reference import CentroidReference, auto_k, decay_factor

Matrix = npt.NDArray[np.float32]


@dataclass(slots=True)
class BlockResult:
    """Per-event outputs of one processed block (arrays aligned with its rows)."""

    score: npt.NDArray[np.float64]
    p_value: npt.NDArray[np.float64]
    outlier: npt.NDArray[np.bool_]
    centroid: npt.NDArray[np.int64]
    fraud_similarity: npt.NDArray[np.float64]
    normal_similarity: npt.NDArray[np.float64]
    risk: npt.NDArray[np.float64]
    warming_up: bool
    alarms: list[tuple[int, float]]  # (row within block, statistic) for each drift alarm


def risk_score(p: npt.NDArray[np.float64], fraud_sim: npt.NDArray[np.float64],
               normal_sim: npt.NDArray[np.float64], has_fraud: bool) -> npt.NDArray[np.float64]:
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


def _empty_pending() -> dict[str, list[Any]]:
    return {k: [] for k in ("x", "ids", "fraud", "accept", "idx", "dist", "score", "time")}


class SegmentModel:
    """Everything one segment knows; `process` scores a block, then learns from it."""

    def __init__(self, score: ScoreConfig, drift: DriftConfig, threshold: float,
                 seed: int) -> None:
        self.cfg = score
        self.drift_cfg = drift
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.reference: CentroidReference | None = None
        self.reservoir = CalibrationReservoir(score.reservoir)
        self.fraud = FraudPrototypes(score.fraud_prototypes)
        self.detector = ShiryaevRoberts(threshold)
        self.gauges = WindowGauges(drift.window)
        self.warm_x: list[Matrix] = []
        self.warm_ids: list[str] = []
        self.pending: dict[str, list[Any]] = _empty_pending()
        self._rebaseline = False
        self.seen = 0
        self.outliers = 0
        self.since_alarm: int | None = None  # events since the last alarm; None = never
        self.last_alarm: dict[str, Any] | None = None

    # -- reference building -------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.reference is not None

    def fit(self, x: Matrix, ids: list[str]) -> None:
        """Build the reference from rows: fit on one part, calibrate on a held-out part,
        then fold the held-out rows in. In-sample scores would be too small and make every
        later p-value too small, so the reservoir only ever sees out-of-sample scores."""
        n = len(x)
        order = self.rng.permutation(n)
        n_cal = max(1, round(n * self.cfg.holdout))
        cal, fit_rows = order[:n_cal], order[n_cal:]
        k = self.cfg.k if isinstance(self.cfg.k, int) else auto_k(n, self.cfg.k_min,
                                                                     self.cfg.k_max)
        fit_ids = [ids[i] for i in fit_rows]
        self.reference = CentroidReference.fit(x[fit_rows], k, self.seed, self.cfg.exemplars,
                                               fit_ids)
        idx, dist = self.reference.nearest(x[cal])
        self.reservoir.add(self._nonconformity(idx, dist))
        self.reference.learn(x[cal], idx, dist, 1.0, [ids[i] for i in cal])
        self.warm_x, self.warm_ids = [], []

    def _nonconformity(self, idx: npt.NDArray[np.int64],
                       dist: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.cfg.normalise_by_scale and self.reference is not None:
            return dist / np.maximum(self.reference.scales[idx], 1e-6)
        return dist

    # -- the hot path ---------------------------------------------------------------------
    def process(self, x: Matrix, ids: list[str], labels: list[bool | None],
                timestamps: list[float | None]) -> BlockResult:
        """Score rows that lie within one learning block, deferring what they teach.

        Learning (reference, calibration, prototypes, warm-up fit) is applied when the
        block is complete, so every row of a block is scored against the same state
        whether the block arrived whole or in pieces.
        """
        n = len(x)
        self.seen += n
        is_fraud = np.array([lab is True for lab in labels], bool)
        fraud_sim = self.fraud.similarity(x)
        if self.reference is None:
            nan = np.full(n, np.nan)
            result = BlockResult(np.zeros(n), nan, np.zeros(n, bool), np.full(n, -1, np.int64),
                                 fraud_sim, np.zeros(n), np.zeros(n), True, [])
            self._defer(x, ids, is_fraud, timestamps, result, ~is_fraud)
        else:
            result = self._score(x, ids, fraud_sim)
            # a stricter bar than alpha for learning: borderline events (often the start
            # of an attack) neither vouch for themselves nor drag centroids towards them
            accept = (result.p_value > max(self.cfg.alpha, self.cfg.learn_p)) & ~is_fraud
            self._defer(x, ids, is_fraud, timestamps, result, accept)
        if self.seen % self.cfg.learn_block == 0:
            self._apply()
        return result

    def _score(self, x: Matrix, ids: list[str],
               fraud_sim: npt.NDArray[np.float64]) -> BlockResult:
        assert self.reference is not None
        n = len(x)
        idx, dist = self.reference.nearest(x)
        s = self._nonconformity(idx, dist)
        p = self.reservoir.p_values(s)
        outlier = p <= self.cfg.alpha
        smooth = self.reservoir.smoothed(s, self.rng.random(n))
        alarms: list[tuple[int, float]] = []
        for i in range(n):
            if self.since_alarm is not None:
                self.since_alarm += 1
            if self.detector.update(float(smooth[i])):
                # a crossing while already drifting extends the episode, not a new alarm
                if not self.drifting:
                    alarms.append((i, self.detector.peak))
                    self._rebaseline = self.drift_cfg.rebaseline
                self.since_alarm = 0
            self.gauges.update(int(idx[i]), bool(outlier[i]), ids[i])
        self.outliers += int(outlier.sum())
        normal_sim = 1.0 - dist
        risk = risk_score(p, fraud_sim, normal_sim, len(self.fraud) > 0)
        return BlockResult(s, p, outlier, idx, fraud_sim, normal_sim, risk, False, alarms)

    def _defer(self, x: Matrix, ids: list[str], is_fraud: npt.NDArray[np.bool_],
               timestamps: list[float | None], res: BlockResult,
               accept: npt.NDArray[np.bool_]) -> None:
        p = self.pending
        p["x"].append(x)
        p["ids"].extend(ids)
        p["fraud"].append(is_fraud)
        p["accept"].append(accept)
        p["idx"].append(res.centroid)
        p["dist"].append(1.0 - res.normal_similarity)
        p["score"].append(res.score)
        p["time"].extend(t for t in timestamps if t is not None)

    def _apply(self) -> None:
        p = self.pending
        if not p["x"]:
            return
        x = np.vstack(p["x"])
        ids: list[str] = p["ids"]
        fraud, accept = np.concatenate(p["fraud"]), np.concatenate(p["accept"])
        now = max(p["time"]) if p["time"] else None
        self.pending = _empty_pending()
        if fraud.any():
            self.fraud.add(x[fraud])
        ref = self.reference
        if ref is None:
            self.warm_x.append(x[accept])
            self.warm_ids.extend(ids[i] for i in np.flatnonzero(accept))
            if len(self.warm_ids) >= self.cfg.warmup:
                self.fit(np.vstack(self.warm_x), self.warm_ids)
            return
        idx, dist = np.concatenate(p["idx"]), np.concatenate(p["dist"])
        dt = 0.0 if now is None or ref.last_time is None else max(0.0, now - ref.last_time)
        lam = decay_factor(len(x), self.cfg.half_life_events, dt, self.cfg.half_life_seconds)
        ref.learn(x[accept], idx[accept], dist[accept], lam,
                  [ids[i] for i in np.flatnonzero(accept)], now)
        # every out-of-sample score calibrates except confirmed fraud (see the reservoir)
        self.reservoir.add(np.concatenate(p["score"])[~fraud])
        if self._rebaseline:
            self.reference = None  # re-enter warm-up on the new regime
            self._rebaseline = False

    @property
    def drifting(self) -> bool:
        """Firing from an alarm until `hysteresis` events pass without another."""
        return self.since_alarm is not None and self.since_alarm <= self.drift_cfg.hysteresis

    def gauge_snapshot(self) -> dict[str, Any]:
        if self.reference is None:
            return {"centroid_shift": 0.0, "occupancy_divergence": 0.0,
                    "outlier_rate": self.gauges.outlier_rate(), "grown": [], "shrunk": []}
        return self.gauges.snapshot(self.reference.occupancy(), self.reference.means)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "reference": None if self.reference is None else self.reference.state_dict(),
            "reservoir": self.reservoir.state_dict(),
            "fraud": self.fraud.state_dict(),
            "detector": self.detector.state_dict(),
            "gauges": self.gauges.state_dict(),
            "warm_x": np.vstack(self.warm_x) if self.warm_x else None,
            "warm_ids": list(self.warm_ids),
            "seen": self.seen, "outliers": self.outliers,
            "since_alarm": self.since_alarm, "last_alarm": self.last_alarm,
            "rebaseline": self._rebaseline,
            "pending": {k: (list(v) if k in ("ids", "time") else
                            (np.concatenate(v) if v else None))
                        for k, v in self.pending.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        ref = state["reference"]
        self.reference = None if ref is None else CentroidReference.from_state(ref)
        self.reservoir.load_state_dict(state["reservoir"])
        self.fraud.load_state_dict(state["fraud"])
        self.detector.load_state_dict(state["detector"])
        self.gauges.load_state_dict(state["gauges"])
        wx = state["warm_x"]
        self.warm_x = [] if wx is None else [np.array(wx, np.float32)]
        self.warm_ids = list(state["warm_ids"])
        self.seen, self.outliers = int(state["seen"]), int(state["outliers"])
        self.since_alarm = state["since_alarm"]
        self.last_alarm = state["last_alarm"]
        self._rebaseline = bool(state["rebaseline"])
        self.pending = {k: (list(v) if k in ("ids", "time") else ([] if v is None else [v]))
                        for k, v in state["pending"].items()}
