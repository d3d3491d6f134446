import numpy as np

from monitor.config import DriftConfig, ScoreConfig
from monitor.embed import l2_normalise
from monitor.score.calibration import CalibrationReservoir
from monitor.score.reference import CentroidReference
from monitor.score.segment import SegmentModel


def _blobs(rng: np.random.Generator, n: int, centres: np.ndarray, spread: float) -> np.ndarray:
    pick = rng.integers(len(centres), size=n)
    return l2_normalise((centres[pick] + rng.normal(0, spread, (n, centres.shape[1])))
                        .astype(np.float32))


def _outlier_rate(model: SegmentModel, x: np.ndarray, after: int = 0) -> float:
    """Share of rows flagged, streaming `x` in blocks of 16, past warm-up and row `after`."""
    flags: list[bool] = []
    for i in range(0, len(x), 16):
        res = model.process(x[i : i + 16], [str(j) for j in range(i, i + 16)],
                            [None] * 16, [None] * 16)
        if not res.warming_up and i >= after:
            flags.extend(res.outlier)
    return float(np.mean(flags))


def test_reservoir_matches_brute_force_p_values() -> None:
    rng = np.random.default_rng(1)
    res = CalibrationReservoir(50)
    stream = rng.random(120)
    res.add(stream)
    window = stream[-50:]
    s = rng.random(20)
    brute = [(1 + np.sum(window >= v)) / 51 for v in s]
    assert np.allclose(res.p_values(s), brute)


def test_false_positive_rate_is_about_alpha_without_drift() -> None:
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 1, (6, 16))
    cfg = ScoreConfig(alpha=0.05, warmup=400, reservoir=1000, k=6)
    model = SegmentModel(cfg, DriftConfig(), threshold=1e9, seed=0)
    x = _blobs(rng, 6400, centres, 0.3)
    rate = _outlier_rate(model, x)
    assert 0.03 < rate < 0.07, rate


def test_far_points_get_small_p_values_and_do_not_poison_the_reference() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (4, 16))
    model = SegmentModel(ScoreConfig(alpha=0.01, warmup=200, k=4), DriftConfig(), 1e9, 0)
    normal = _blobs(rng, 400, centres, 0.2)
    for i in range(0, 400, 16):
        model.process(normal[i : i + 16], ["n"] * 16, [None] * 16, [None] * 16)
    assert model.reference is not None
    before = model.reference.means.copy()
    far = l2_normalise(rng.normal(0, 1, (16, 16)).astype(np.float32) * 5)
    res = model.process(far, ["f"] * 16, [None] * 16, [None] * 16)
    assert np.mean(res.outlier) > 0.8
    assert np.allclose(model.reference.means[0], before[0])


def test_known_fraud_builds_prototypes_and_similarity() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 1, (4, 16))
    model = SegmentModel(ScoreConfig(warmup=200, k=4, learn_block=16), DriftConfig(), 1e9, 0)
    x = _blobs(rng, 224, centres, 0.2)
    for i in range(0, 224, 16):
        model.process(x[i : i + 16], ["n"] * 16, [None] * 16, [None] * 16)
    ring = l2_normalise(np.tile(rng.normal(0, 1, (1, 16)), (16, 1)).astype(np.float32))
    model.process(ring, ["r"] * 16, [True] * 16, [None] * 16)
    res = model.process(ring, ["r2"] * 16, [None] * 16, [None] * 16)
    assert len(model.fraud) > 0
    assert min(res.fraud_similarity) > 0.99
    assert min(res.risk) > 0.99


def test_reference_learning_moves_towards_members_and_decays() -> None:
    means = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    ref = CentroidReference(means, np.array([1.0, 1.0]), np.array([0.1, 0.1]))
    x = np.array([[0.6, 0.8]], np.float32)
    idx, dist = ref.nearest(x)
    ref.learn(x, idx, dist, decay=0.5)
    assert idx[0] == 1
    assert np.allclose(ref.weights, [0.5, 1.5])
    assert ref.means[1, 0] > 0.0


def test_no_threshold_ratchet_over_many_reservoir_turnovers() -> None:
    """20 turnovers of a 500-score reservoir on a stationary stream keep the rate ~alpha."""
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 1, (5, 16))
    cfg = ScoreConfig(alpha=0.01, warmup=400, reservoir=500, k=5)
    model = SegmentModel(cfg, DriftConfig(), threshold=1e12, seed=0)
    x = _blobs(rng, 10_400, centres, 0.3)
    rate = _outlier_rate(model, x, after=2_000)
    assert 0.005 < rate < 0.02, rate


def test_sorted_window_matches_a_plain_sorted_tail() -> None:
    from monitor.score.calibration import SortedWindow

    rng = np.random.default_rng(9)
    w = SortedWindow(37)
    stream: list[float] = []
    for size in [1, 5, 40, 3, 37, 0, 12, 100, 2]:
        vals = np.round(rng.random(size), 1)  # many ties
        w.add(vals)
        stream.extend(vals.tolist())
        assert w.sorted.tolist() == sorted(stream[-37:])


def test_trimmed_fit_keeps_every_cluster_and_pulls_it_to_its_core() -> None:
    rng = np.random.default_rng(4)
    # one tight cluster and one spread-out one: a single global cut would empty the latter
    tight = rng.normal([1, 0, 0, 0], 0.02, size=(60, 4))
    loose = rng.normal([0, 1, 0, 0], 0.4, size=(60, 4))
    x = np.vstack([tight, loose]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    whole = CentroidReference.fit(x, 2, seed=0)
    trimmed = CentroidReference.fit(x, 2, seed=0, trim=0.2)
    assert (trimmed.weights > 0).all() and trimmed.weights.sum() < whole.weights.sum()
    # each centroid sits closer to its kept members than the untrimmed one does
    assert (trimmed.scales <= whole.scales + 1e-9).all()
    assert (trimmed.scales < whole.scales).any()


def test_sorted_window_filling_up_within_one_add_drops_the_oldest() -> None:
    """A ring not yet full that overflows within one add: the values that leave are the
    oldest live ones, not the empty slots written first (found by the margins pool)."""
    from monitor.score.calibration import SortedWindow

    w = SortedWindow(50)
    stream = list(np.random.default_rng(3).random(70) + 1.0)  # distinct, never 0
    w.add(np.array(stream[:45]))
    w.add(np.array(stream[45:]))
    assert w.sorted.tolist() == sorted(stream[-50:])
