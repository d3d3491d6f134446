"""An LRU cache of text embeddings, so a repeated text is never embedded twice."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt


class EmbeddingCache:
    """Bounded least-recently-used map from text to its embedding row.

    Keyed by the text itself: the same string in two fields embeds to the same vector, so
    merchant and category names that repeat across events cost one model call in total.

    >>> c = EmbeddingCache(2)
    >>> c.put("a", np.zeros(2, np.float32)); c.put("b", np.ones(2, np.float32))
    >>> c.get("a") is not None, c.get("zzz") is None
    (True, True)
    >>> c.put("c", np.ones(2, np.float32)); "b" in c
    False
    >>> c.hits, c.misses, c.evictions
    (1, 1, 1)
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, text: object) -> bool:
        return text in self._data

    def get(self, text: str) -> npt.NDArray[np.float32] | None:
        row = self._data.get(text)
        if row is None:
            self.misses += 1
            return None
        self._data.move_to_end(text)
        self.hits += 1
        return row

    def put(self, text: str, row: npt.NDArray[np.float32]) -> None:
        if self.capacity <= 0:
            return
        self._data[text] = row
        self._data.move_to_end(text)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)
            self.evictions += 1

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
