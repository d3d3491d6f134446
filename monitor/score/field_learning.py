"""The per-field half of a segment's fit and of its learning blocks.

Fit: the segment fits its centroids on one part of the rows and scores the held-out
part; the per-field evidence does the same: statistics (and each text field's
centroids) from the fit rows, one pool per column from the held-out rows, and each
held-out row's combined score with its own row left out of the pools, so the
combination is calibrated on out-of-sample scores as well.

Learning block: the pools take the block's normal events (those at or below the bar
replaced by tail draws, see `CalibrationReservoir.calibrate`), and the field statistics
learn from every event that was no outlier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.embed.fields import FieldValues
from monitor.score.batch import SegmentState, combined_score
from monitor.score.text_fields import leave_one_out

Floats = npt.NDArray[np.float64]
Rows = npt.NDArray[np.int64]


def calibrate_fields(m: SegmentState, values: FieldValues, fit_rows: Rows, cal: Rows,
                     distance: Floats, k: int, trim: float) -> Floats:
    """Fit `m`'s field evidence on `fit_rows`, fill its pools from `cal`; returns the
    held-out rows' combined scores (`distance` is their embedding score)."""
    assert m.evidence is not None
    m.evidence.fit(values.take(fit_rows))
    held = values.take(cal)
    cols = m.evidence.numeric_z(held)
    lead = []
    if m.text is not None:
        assert values.text is not None
        lead = [m.text.fit(values.text[fit_rows], values.text[cal], k, m.seed, trim)]
    else:
        cols = np.column_stack([distance, cols])
    for j, pool in enumerate(m.pools):
        pool.add(cols[:, j])
    # each held-out row against the others: its pooled p-values leave it out
    loo = [leave_one_out(pool.sorted, cols[:, j]) for j, pool in enumerate(m.pools)]
    return combined_score(np.column_stack([*lead, *loo, m.evidence.count_p(held)]),
                          m.cfg.combine_below)


def learn_fields(m: SegmentState, pending: dict[str, list[Any]], values: FieldValues,
                 normal: npt.NDArray[np.bool_], inlier: npt.NDArray[np.bool_], bar: float,
                 decay: float) -> None:
    """One learning block of per-field evidence: calibrate the pools with the normal
    events, and let the statistics learn from the normal events that were no outliers: a
    looser bar than the centroids' learn_p, so a new value at volume becomes common."""
    assert m.evidence is not None
    cols, pooled = np.vstack(pending["columns"]), np.vstack(pending["pooled"])
    for j, pool in enumerate(m.pools):
        pool.calibrate(cols[normal, j], pooled[normal, j] <= bar, bar, m.rng)
    m.evidence.learn(values.take(np.flatnonzero(normal & inlier)), decay)
    if m.text is not None and values.text is not None:
        t = np.vstack(pending["text"])
        width = len(m.text.names)
        m.text.calibrate(t[normal, :width], t[normal, width:-1], t[normal, -1], bar, m.rng)
