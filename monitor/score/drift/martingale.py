"""Shiryaev-Roberts change detection on conformal p-values with mixture power betting.

Under no drift the smoothed conformal p-values are i.i.d. uniform and each betting factor
g(p) has expectation 1, so R_n - n is a martingale and E[R_n] = n. Alarming when
R_n >= c therefore gives a false alarm before `horizon` events with probability at most
about horizon / c: the threshold is a false-alarm budget, not a magic number.
"""

from __future__ import annotations

import math
from typing import Any

_P_FLOOR = 1e-12


def mixture_bet(p: float) -> float:
    """g(p) = ∫₀¹ ε·p^(ε-1) dε = (1 - p + p·ln p) / (p·(ln p)²); integrates to 1 on [0, 1].

    Small p-values (surprising events) multiply the statistic, large ones shrink it.

    >>> round(mixture_bet(0.5), 4), round(mixture_bet(0.01), 2), round(mixture_bet(0.999999), 3)
    (0.6387, 4.45, 0.5)
    """
    p = min(max(p, _P_FLOOR), 1.0)
    lnp = math.log(p)
    if abs(lnp) < 1e-6:
        return 0.5  # the limit at p -> 1
    return (1.0 - p + p * lnp) / (p * lnp * lnp)


def threshold_for(false_alarm_probability: float, horizon: int, segments: int = 1) -> float:
    """Alarm threshold c so that P(any false alarm in `horizon` events) <~ the budget,
    split evenly over `segments` independent detectors (Bonferroni).

    >>> threshold_for(0.01, 10_000)
    1000000.0
    >>> threshold_for(0.01, 10_000, segments=4)
    4000000.0
    """
    return horizon * segments / false_alarm_probability


class ShiryaevRoberts:
    """R_n = (1 + R_{n-1})·g(p_n); alarm and reset when R_n >= threshold.

    >>> d = ShiryaevRoberts(threshold=1e3)
    >>> any(d.update(0.5) for _ in range(1000))  # uniform-looking p-values: quiet
    False
    >>> [d.update(1e-3) for _ in range(3)]  # a run of surprising events
    [False, True, False]
    >>> e = ShiryaevRoberts(threshold=1e3)
    >>> [(i, round(r)) for i, r in e.update_many([0.5] * 1000 + [1e-3] * 3)]  # in one call
    [(1001, 1217)]
    """

    name = "shiryaev_roberts"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.statistic = 0.0
        self.alarms = 0

    def update(self, p: float) -> bool:
        """One p-value; True if the statistic crossed the threshold (and was reset)."""
        return bool(self.update_many([p]))

    def update_many(self, ps: list[float]) -> list[tuple[int, float]]:
        """R_n = (1 + R_{n-1})·g(p_n) for each p-value in order; returns (position,
        statistic) of each crossing. `mixture_bet` is inlined: this runs once per event."""
        r, c = self.statistic, self.threshold
        log, floor = math.log, _P_FLOOR
        crossings: list[tuple[int, float]] = []
        for i, p in enumerate(ps):
            p = min(max(p, floor), 1.0)
            lnp = log(p)
            g = 0.5 if abs(lnp) < 1e-6 else (1.0 - p + p * lnp) / (p * lnp * lnp)
            r = (1.0 + r) * g
            if r >= c:
                self.alarms += 1
                crossings.append((i, r))
                r = 0.0
        self.statistic = r
        return crossings

    def state_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "statistic": self.statistic,
                "alarms": self.alarms}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.threshold = float(state["threshold"])
        self.statistic = float(state["statistic"])
        self.alarms = int(state["alarms"])
