import numpy as np

from monitor.drift.gauges import WindowGauges, js_divergence
from monitor.drift.martingale import ShiryaevRoberts, threshold_for


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
    for i in range(100):
        g.update(centroid=2 if i % 2 else 0, outlier=i % 10 == 0, event_id=str(i))
    means = np.eye(3, dtype=np.float32)
    snap = g.snapshot(np.array([0.5, 0.5, 0.0]), means)
    assert snap["grown"] == [2] and snap["shrunk"] == [1]
    assert 0 < snap["occupancy_divergence"] <= 1
    assert snap["outlier_rate"] == 0.1
    assert js_divergence(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0
