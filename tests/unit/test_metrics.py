"""Metrics: names, bounded segment labels, scrape-time state, revoked partitions vanish."""

from __future__ import annotations

import re

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import DriftConfig, ScoreConfig
from monitor.events import Event
from monitor.score.engine import Engine
from monitor.sinks.metrics import Metrics, PartitionView, ProcessView


def _engine(segments: int, per_segment: int = 1, dim: int = 8) -> Engine:
    eng = Engine(ScoreConfig(max_segments=20_000, warmup=20, k=2), DriftConfig(), segmented=True)
    rng = np.random.default_rng(0)
    events = [Event(id=f"{s}-{i}", segment=f"seg-{s}") for s in range(segments)
              for i in range(per_segment)]
    x = rng.normal(size=(len(events), dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for i in range(0, len(events), 1000):
        eng.process(events[i : i + 1000], x[i : i + 1000])
    return eng


def _scrape(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_ten_thousand_segments_stay_within_the_label_cap() -> None:
    eng = _engine(10_000)
    views = ProcessView([PartitionView("tx", 0, eng, lag=3)])
    reg = CollectorRegistry()
    Metrics(reg, segment_cap=25, view=lambda: views)
    text = _scrape(reg)
    values = set(re.findall(r'segment="([^"]*)"', text))
    assert len(values) <= 25 and "other" in values
    total = sum(float(v) for v in re.findall(r'^monitor_segment_events_total\{[^}]*\} (\S+)$',
                                              text, re.M))
    assert total == 10_000  # nothing lost by folding into "other"


def test_busiest_segments_keep_their_names() -> None:
    eng = _engine(30, per_segment=2)
    extra = [Event(id=f"hot-{i}", segment="hot") for i in range(50)]
    x = np.eye(8, dtype=np.float32)[np.arange(50) % 8]
    eng.process(extra, x)
    reg = CollectorRegistry()
    Metrics(reg, segment_cap=5, view=lambda: ProcessView([PartitionView("tx", 1, eng)]))
    assert 'segment="hot"' in _scrape(reg)


# dimensionless gauges (scores, statistics, states, counts of one thing): no unit suffix,
# as in the README's catalogue; everything else names its unit
UNITLESS = {"monitor_active_segments", "monitor_alerts_pending", "monitor_centroid_shift",
            "monitor_drift_state", "monitor_drift_statistic", "monitor_drift_threshold",
            "monitor_reference_centroids", "monitor_reference_weight", "monitor_build",
            "monitor_p_value_floor"}  # a probability, named by the issue that asked for it
UNITS = ("_seconds", "_bytes", "_ratio", "_bits", "_records")


def test_names_follow_the_convention_and_revoked_partitions_vanish() -> None:
    eng = _engine(3, per_segment=30)
    parts = [PartitionView("tx", 0, eng, lag=5), PartitionView("tx", 1, eng, lag=0)]
    reg = CollectorRegistry()
    m = Metrics(reg, view=lambda: ProcessView(list(parts), cache_hit_ratio=0.5))
    m.consumed.labels("tx", "0").inc(10)
    m.consumed.labels("tx", "1").inc(3)
    text = _scrape(reg)
    families = {f.name: f.type for f in reg.collect()}
    assert len(families) >= 30, families
    for name, kind in families.items():
        assert name.startswith("monitor_"), name
        if kind == "counter":  # the client strips `_total` from a counter family's name
            assert f"# TYPE {name}_total counter" in text or f"{name}_total" in text, name
        elif kind == "histogram":
            assert name.endswith(("_seconds", "_score", "_value")), name
        elif name not in UNITLESS:
            assert name.endswith(UNITS), f"{name}: {kind} without a unit suffix"
    assert 'monitor_consumer_lag_records{partition="0",topic="tx"} 5.0' in text
    assert "monitor_embedding_cache_hit_ratio 0.5" in text
    parts.pop()  # partition 1 revoked
    m.forget("tx", 1)
    text = _scrape(reg)
    assert 'partition="1"' not in text and 'partition="0"' in text


def test_batch_histogram_exposes_what_a_histogram_would() -> None:
    from prometheus_client import Histogram

    from monitor.sinks.histogram import BatchHistogram

    buckets = (0.01, 0.1, 0.5, 1.0, 2.5)
    values = np.random.default_rng(3).exponential(0.4, size=1_000)
    values[:5] = buckets[:5]  # values on a bound belong to that bucket (le)
    ref_reg, batch_reg = CollectorRegistry(), CollectorRegistry()
    ref = Histogram("h_seconds", "Doc.", ["topic"], buckets=buckets, registry=ref_reg)
    batched = BatchHistogram("h_seconds", "Doc.", ["topic"], buckets, batch_reg)
    for v in values:
        ref.labels("t").observe(float(v))
    for part in np.array_split(values, 7):
        batched.observe_many(("t",), part.tolist())
    batched.observe_many(("t",), [])

    def series(reg: CollectorRegistry) -> dict[str, float]:
        out = {}
        for line in _scrape(reg).splitlines():
            if line.startswith("h_seconds") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    want, got = series(ref_reg), series(batch_reg)
    assert want.keys() == got.keys() and len(want) == len(buckets) + 3
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name  # sums: summation order
    batched.remove(("t",))
    assert series(batch_reg) == {}


def test_a_thousand_sixty_kilobyte_segment_names_keep_the_scrape_small() -> None:
    """Label values are bounded in length too (issue 15): 1,000 segments named with 60 KB
    each keep /metrics under 200 KB, each label at most 64 characters, the same long name
    always the same label, and two names sharing a 60 KB prefix apart."""
    from monitor.sinks.labels import bounded_label

    eng = Engine(ScoreConfig(max_segments=2_000, warmup=20, k=2), DriftConfig(), segmented=True)
    names = [f"{i:04d}" + "z" * 60_000 for i in range(999)] + ["z" * 60_000 + "tail"]
    rng = np.random.default_rng(1)
    events = [Event(id=str(i), segment=n) for i, n in enumerate(names * 2)]
    x = rng.normal(size=(len(events), 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    eng.process(events, x)
    reg = CollectorRegistry()
    Metrics(reg, view=lambda: ProcessView([PartitionView("tx", 0, eng)]))  # default cap 20
    text = _scrape(reg)
    values = set(re.findall(r'segment="([^"]*)"', text))
    print(f"/metrics with 1,000 segments of 60 KB names: {len(text):,} bytes")
    assert len(text) < 200_000 and len(values) == 20 and "other" in values
    assert max(map(len, values)) <= 64
    assert {bounded_label(n) for n in names} >= values - {"other"}
    assert bounded_label(names[0]) == bounded_label("0000" + "z" * 60_000)
    assert bounded_label("z" * 60_000 + "tail") != bounded_label("z" * 60_000 + "tale")
