import numpy as np

from monitor.score.drift.gauges import WindowGauges, js_divergence
from monitor.score.drift.martingale import ShiryaevRoberts, threshold_for


def test_quiet_on_uniform_p_values() -> None:
    rng = np.random.default_rng(0)
    alarms = 0
    for seed in range(20):
        d = ShiryaevRoberts(threshold_for(0.01, 10_000))
        u = np.random.default_rng(seed).random(5_000)
        alarms += sum(d.update(float(p)) for p in u)
    assert alarms <= 1
    assert rng is not None


def test_fires_soon_after_a_step_change() -> None:
    rng = np.random.default_rng(1)
    d = ShiryaevRoberts(threshold_for(0.01, 10_000))
    for p in rng.random(2_000):
        assert not d.update(float(p))
    delays = [i for i, p in enumerate(rng.random(500) ** 4) if d.update(float(p))]
    assert delays and delays[0] < 100


def test_window_gauges_name_grown_and_shrunk_clusters() -> None:
    g = WindowGauges(window=100)
    for i in range(0, 100, 10):  # in batches, as the engine feeds it
        rows = range(i, i + 10)
        g.update([2 if j % 2 else 0 for j in rows], [j % 10 == 0 for j in rows],
                 [str(j) for j in rows])
    means = np.eye(3, dtype=np.float32)
    snap = g.snapshot(np.array([0.5, 0.5, 0.0]), means)
    assert snap["grown"] == [2] and snap["shrunk"] == [1]
    assert 0 < snap["occupancy_divergence"] <= 1
    assert snap["outlier_rate"] == 0.1
    assert js_divergence(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0


def test_update_many_is_the_recurrence_with_the_mixture_bet() -> None:
    from monitor.score.drift.martingale import mixture_bet

    rng = np.random.default_rng(8)
    ps = np.concatenate([rng.random(300), rng.random(60) ** 6, [0.0, 1.0, 1e-15]]).tolist()
    d = ShiryaevRoberts(threshold=500.0)
    crossings = d.update_many(ps)
    r, want = 0.0, []
    for i, p in enumerate(ps):
        r = (1.0 + r) * mixture_bet(p)
        if r >= 500.0:
            want.append((i, r))
            r = 0.0
    assert want and crossings == want
    assert d.statistic == r and d.alarms == len(want)
