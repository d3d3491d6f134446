"""Conformal p-values with an extrapolated tail, and imputation for flagged scores.

With n calibration scores the smallest conformal p-value is 1/(n+1): with 181 scores
nothing can reach alpha = 0.001. Beyond the largest calibration score the p-value comes
from an exponential tail (peaks over threshold with shape 0) fitted to the top m scores:
their mean excess beta over the next one, the anchor. Plugging the estimate into
exp(-t / beta) is optimistic (beta is uncertain, and the p-value is convex in it:
measured 1.45x alpha with 181 scores); the excess of a new score over beta estimated from
m exponential excesses follows an F(2, 2m) distribution, so the p-value uses its survival
function instead: P(S > anchor + t) = rate · (1 + t / (m·beta))^-m, exact for an
exponential tail whatever m, and the plug-in as m grows. Lighter tails than exponential
(distances, robust z-scores of well-behaved values) make it conservative.

A flagged event's score must not enter the calibration (a burst of anomalies would lift
the bar for the next one), yet leaving it out trims the calibration at its own alpha
quantile on every refresh and ratchets the threshold down. So a flagged score is replaced
by a draw from the fitted tail beyond the alpha threshold: under no drift that is where
it came from, so the calibration stays unbiased; under a burst the tail grows a little
instead of filling with the burst's own extreme scores.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

TAIL_MIN = 20  # calibration scores needed before a tail is fitted


class Tail(NamedTuple):
    """An exponential tail above `anchor`, the (m+1)-th largest of n scores:
    P(S > anchor + t) = rate · (1 + t / (m·beta))^-m with rate = (m + 1) / (n + 1)."""

    anchor: float
    rate: float
    beta: float  # 0 = no tail fitted
    top: float  # the largest score
    m: int = 1  # scores the fit used
    predictive: bool = True  # False: the plug-in exp(-t / beta)

    def survival(self, t: Floats | float) -> Floats:
        """Share of scores beyond anchor + t (t >= 0): from the F(2, 2m) predictive, or
        the plug-in exponential where only the order of scores matters (a per-field
        column, whose combination is calibrated again: there the predictive's
        compression of the far tail would only blur the most extreme values).

        >>> Tail(0.0, 0.1, 1.0, 5.0, 10).survival(np.array([0.0, 10.0])).round(6).tolist()
        [0.1, 9.8e-05]
        >>> Tail(0.0, 0.1, 1.0, 5.0, 10, False).survival(np.array([10.0])).round(7).tolist()
        [4.5e-06]
        """
        t = np.asarray(t, np.float64)
        if not self.predictive:
            plug: Floats = self.rate * np.exp(-t / self.beta)
            return plug
        out: Floats = self.rate * (1.0 + t / (self.m * self.beta)) ** (-self.m)
        return out


def tail_fit(pool: Floats, predictive: bool = True) -> Tail:
    """The exponential tail of a sorted pool: the top m = n/10 scores (10 to 100 of
    them) give beta as their mean excess over the next largest score, the anchor.

    Anchoring below the top keeps the fit steady: one new extreme score moves the anchor
    by one rank, not the whole tail.

    >>> tail_fit(np.arange(1.0, 101.0))  # top 10: 91..100 over 90, mean excess 5.5
    Tail(anchor=90.0, rate=0.10891089108910891, beta=5.5, top=100.0, m=10, predictive=True)
    >>> tail_fit(np.arange(5.0)).beta
    0.0
    """
    n = len(pool)
    top = float(pool[-1]) if n else 0.0
    if n < TAIL_MIN:
        return Tail(top, 0.0, 0.0, top, 1, predictive)
    m = max(10, min(100, n // 10))
    anchor = float(pool[n - m - 1])
    beta = float(pool[n - m :].mean()) - anchor
    return Tail(anchor, (m + 1) / (n + 1), max(beta, 0.0), top, m, predictive)


def tail_p_values(scores: Floats, pool: Floats, tail: Tail) -> Floats:
    """Conformal p = (1 + #{s_i >= s}) / (n + 1) within the pool's range; beyond its
    largest score the fitted tail, capped at 1/(n+1) so p never rises with the score.

    >>> pool = np.arange(1.0, 101.0)
    >>> tail_p_values(np.array([50.0, 100.0, 105.5]), pool, tail_fit(pool)).round(5).tolist()
    [0.51485, 0.0198, 0.0091]
    """
    n = len(pool)
    p = np.asarray((1.0 + n - pool.searchsorted(scores, side="left")) / (n + 1.0), np.float64)
    if tail.beta > 0:
        beyond = scores > tail.top
        if beyond.any():
            far = tail.survival(scores[beyond] - tail.anchor)
            p[beyond] = np.minimum(far, 1.0 / (n + 1.0))
    return p


def threshold(alpha: float, pool: Floats, tail: Tail) -> float:
    """The score at which `tail_p_values` reaches alpha: from the pool where alpha is at
    least 1/(n+1), else from the fitted tail (inf where neither can reach it).

    >>> pool = np.arange(1.0, 101.0)
    >>> threshold(0.2, pool, tail_fit(pool))  # #{s_i >= s} <= 19
    82.0
    >>> round(threshold(0.001, pool, tail_fit(pool)), 3)
    122.916
    """
    n = len(pool)
    j = math.floor(alpha * (n + 1) - 1 + 1e-9)  # at most j calibration scores >= s
    if j >= 1:
        return float(pool[n - j])
    if tail.beta <= 0:
        return math.inf
    if tail.predictive:
        excess = tail.m * tail.beta * ((tail.rate / alpha) ** (1.0 / tail.m) - 1.0)
    else:
        excess = tail.beta * math.log(tail.rate / alpha)
    return float(max(tail.top, tail.anchor + excess))


def impute(count: int, alpha: float, pool: Floats, tail: Tail,
           rng: np.random.Generator) -> Floats:
    """`count` stand-ins for flagged scores: the alpha threshold plus an exponential
    excess of the fitted scale (the largest score when no tail can be fitted); `tail` is
    `tail_fit(pool)`, which the caller keeps."""
    bar = threshold(alpha, pool, tail)
    if not math.isfinite(bar) or tail.beta <= 0:
        return np.full(count, tail.top)
    # the excess is drawn with the estimate itself, not the predictive: stand-ins become
    # calibration scores that the next fit reads, and the predictive's heavier excess
    # (mean m·beta/(m-1)) would inflate beta fit after fit
    out: Floats = bar + rng.exponential(tail.beta, count)
    return out
