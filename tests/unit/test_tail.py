"""p-values below 1/(n+1) (issue 11 must-show 4): a far event reaches alpha with only 181
calibration scores, and the false-positive rate at alpha stays about alpha."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from monitor.config import DriftConfig, ScoreConfig
from monitor.events import Event
from monitor.score.engine import Engine
from monitor.score.tail import tail_fit, tail_p_values, threshold

DIM = 12


def _rows(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    x = centres[rng.integers(len(centres), size=n)] + 0.35 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _events(start: int, n: int) -> list[Event]:
    return [Event(id=str(start + i)) for i in range(n)]


def test_alpha_below_one_over_n_plus_one_is_reached_and_holds_its_rate(
        caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(4, DIM))
    # a reservoir as small as the reference's calibration: every flag comes from the tail
    engine = Engine(ScoreConfig(alpha=0.001, reservoir=181), DriftConfig(), segmented=False)
    with caplog.at_level(logging.INFO, logger="monitor.score.engine"):
        engine.fit_reference(_events(0, 904), _rows(rng, centres, 904))
    assert "181 calibration scores the reference gives" in caplog.text
    model = engine.segments["default"]
    assert len(model.reservoir) == 181 and model.reservoir.floor > 0.001
    far = -centres[:1] / np.linalg.norm(centres[0])  # opposite one cluster's direction
    probe = model.reservoir.p_values(np.array([1.0 - float(
        model.reference.nearest_similarity(far.astype(np.float32))[1][0])]))
    assert probe[0] <= 0.001, probe
    flagged = 0
    for start in range(0, 20_000, 500):
        scores, _ = engine.process(_events(10_000 + start, 500), _rows(rng, centres, 500))
        flagged += sum(s.outlier for s in scores)
    rate = flagged / 20_000
    print(f"false-positive rate at alpha 0.001 over 20,000 stationary events: {rate:.5f}")
    assert 0.0005 <= rate <= 0.002, rate


def test_the_tail_is_continuous_with_the_pool_and_never_rises() -> None:
    pool = np.sort(np.random.default_rng(0).exponential(1.0, 500))
    tail = tail_fit(pool)
    grid = np.linspace(0.0, pool[-1] + 10.0, 2_000)
    p = tail_p_values(grid, pool, tail)
    assert (np.diff(p) <= 1e-12).all() and p[-1] < 1e-4
    bar = threshold(0.0005, pool, tail)  # beyond the pool: the tail
    above, below = tail_p_values(np.array([bar + 1e-9, bar - 1e-3]), pool, tail)
    assert above <= 0.0005 < below, (bar, above, below)
    bar = threshold(0.01, pool, tail)  # within: a pool score, at most 4 at or above it
    assert tail_p_values(np.array([bar]), pool, tail)[0] <= 0.01 and (pool >= bar).sum() == 4
