"""Descriptive drift gauges over a sliding window of recent events.

These do not decide anything (the martingale does); they tell an operator what changed:
how far the window's mass moved, which clusters grew or shrank, and the outlier rate.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def js_divergence(p: Floats, q: Floats) -> float:
    """Jensen-Shannon divergence in bits, in [0, 1]; 0 for identical distributions.

    >>> js_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    0.0
    >>> js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    """
    p = p / p.sum() if p.sum() > 0 else p
    q = q / q.sum() if q.sum() > 0 else q
    m = 0.5 * (p + q)

    def kl(a: Floats, b: Floats) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return round(0.5 * kl(p, m) + 0.5 * kl(q, m), 12)


class WindowGauges:
    """Ring buffers of the last `window` events' nearest centroid, outlier flag and id."""

    def __init__(self, window: int, examples: int = 5) -> None:
        self.window = window
        self.centroids: deque[int] = deque(maxlen=window)
        self.flags: deque[bool] = deque(maxlen=window)
        self.recent_ids: deque[str] = deque(maxlen=examples)

    def update(self, centroids: list[int], outliers: list[bool], ids: list[str]) -> None:
        self.centroids.extend(centroids)
        self.flags.extend(outliers)
        self.recent_ids.extend(ids)

    def occupancy(self, k: int) -> Floats:
        counts = np.bincount(np.fromiter(self.centroids, np.int64), minlength=k)[:k]
        total = counts.sum()
        return counts / total if total else np.zeros(k)

    def outlier_rate(self) -> float:
        return float(np.mean(self.flags)) if self.flags else 0.0

    def snapshot(self, reference_share: Floats, means: npt.NDArray[np.float32],
                 top: int = 3) -> dict[str, Any]:
        """Centroid shift (1 - cosine of window vs reference mass centre), occupancy
        divergence, outlier rate, and the clusters that grew or shrank most."""
        k = len(reference_share)
        occ = self.occupancy(k)
        if not self.centroids or k == 0:
            return {"centroid_shift": 0.0, "occupancy_divergence": 0.0,
                    "outlier_rate": self.outlier_rate(), "grown": [], "shrunk": []}
        m = means.astype(np.float64)
        a, b = occ @ m, reference_share @ m
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        shift = 1.0 - float(a @ b) / denom if denom > 0 else 0.0
        delta = occ - reference_share
        order = np.argsort(delta)
        return {
            "centroid_shift": max(0.0, shift),
            "occupancy_divergence": js_divergence(occ, reference_share),
            "outlier_rate": self.outlier_rate(),
            "grown": [int(j) for j in order[::-1][:top] if delta[j] > 0],
            "shrunk": [int(j) for j in order[:top] if delta[j] < 0],
        }

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "centroids": list(self.centroids),
                "flags": list(self.flags), "recent_ids": list(self.recent_ids),
                "examples": self.recent_ids.maxlen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window = int(state["window"])
        self.centroids = deque((int(c) for c in state["centroids"]), maxlen=self.window)
        self.flags = deque((bool(f) for f in state["flags"]), maxlen=self.window)
        self.recent_ids = deque(state["recent_ids"], maxlen=int(state["examples"]))
