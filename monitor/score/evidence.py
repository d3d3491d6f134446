"""Per-field evidence of one segment: numerics in context, categorical and hour rarity.

One concatenated embedding lets its noisiest block set the distance: an amount 30 times
the median barely moves a cosine dominated by 384 text dimensions. Here each raw field
is judged on its own:

- a numeric value by its z-score, globally and within the value of each context field
  (an amount against the amounts of its category), the larger of the two. A small
  context borrows strength from the whole: its mean (and, on the log scale, its
  variance) is shrunk towards the global one with `prior` pseudo-events, so a context of
  50 rows is mostly itself and one of 2 rows mostly global;
- a categorical value by how rare it is, as a conformal p-value computed from counts
  (see `count_p_values`), valid without any calibration pool;
- the hour of day the same way, when the reference (or warm-up) spans two days: one that
  covers part of a day would make every unseen hour look rare. It is decided once, at
  the fit: a column that switched on mid-stream would shift the combined score under a
  calibrated pool, which the drift detector would rightly call drift.

Statistics are decayed counts, sums and sums of squares, learned from events that were
no outliers (p > alpha): a flagged event cannot widen the normal range it was judged
against, while a new value that keeps coming at volume becomes common. The bar is looser
than the centroids' (`learn_p`) on purpose: a borderline value still counts towards how
common it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.embed.fields import FieldLayout, FieldValues

Floats = npt.NDArray[np.float64]
HOURS = 24
TIME_SPAN_S = 2 * 86_400.0  # learned event time needed before hour rarity counts
_SD_FLOOR = 1e-3  # a context's spread never falls below this share of the global one


def count_p_values(counts: Floats, which: npt.NDArray[np.int64]) -> Floats:
    """Conformal p-values of categorical values from the counts of their buckets.

    The nonconformity of a value is how rare it is. Against the N counted events (each
    scored leave-one-out, i.e. with its own count less one), an event of a value seen c
    times has p = (1 + sum of the counts c_u with c_u <= c + 1) / (N + 1): a value never
    seen ties with the singletons, so a field full of one-off values makes a new one
    unsurprising (the Good-Turing view). `which` = -1 means missing: p = 1.

    >>> counts = np.array([90.0, 8.0, 1.0, 1.0, 0.0])
    >>> count_p_values(counts, np.array([0, 1, 2, 4, -1])).round(3).tolist()
    [1.0, 0.109, 0.03, 0.03, 1.0]
    """
    return CountTable(counts).p_values(which)


class CountTable:
    """Counts sorted with their running sums: `count_p_values` without a sort per call
    (the counts change only when the segment learns)."""

    def __init__(self, counts: Floats) -> None:
        self.counts = counts
        self.total = float(counts.sum())
        self.ordered = np.sort(counts)
        self.cum = np.concatenate([[0.0], np.cumsum(self.ordered)])

    def p_values(self, which: npt.NDArray[np.int64]) -> Floats:
        if self.total <= 0:
            return np.ones(len(which))
        c = self.counts[np.maximum(which, 0)]
        below = self.cum[self.ordered.searchsorted(c + 1.0, side="right")]
        p: Floats = np.minimum(1.0, (1.0 + below) / (self.total + 1.0))
        p[which < 0] = 1.0
        return p


class FieldEvidence:
    """Decayed statistics of one segment's raw fields, and the evidence they give."""

    def __init__(self, layout: FieldLayout, prior: float) -> None:
        self.layout = layout
        self.prior = prior
        f, c, x, b = (len(layout.numeric), len(layout.categorical), len(layout.context),
                      layout.buckets)
        self.shift = np.zeros(f)  # values are summed relative to this (less cancellation)
        self.glob = np.zeros((3, f))  # weight, sum, sum of squares
        self.ctx = np.zeros((x, b, 3, f))
        self.counts = np.zeros((c, b))
        self.hours = np.zeros(HOURS)
        self.span = (math.nan, math.nan)  # first and last learned event time
        self.hourly = False  # hour-of-day rarity counts (decided at the fit)
        self._refresh()

    def _refresh(self) -> None:
        """What scoring reads, derived from the statistics once per learning block: the
        global and every context bucket's shrunk mean and spread, the sorted counts."""
        mu_g, var_g = _moments(self.glob)
        var_g = np.where(var_g > 1e-18, var_g, 1.0)  # a constant field: keep z finite
        self._mu_g, self._sd_g = mu_g, np.sqrt(var_g)
        w = self.ctx[:, :, 0] / (self.ctx[:, :, 0] + self.prior)  # (X, B, F)
        mu_c, var_c = _moments(np.moveaxis(self.ctx, 2, 0))
        self._ctx_mu = w * mu_c + (1 - w) * mu_g
        # the spread is pooled on the log scale: spreads differ by orders of magnitude
        # between contexts (a fixed price, a wide basket), and a linear mix would let the
        # prior's pseudo-events at the global spread swamp a large, tight context
        floor = var_g * _SD_FLOOR**2
        log_var = w * np.log(np.maximum(var_c, floor)) + (1 - w) * np.log(var_g)
        self._ctx_sd = np.sqrt(np.maximum(np.exp(log_var), floor))
        self._tables = [CountTable(c) for c in self.counts]
        self._hour_table = CountTable(self.hours)

    # -- evidence ---------------------------------------------------------------------
    def numeric_z(self, v: FieldValues) -> Floats:
        """|z| of each numeric value, the larger of global and in-context; 0 if missing."""
        d = v.numeric - self.shift
        z = np.abs(d - self._mu_g) / self._sd_g
        for j, field in enumerate(self.layout.context):
            at = v.context_codes(field)
            z = np.maximum(z, np.abs(d - self._ctx_mu[j][at]) / self._ctx_sd[j][at])
        out: Floats = np.nan_to_num(z, nan=0.0, posinf=0.0)
        return out

    def count_p(self, v: FieldValues) -> Floats:
        """(n, C [+1]) p-values of each categorical value's rarity, then the hour's."""
        cols = [table.p_values(v.codes[:, j]) for j, table in enumerate(self._tables)]
        if self.layout.time:
            cols.append(self._hour_table.p_values(v.hour) if self.hourly
                        else np.ones(len(v)))
        return np.column_stack(cols) if cols else np.ones((len(v), 0))

    # -- learning -----------------------------------------------------------------------
    def fit(self, v: FieldValues) -> None:
        """Start from reference rows (centred on their mean for numeric precision)."""
        if v.numeric.shape[1] and len(v):
            with np.errstate(all="ignore"):
                centre = np.nanmean(v.numeric, axis=0) if len(v) else self.shift
            self.shift = np.nan_to_num(centre)
        self.learn(v, 1.0)
        first, last = self.span
        self.hourly = last - first >= TIME_SPAN_S  # NaN compares False
        self._refresh()

    def learn(self, v: FieldValues, decay: float) -> None:
        """Decay everything once, then add the rows (all of them: the caller chose)."""
        for arr in (self.glob, self.ctx, self.counts, self.hours):
            arr *= decay
        if len(v):
            self._add(v)
        self._refresh()

    def _add(self, v: FieldValues) -> None:
        d = v.numeric - self.shift
        seen = ~np.isnan(d)
        d0 = np.where(seen, d, 0.0)
        rows = np.stack([seen.astype(np.float64), d0, d0 * d0], axis=1)  # (n, 3, F)
        self.glob += rows.sum(axis=0)
        for j, field in enumerate(self.layout.context):
            np.add.at(self.ctx[j], v.context_codes(field), rows)
        for j in range(len(self.layout.categorical)):
            self.counts[j] += np.bincount(v.codes[:, j], minlength=self.layout.buckets)
        if self.layout.time:
            hour = v.hour
            self.hours += np.bincount(hour[hour >= 0], minlength=HOURS)[:HOURS]
            t = v.time[~np.isnan(v.time)]
            if len(t):
                first, last = self.span
                self.span = (float(np.fmin(first, t.min())), float(np.fmax(last, t.max())))

    # -- state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"shift": self.shift.copy(), "glob": self.glob.copy(), "ctx": self.ctx.copy(),
                "counts": self.counts.copy(), "hours": self.hours.copy(),
                "span": list(self.span), "hourly": self.hourly}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shift = np.array(state["shift"], np.float64)
        self.glob = np.array(state["glob"], np.float64).reshape(self.glob.shape)
        self.ctx = np.array(state["ctx"], np.float64).reshape(self.ctx.shape)
        self.counts = np.array(state["counts"], np.float64).reshape(self.counts.shape)
        self.hours = np.array(state["hours"], np.float64)
        self.hourly = bool(state["hourly"])
        first, last = state["span"]
        self.span = (math.nan if first is None else float(first),
                     math.nan if last is None else float(last))
        self._refresh()


def _moments(stats: Floats) -> tuple[Floats, Floats]:
    """Mean and variance from (weight, sum, sum of squares); 0 where empty.

    >>> mu, var = _moments(np.array([[2.0, 0.0], [6.0, 0.0], [20.0, 0.0]]))
    >>> mu.tolist(), var.tolist()
    ([3.0, 0.0], [1.0, 0.0])
    """
    w, s, ss = stats[0], stats[1], stats[2]
    safe = np.where(w <= 1e-12, 1.0, w)
    mu = np.where(w <= 1e-12, 0.0, s / safe)
    var = np.maximum(np.where(w <= 1e-12, 0.0, ss / safe - mu * mu), 0.0)
    return mu, var
