"""Known-fraud prototypes: what confirmed fraud looked like, as a second score.

Organised fraud often forms its own dense cluster and is no outlier at all; only
similarity to confirmed cases finds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


class FraudPrototypes:
    """Up to `capacity` unit vectors; past that, a new case merges into its nearest.

    >>> p = FraudPrototypes(2)
    >>> p.similarity(np.eye(2, dtype=np.float32)).tolist()
    [0.0, 0.0]
    >>> p.add(np.array([[1.0, 0.0]], np.float32))
    >>> p.similarity(np.eye(2, dtype=np.float32)).tolist()
    [1.0, 0.0]
    """

    def __init__(self, capacity: int, dim: int = 0) -> None:
        self.capacity = capacity
        self.vectors = np.zeros((0, dim), np.float32)
        self.counts = np.zeros(0, np.float64)

    def __len__(self) -> int:
        return len(self.vectors)

    def add(self, x: npt.NDArray[np.float32]) -> None:
        if self.capacity == 0:
            return
        for row in np.asarray(x, np.float32):
            if self.vectors.shape[1] != row.shape[0]:
                self.vectors = np.zeros((0, row.shape[0]), np.float32)
            if len(self.vectors) < self.capacity:
                self.vectors = np.vstack([self.vectors, row[None]])
                self.counts = np.append(self.counts, 1.0)
                continue
            j = int(np.argmax(self.vectors @ row))
            self.counts[j] += 1
            merged = self.vectors[j] + (row - self.vectors[j]) / self.counts[j]
            self.vectors[j] = merged / max(float(np.linalg.norm(merged)), 1e-12)

    def similarity(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Highest cosine similarity to any prototype; 0 when there are none."""
        if len(self.vectors) == 0:
            return np.zeros(len(x))
        idx = np.argmax(x @ self.vectors.T, axis=1)
        out: npt.NDArray[np.float64] = np.einsum("ij,ij->i", x, self.vectors[idx]).astype(
            np.float64)  # row by row: independent of the batch shape (see reference.py)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "vectors": self.vectors.copy(),
                "counts": self.counts.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self.vectors = np.array(state["vectors"], np.float32)
        self.counts = np.array(state["counts"], np.float64)
