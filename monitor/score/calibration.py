"""Calibration reservoir and conformal p-values.

Scores enter the reservoir only when they were computed out of sample (before their event
updated the reference), so under no drift a new score is exchangeable with them and the
p-value below is valid: P(p <= alpha) <= alpha.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.score.tail import Tail, impute, tail_fit, tail_p_values

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
STAND_IN_SHARE = 2.0  # stand-ins may fill at most this many times `bar` of a pool


def p_values_from_ranks(lo: Ints, hi: Ints, n: Ints | int,
                        uniforms: Floats) -> tuple[Floats, Floats]:
    """Conformal and smoothed p-values from the ranks of each score in its calibration.

    `lo`/`hi` are the left/right insertion points of a score among `n` sorted calibration
    scores, so n - lo of them are >= the score and hi - lo are equal to it:
    conformal p = (1 + #{s_i >= s}) / (n + 1), and smoothed
    p = (#{s_i > s} + U·(1 + #{s_i = s})) / (n + 1), exactly uniform under
    exchangeability. The randomisation breaks ties, which the drift martingale needs (a
    conservative p-value would make it drift downward and lose power).

    >>> p, sm = p_values_from_ranks(np.array([1]), np.array([2]), 3, np.array([0.5]))
    >>> p.tolist(), sm.tolist()
    ([0.75], [0.5])
    """
    p: Floats = (1.0 + (n - lo)) / (n + 1.0)
    smooth: Floats = ((n - hi) + uniforms * (1.0 + (hi - lo))) / (n + 1.0)
    return p, smooth


def conformal_p_values(scores: Floats, calibration_sorted: Floats) -> Floats:
    """(1 + #{s_i >= s}) / (n + 1) for each score, given the sorted calibration scores.

    >>> conformal_p_values(np.array([2.0, 0.1, 9.0]), np.array([0.5, 1.0, 3.0])).tolist()
    [0.5, 1.0, 0.25]
    """
    lo = np.searchsorted(calibration_sorted, scores, side="left")
    return p_values_from_ranks(lo, lo, len(calibration_sorted), np.zeros(len(lo)))[0]


class SortedWindow:
    """The last `size` values in arrival order, also kept sorted for rank lookups."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.ring = np.zeros(size, np.float64)
        self.count = 0
        self.sorted = np.zeros(0, np.float64)

    def __len__(self) -> int:
        return min(self.count, self.size)

    def add(self, values: Floats) -> None:
        """Append values, dropping the oldest past `size`; one vectorised merge per call."""
        values = np.asarray(values, np.float64)[-self.size :]
        m = len(values)
        if m == 0:
            return
        slots = (self.count + np.arange(m)) % self.size
        n_old = min(self.count, self.size)
        leaving = max(0, n_old + m - self.size)
        kept = self.sorted
        if leaving:
            # the oldest live values (not the slots being overwritten: a ring that was
            # not yet full overwrites empty slots first)
            oldest = (self.count - n_old + np.arange(leaving)) % self.size
            old = np.sort(self.ring[oldest])
            # remove one occurrence of each leaving value (they are present in `sorted`)
            pos = np.searchsorted(self.sorted, old, side="left")
            pos += np.arange(leaving) - np.searchsorted(old, old, side="left")
            keep = np.ones(len(kept), bool)
            keep[pos] = False
            kept = kept[keep]
        self.ring[slots] = values
        merged = np.concatenate([kept, np.sort(values)])
        merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
        self.sorted = merged
        self.count += m

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "ring": self.ring.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = int(state["size"])
        self.ring = np.array(state["ring"], np.float64)
        self.count = int(state["count"])
        self.sorted = np.sort(self.ring[: min(self.count, self.size)])


class CalibrationReservoir:
    """The most recent `size` out-of-sample scores of events not confirmed as fraud.

    Any selection on the score itself biases the calibration: leaving outliers out
    truncates it at its own alpha-quantile, and each refresh trims the tail again, so the
    threshold ratchets down (measured: false-positive rate 0.25 at alpha 0.05 after 6,000
    stationary events). Keeping them lets a burst of anomalies, or the first wave of a
    drift, lift the bar for whatever comes next. So a flagged score (p <= `bar`) never
    enters; a draw from the fitted tail beyond the bar stands in for it (`tail.impute`),
    which is where it lies under no drift. That keeps the share of the pool above the bar
    at `bar` with a restoring force (a bar set too low flags more, and gets more stand-ins
    above it). The stand-ins may fill at most `STAND_IN_SHARE` times `bar` of the pool, a
    share no drift reaches: past it, flagged scores are dropped, so a burst or a flood
    lifts the bar by a bounded step and no further. (A budget of stand-ins per event
    instead drifted: every shortfall trimmed the tail and flagged more next time.)
    Confirmed fraud (feedback labels) is left out, a selection on a label, not the score.

    With `tail`, p-values beyond the largest score come from the fitted exponential tail
    (`tail.tail_p_values`); the fit is refreshed whenever scores are added.

    >>> r = CalibrationReservoir(size=4)
    >>> r.add(np.array([0.1, 0.2, 0.3, 0.4]))
    >>> r.p_values(np.array([0.35, 0.5])).tolist()
    [0.4, 0.2]
    >>> r.add(np.array([0.9])); r.sorted.tolist()  # a sliding window: 0.1 left
    [0.2, 0.3, 0.4, 0.9]
    """

    def __init__(self, size: int, tail: bool = False, predictive: bool = True) -> None:
        self.window = SortedWindow(size)
        self.tail = tail
        self.predictive = predictive  # the tail's form (see `Tail.survival`)
        self.fitted = Tail(0.0, 0.0, 0.0, 0.0)
        self.synthetic = np.zeros(size, bool)  # which ring slots hold stand-ins

    def __len__(self) -> int:
        return len(self.window)

    @property
    def sorted(self) -> Floats:
        return self.window.sorted

    @property
    def floor(self) -> float:
        """Smallest p-value the scores alone resolve, 1/(n+1); below it the tail speaks."""
        return 1.0 / (len(self) + 1.0)

    def add(self, scores: Floats, synthetic: npt.NDArray[np.bool_] | None = None) -> None:
        w = self.window
        scores = np.asarray(scores, np.float64)[-w.size :]
        flags = np.zeros(len(scores), bool) if synthetic is None else synthetic[-w.size :]
        self.synthetic[(w.count + np.arange(len(scores))) % w.size] = flags
        w.add(scores)
        self._refit()

    @property
    def stand_ins(self) -> int:
        """Stand-ins among the live scores."""
        return int(self.synthetic[: len(self)].sum())

    def _refit(self) -> None:
        if self.tail and len(self):
            self.fitted = tail_fit(self.window.sorted, self.predictive)

    def p_values(self, scores: Floats) -> Floats:
        if not self.tail:
            return conformal_p_values(scores, self.window.sorted)
        return tail_p_values(np.asarray(scores, np.float64), self.window.sorted, self.fitted)

    def smoothed(self, scores: Floats, uniforms: Floats) -> Floats:
        """Randomised p-values (exactly uniform under exchangeability) for the drift test."""
        cal = self.window.sorted
        lo, hi = cal.searchsorted(scores, side="left"), cal.searchsorted(scores, side="right")
        return p_values_from_ranks(lo, hi, len(cal), uniforms)[1]

    def randomised(self, scores: Floats, uniforms: Floats) -> Floats:
        """`smoothed` within the pool's range, the fitted tail beyond it: for a pool of a
        few distinct scores (the distance of a text field with a handful of values),
        where conservative p-values would sit on a few atoms whose share of a block
        wanders, while each value beyond the pool keeps its own tail evidence."""
        p = self.smoothed(scores, uniforms)
        if self.tail and len(self) and self.fitted.beta > 0:
            beyond = scores > self.fitted.top
            if beyond.any():
                p[beyond] = tail_p_values(scores[beyond], self.window.sorted, self.fitted)
        return p

    def calibrate(self, scores: Floats, flagged: npt.NDArray[np.bool_], bar: float,
                  rng: np.random.Generator) -> None:
        """Add the scores of unflagged events, and a tail draw beyond `bar` for each
        flagged one while stand-ins fill less than `STAND_IN_SHARE`·bar of the pool."""
        kept = scores[~flagged]
        room = int(STAND_IN_SHARE * bar * self.window.size) - self.stand_ins
        count = max(0, min(int(flagged.sum()), room))
        if not count:
            self.add(kept)
            return
        pool = self.window.sorted  # the fit is kept up to date only with `tail` on
        fitted = self.fitted if self.tail else tail_fit(pool, self.predictive)
        draws = impute(count, bar, pool, fitted, rng)
        self.add(np.concatenate([kept, draws]),
                 np.concatenate([np.zeros(len(kept), bool), np.ones(count, bool)]))

    def state_dict(self) -> dict[str, Any]:
        return self.window.state_dict() | {"synthetic": self.synthetic.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window.load_state_dict(state)
        self.synthetic = np.array(state["synthetic"], bool)
        self._refit()
