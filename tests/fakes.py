"""Fast stand-ins for unit tests only; the real model is exercised in tests marked slow."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from monitor.embed import l2_normalise


class HashingTextModel:
    """Bag of words hashed into `dim` signed buckets: similar texts get similar vectors."""

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self._dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = zlib.crc32(w.encode())
                out[i, h % self._dim] += 1.0 if (h >> 20) & 1 else -1.0
        return l2_normalise(out)
