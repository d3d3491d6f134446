"""Descriptive drift gauges over a sliding window of recent events.

These do not decide anything (the martingale does); they tell an operator what changed:
how far the window's mass moved, which clusters grew or shrank, and the outlier rate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
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


RECENT = 64  # newest (id, centroid) pairs kept to pick drift examples from


class WindowGauges:
    """Ring buffers of the last `window` events' nearest centroid and outlier flag, plus
    the ids and centroids of the newest `recent` events (where drift examples come from)."""

    def __init__(self, window: int, examples: int = 5, recent: int = RECENT) -> None:
        self.window = window
        self.examples = examples
        self.centroids: deque[int] = deque(maxlen=window)
        self.flags: deque[bool] = deque(maxlen=window)
        self.recent_ids: deque[str] = deque(maxlen=max(recent, examples))
        self.recent_centroids: deque[int] = deque(maxlen=max(recent, examples))

    def update(self, centroids: Sequence[int], outliers: Sequence[bool],
               ids: Sequence[str]) -> None:
        self.centroids.extend(centroids)
        self.flags.extend(outliers)
        self.recent_ids.extend(ids)
        self.recent_centroids.extend(centroids)

    def example_ids(self, grown: list[int] | tuple[int, ...]) -> list[str]:
        """Up to `examples` of the newest events that fell into a cluster that grew, newest
        first; the newest events when none did (or nothing grew).

        >>> g = WindowGauges(window=10, examples=2)
        >>> g.update([0, 1, 0, 1, 0], [False] * 5, ["a", "b", "c", "d", "e"])
        >>> g.example_ids([1])
        ['d', 'b']
        >>> g.example_ids([7])
        ['e', 'd']
        """
        pairs = list(zip(self.recent_ids, self.recent_centroids, strict=True))[::-1]
        keep = set(grown)
        picked = [i for i, c in pairs if c in keep][: self.examples]
        return picked or [i for i, _ in pairs[: self.examples]]

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
                "recent_centroids": list(self.recent_centroids),
                "examples": self.examples, "recent": self.recent_ids.maxlen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Also reads the older layout (no ``recent_centroids``: ``recent_ids`` were only
        the newest ``examples`` ids, whose centroids are the tail of ``centroids``)."""
        self.window = int(state["window"])
        self.centroids = deque((int(c) for c in state["centroids"]), maxlen=self.window)
        self.flags = deque((bool(f) for f in state["flags"]), maxlen=self.window)
        self.examples = int(state["examples"])
        ids = [str(i) for i in state["recent_ids"]]
        if "recent_centroids" in state:
            cents = [int(c) for c in state["recent_centroids"]]
            size = int(state["recent"])
        else:
            tail = list(self.centroids)[-len(ids):] if ids else []
            cents = [-1] * (len(ids) - len(tail)) + tail
            size = max(RECENT, self.examples)
        self.recent_ids = deque(ids, maxlen=size)
        self.recent_centroids = deque(cents, maxlen=size)
