"""EmbeddingCache: an LRU map from text to its embedding row, with hit/miss counters."""

from __future__ import annotations

import numpy as np

from monitor.embed.cache import EmbeddingCache


def _row(v: float) -> np.ndarray:
    return np.full(3, v, np.float32)


def test_get_returns_the_stored_row_and_counts_hits_and_misses() -> None:
    c = EmbeddingCache(4)
    c.put("a", _row(1.0))
    got = c.get("a")
    assert got is not None and got.tolist() == [1.0, 1.0, 1.0]
    assert c.get("b") is None
    assert c.get("a") is not None
    assert (c.hits, c.misses, c.evictions) == (2, 1, 0)
    assert len(c) == 1 and "a" in c and "b" not in c


def test_evicts_least_recently_used_where_get_and_put_both_refresh() -> None:
    c = EmbeddingCache(3)
    for k, v in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        c.put(k, _row(v))
    c.get("a")  # a is now the newest; b the oldest
    c.put("d", _row(4.0))
    assert "b" not in c and {"a", "c", "d"} <= {k for k in "abcd" if k in c}
    c.put("c", _row(30.0))  # overwriting refreshes c; a is now the oldest
    c.put("e", _row(5.0))
    assert "a" not in c and "c" in c and "d" in c and "e" in c
    got = c.get("c")
    assert got is not None and got[0] == 30.0
    assert c.evictions == 2 and len(c) == 3


def test_overwriting_a_key_within_capacity_evicts_nothing() -> None:
    c = EmbeddingCache(2)
    c.put("a", _row(1.0))
    c.put("a", _row(2.0))
    c.put("b", _row(3.0))
    assert len(c) == 2 and c.evictions == 0


def test_hit_ratio() -> None:
    c = EmbeddingCache(2)
    assert c.hit_ratio == 0.0  # no lookups yet: defined, not a division by zero
    c.put("a", _row(1.0))
    for key in ("a", "a", "a", "x"):
        c.get(key)
    assert c.hit_ratio == 0.75


def test_capacity_zero_stores_nothing_and_every_get_misses() -> None:
    c = EmbeddingCache(0)
    c.put("a", _row(1.0))
    assert len(c) == 0 and "a" not in c
    assert c.get("a") is None
    assert (c.hits, c.misses, c.evictions) == (0, 1, 0)
    assert c.hit_ratio == 0.0


def test_capacity_one_keeps_only_the_newest() -> None:
    c = EmbeddingCache(1)
    c.put("a", _row(1.0))
    c.put("b", _row(2.0))
    assert "a" not in c and "b" in c and c.evictions == 1
