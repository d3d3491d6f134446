"""One segment's scoring state: warm-up, reference, calibration, fraud prototypes, drift.

Score before learn: every event is scored against the state as it was before the event
arrived. Learning is applied in blocks of `learn_block` events of this segment, counted
from the segment's first event, so the outcome does not depend on how a stream was cut
into poll batches (a replay after a crash reproduces the same state).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.config import DriftConfig, ScoreConfig
from monitor.drift.gauges import WindowGauges
from monitor.drift.martingale import ShiryaevRoberts
from monitor.score.batch import Scored, score_chunks, warming
from monitor.score.calibration import CalibrationReservoir
from monitor.score.fraud import FraudPrototypes
from monitor.score.reference import CentroidReference, auto_k, decay_factor

Matrix = npt.NDArray[np.float32]
Alarm = tuple[int, float, dict[str, Any]]  # (row, statistic, gauges at that row)


def _empty_pending() -> dict[str, list[Any]]:
    return {k: [] for k in ("x", "ids", "fraud", "accept", "idx", "sim", "score", "time")}


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

    def fit(self, x: Matrix, ids: list[str], from_stream: bool = False) -> None:
        """Build the reference from rows: fit on one part, calibrate on a held-out part,
        then fold the held-out rows in. In-sample scores would be too small and make every
        later p-value too small, so the reservoir only ever sees out-of-sample scores.

        A reference built from the stream's own warm-up is trimmed the way learning will
        trim it (see `CentroidReference.fit`). A reference file is taken as vetted normal
        traffic and kept whole: trimming it cost 0.005 AUROC on CLINC150.
        """
        n = len(x)
        order = self.rng.permutation(n)
        n_cal = max(1, round(n * self.cfg.holdout))
        cal, fit_rows = order[:n_cal], order[n_cal:]
        k = self.cfg.k if isinstance(self.cfg.k, int) else auto_k(n, self.cfg.k_min,
                                                                     self.cfg.k_max)
        fit_ids = [ids[i] for i in fit_rows]
        trim = self.cfg.learn_p if from_stream and self.cfg.learn_p > self.cfg.alpha else 0.0
        self.reference = CentroidReference.fit(x[fit_rows], k, self.seed, self.cfg.exemplars,
                                               fit_ids, trim)
        idx, dist = self.reference.nearest(x[cal])
        scores = self._nonconformity(idx, dist)
        self.reservoir.add(scores)
        # fold in the held-out rows the way learning would: those above learn_p
        bar = max(self.cfg.alpha, self.cfg.learn_p) if from_stream else 0.0
        accept = self.reservoir.p_values(scores) > bar
        cal = cal[accept]
        self.reference.learn(x[cal], idx[accept], dist[accept], 1.0, [ids[i] for i in cal])
        self.warm_x, self.warm_ids = [], []

    def _nonconformity(self, idx: npt.NDArray[np.int64],
                       dist: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.cfg.normalise_by_scale and self.reference is not None:
            return dist / np.maximum(self.reference.scales[idx], 1e-6)
        return dist

    # -- the hot path ---------------------------------------------------------------------
    def process(self, x: Matrix, ids: list[str], labels: list[bool | None],
                timestamps: list[float | None]) -> Scored:
        """Score rows that lie within one learning block, then `observe` them (the
        engine batches the scoring of many segments; this is the one-segment form)."""
        is_fraud = np.array([lab is True for lab in labels], bool)
        if self.reference is None:
            res = warming(self, x, is_fraud)
        else:
            res = score_chunks([self], x, [0, len(x)], is_fraud)
        self.observe(x, ids, is_fraud.tolist(), timestamps, res, 0, len(x))
        return res

    def observe(self, x: Matrix, ids: list[str], is_fraud: list[bool],
                timestamps: list[float | None], res: Scored, a: int,
                b: int) -> list[Alarm]:
        """Feed this segment's rows `a:b` of a scoring pass (all within one learning
        block) to the drift detector and gauges, defer what they teach, and learn once
        the block is complete. Returns (row, statistic, gauges) for each drift alarm.

        Learning (reference, calibration, prototypes, warm-up fit) waits for the block so
        every row of a block is scored against the same state whether the block arrived
        whole or in pieces.
        """
        alarms = [] if res.warming_up else self._detect(res, ids, a, b)
        p = self.pending
        p["x"].append(x.copy())  # `x` may be a view of a whole batch: do not pin it
        p["ids"].extend(ids)
        p["fraud"].extend(is_fraud)
        p["accept"].extend(res.accept[a:b])
        p["idx"].extend(res.centroid[a:b])
        p["sim"].extend(res.normal_similarity[a:b])
        p["score"].extend(res.score[a:b])
        p["time"].extend(t for t in timestamps if t is not None)
        self.seen += b - a
        if self.seen % self.cfg.learn_block == 0:
            self._apply()
        return alarms

    def _detect(self, res: Scored, ids: list[str], a: int, b: int) -> list[Alarm]:
        alarms: list[Alarm] = []
        last = None  # row of the newest crossing in this block
        since = self.since_alarm
        seen = 0  # rows of a:b already in the gauges
        for i, stat in self.detector.update_many(res.smooth[a:b]):
            # events since the previous alarm, as seen at row i
            now = i - last if last is not None else (None if since is None else since + i + 1)
            # a crossing while already drifting extends the episode, not a new alarm
            if now is None or now > self.drift_cfg.hysteresis:
                # describe the window as it stood at the alarm, whatever followed it in
                # the same batch: the explanation must not depend on batch boundaries
                self.gauges.update(res.centroid[a + seen : a + i + 1],
                                   res.outlier[a + seen : a + i + 1], ids[seen : i + 1])
                seen = i + 1
                alarms.append((i, stat, self.gauge_snapshot()))
                self._rebaseline = self.drift_cfg.rebaseline
            last = i
        if last is not None:
            self.since_alarm = b - a - 1 - last
        elif since is not None:
            self.since_alarm = since + b - a
        self.gauges.update(res.centroid[a + seen : b], res.outlier[a + seen : b], ids[seen:])
        self.outliers += sum(res.outlier[a:b])
        return alarms

    def _apply(self) -> None:
        p = self.pending
        if not p["x"]:
            return
        x = np.vstack(p["x"])
        ids: list[str] = p["ids"]
        fraud, accept = np.array(p["fraud"], bool), np.array(p["accept"], bool)
        now = max(p["time"]) if p["time"] else None
        self.pending = _empty_pending()
        if fraud.any():
            self.fraud.add(x[fraud])
        ref = self.reference
        if ref is None:
            self.warm_x.append(x[accept])
            self.warm_ids.extend(ids[i] for i in np.flatnonzero(accept))
            if len(self.warm_ids) >= self.cfg.warmup:
                self.fit(np.vstack(self.warm_x), self.warm_ids, from_stream=True)
            return
        idx, dist = np.array(p["idx"], np.int64), 1.0 - np.array(p["sim"], np.float64)
        dt = 0.0 if now is None or ref.last_time is None else max(0.0, now - ref.last_time)
        lam = decay_factor(len(x), self.cfg.half_life_events, dt, self.cfg.half_life_seconds)
        ref.learn(x[accept], idx[accept], dist[accept], lam,
                  [ids[i] for i in np.flatnonzero(accept)], now)
        # every out-of-sample score calibrates except confirmed fraud (see the reservoir)
        self.reservoir.add(np.array(p["score"], np.float64)[~fraud])
        if self._rebaseline:
            self.reference = None  # re-enter warm-up on the new regime
            self._rebaseline = False

    @property
    def drifting(self) -> bool:
        """Firing from an alarm until `hysteresis` events pass without another."""
        return self.since_alarm is not None and self.since_alarm <= self.drift_cfg.hysteresis

    def gauge_snapshot(self) -> dict[str, Any]:
        """The window gauges against the reference, with examples of the new events: the
        newest ones that fell into a cluster that grew (the newest of all otherwise)."""
        snap: dict[str, Any]
        if self.reference is None:
            snap = {"centroid_shift": 0.0, "occupancy_divergence": 0.0,
                    "outlier_rate": self.gauges.outlier_rate(), "grown": [], "shrunk": []}
        else:
            snap = self.gauges.snapshot(self.reference.occupancy(), self.reference.means)
        return snap | {"examples": self.gauges.example_ids(snap["grown"])}

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
            "pending": {k: (list(v) if k != "x" else (np.vstack(v) if v else None))
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
        self.pending = {k: (list(v) if k != "x" else ([] if v is None else [v]))
                        for k, v in state["pending"].items()}
