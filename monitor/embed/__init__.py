"""Encoders turn events into L2-normalised float32 rows (text, tabular, composite)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from monitor.events import Event

Matrix = npt.NDArray[np.float32]
Fields = npt.NDArray[np.float32]  # (events, text fields, dim): one embedding per field


class Encoder(Protocol):
    """Maps a batch of events to an (n, dim) float32 matrix whose rows have unit norm."""

    @property
    def dim(self) -> int: ...

    def encode(self, events: Sequence[Event]) -> Matrix: ...


class TextModel(Protocol):
    """Embeds raw strings; the sentence-transformers model or a fake in unit tests."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Matrix: ...


def l2_normalise(x: Matrix) -> Matrix:
    """Rows scaled to unit length; all-zero rows stay zero.

    >>> l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)
