"""Detection quality from labelled replays: AUROC, AUPRC, FPR at 95% TPR, precision/recall.

Plain numpy so a report needs no extra dependency; ties are handled exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def _arrays(labels: Sequence[bool] | npt.NDArray[Any],
            scores: Sequence[float] | Floats) -> tuple[npt.NDArray[np.bool_], Floats]:
    y = np.asarray(labels, bool)
    s = np.asarray(scores, np.float64)
    if y.shape != s.shape:
        raise ValueError("labels and scores differ in length")
    return y, s


def auroc(labels: Sequence[bool] | npt.NDArray[Any], scores: Sequence[float] | Floats) -> float:
    """Probability a random positive outscores a random negative (ties count half).

    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auroc([0, 1], [0.5, 0.5])
    0.5
    """
    y, s = _arrays(labels, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auprc(labels: Sequence[bool] | npt.NDArray[Any], scores: Sequence[float] | Floats) -> float:
    """Average precision: mean of the precision at each positive, ranked by score.

    >>> round(auprc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y, s = _arrays(labels, scores)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    hits = np.cumsum(y[order])
    precision = hits / np.arange(1, len(y) + 1)
    return float(precision[y[order]].mean())


def fpr_at_tpr(labels: Sequence[bool] | npt.NDArray[Any], scores: Sequence[float] | Floats,
               tpr: float = 0.95) -> float:
    """False-positive rate at the lowest threshold that catches `tpr` of the positives.

    >>> fpr_at_tpr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], tpr=0.95)
    0.5
    """
    y, s = _arrays(labels, scores)
    pos = np.sort(s[y])[::-1]
    if len(pos) == 0 or (~y).sum() == 0:
        return float("nan")
    need = int(np.ceil(tpr * len(pos)))
    threshold = pos[need - 1]
    return float((s[~y] >= threshold).mean())


def precision_recall(labels: Sequence[bool] | npt.NDArray[Any],
                     flags: Sequence[bool] | npt.NDArray[Any]) -> tuple[float, float]:
    """Precision and recall of hard flags (e.g. p <= alpha).

    >>> precision_recall([1, 0, 1, 0], [1, 1, 0, 0])
    (0.5, 0.5)
    """
    y = np.asarray(labels, bool)
    f = np.asarray(flags, bool)
    tp = int((y & f).sum())
    precision = tp / int(f.sum()) if f.any() else float("nan")
    recall = tp / int(y.sum()) if y.any() else float("nan")
    return precision, recall


def quality_report(labels: Sequence[bool] | npt.NDArray[Any], scores: Sequence[float] | Floats,
                   flags: Sequence[bool] | npt.NDArray[Any]) -> dict[str, float]:
    """The labelled-replay metrics of `monitor replay`'s report."""
    precision, recall = precision_recall(labels, flags)
    return {
        "auroc": auroc(labels, scores),
        "auprc": auprc(labels, scores),
        "fpr_at_95_tpr": fpr_at_tpr(labels, scores, 0.95),
        "precision_at_alpha": precision,
        "recall_at_alpha": recall,
    }
