"""score_chunks: several segments in one pass score exactly as each segment alone; risk_score
stays in [0, 1]."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from monitor.config import DriftConfig, ScoreConfig
from monitor.score.batch import risk_score, score_chunks, warming
from monitor.score.calibration import conformal_p_values
from monitor.score.segment import SegmentModel

DIM = 12


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _data(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, DIM))
    return _unit(centres[rng.integers(3, size=n)] + 0.3 * rng.normal(size=(n, DIM)))


def _model(seed: int, cfg: ScoreConfig, fraud: bool = False) -> SegmentModel:
    """Deterministic: the same arguments build the same model (and random stream)."""
    m = SegmentModel(cfg, DriftConfig(), threshold=1e3, seed=seed)
    x = _data(seed, 300)
    m.fit(x, [f"{seed}-{i}" for i in range(len(x))])
    if fraud:
        m.fraud.add(_data(seed + 100, 3))
    return m


def _rows(res) -> list[tuple]:
    cols = [f.name for f in dataclasses.fields(res) if isinstance(getattr(res, f.name), list)]
    return list(zip(*(getattr(res, c) for c in cols), strict=True))


@pytest.mark.parametrize("normalise", [False, True])
def test_two_segments_in_one_pass_score_like_each_alone(normalise: bool) -> None:
    cfg = ScoreConfig(k=4, alpha=0.05, normalise_by_scale=normalise)
    xa = np.vstack([_data(1, 20), _data(50, 5)])  # some rows far from segment 1
    xb = np.vstack([_data(2, 15), _data(3, 2)])
    fa = np.zeros(len(xa), bool)
    fb = np.zeros(len(xb), bool)
    fb[-1] = True

    alone = (_rows(score_chunks([_model(1, cfg)], xa, [0, len(xa)], fa))
             + _rows(score_chunks([_model(2, cfg, fraud=True)], xb, [0, len(xb)], fb)))
    together = score_chunks([_model(1, cfg), _model(2, cfg, fraud=True)], np.vstack([xa, xb]),
                            [0, len(xa), len(xa) + len(xb)], np.concatenate([fa, fb]))
    assert not together.warming_up
    assert _rows(together) == alone
    # the pass did see something: outliers among the far rows, fraud similarity in seg 2
    assert any(together.outlier[20:25]) and not any(together.fraud_similarity[: len(xa)])
    assert max(together.fraud_similarity[len(xa):]) > 0


def test_scored_values_follow_their_definitions() -> None:
    cfg = ScoreConfig(k=4, alpha=0.05)
    model, probe = _model(1, cfg), _model(1, cfg)
    x = np.vstack([_data(1, 30), _data(77, 10)])
    is_fraud = np.zeros(len(x), bool)
    is_fraud[3] = True
    res = score_chunks([model], x, [0, len(x)], is_fraud)
    p, score = np.array(res.p_value), np.array(res.score)
    cal = probe.reservoir.sorted
    inside = score <= cal[-1]  # beyond the largest calibration score the tail speaks
    np.testing.assert_allclose(p[inside], conformal_p_values(score[inside], cal))
    assert (~inside).any() and (p[~inside] <= 1.0 / (len(cal) + 1)).all()
    assert res.outlier == (p <= cfg.alpha).tolist()
    assert res.accept == ((p > max(cfg.alpha, cfg.learn_p)) & ~is_fraud).tolist()
    assert res.accept[3] is False
    np.testing.assert_allclose(res.normal_similarity, 1.0 - np.array(res.score))
    np.testing.assert_allclose(res.risk, 1.0 - p)  # no prototypes: outlier evidence only
    assert all(0.0 <= s <= 1.0 for s in res.smooth)
    assert all(0 <= c < 4 for c in res.centroid)


def test_the_random_stream_does_not_depend_on_the_batching() -> None:
    cfg = ScoreConfig(k=4)
    x = _data(1, 40)
    f = np.zeros(len(x), bool)
    whole = score_chunks([_model(1, cfg)], x, [0, 40], f).smooth
    m = _model(1, cfg)
    pieces = score_chunks([m], x[:13], [0, 13], f[:13]).smooth + score_chunks(
        [m], x[13:], [0, 27], f[13:]).smooth
    assert pieces == whole


def test_warming_rows_have_no_p_values_and_learn_all_but_fraud() -> None:
    m = SegmentModel(ScoreConfig(), DriftConfig(), threshold=1e3, seed=0)
    m.fraud.add(_data(5, 1))
    x = _data(5, 4)
    res = warming(m, x, np.array([False, True, False, False]))
    assert res.warming_up and res.p_value == [None] * 4 and res.centroid == [-1] * 4
    assert res.outlier == [False] * 4 and res.accept == [True, False, True, True]
    assert max(res.fraud_similarity) > 0


def test_risk_score_bounds_and_monotonicity() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    p, pf = rng.uniform(1e-4, 1.0, n), rng.uniform(1e-6, 1.0, n)
    with_fraud = risk_score(p, pf, (0.6, 0.4))
    without = risk_score(p, None)
    assert ((with_fraud >= 0) & (with_fraud <= 1)).all()
    np.testing.assert_array_equal(without, 1.0 - p)
    np.testing.assert_allclose(risk_score(p, pf, (1.0, 0.0)), without)  # no weight: no say
    closer = risk_score(p, pf / 10, (0.6, 0.4))
    assert (closer >= with_fraud).all() and (closer > with_fraud).any()
    assert risk_score(np.array([1.0]), np.array([1e-300]), (0.5, 0.5)).tolist() == [1.0]
