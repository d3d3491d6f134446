"""The state contract, run over every stateful class: a round trip through `state_dict()`,
the snapshot codec and `load_state_dict()` changes no future output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from monitor.config import DriftConfig, NumericField, ScoreConfig, parse_config
from monitor.decode import decode_json
from monitor.embed.fields import HOUR, FieldLayout, FieldValues
from monitor.embed.tabular import RobustScaler, TabularEncoder
from monitor.errors import DecodeError
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.score.calibration import CalibrationReservoir
from monitor.score.drift.gauges import WindowGauges
from monitor.score.drift.martingale import ShiryaevRoberts
from monitor.score.evidence import FieldEvidence
from monitor.score.fraud import FraudPrototypes
from monitor.score.reference import CentroidReference
from monitor.score.segment import SegmentModel
from monitor.state.codec import decode_state, encode_state
from monitor.tools.synthetic import DEMO_CONFIG, generate
from tests.fakes import HashingTextModel

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(64, 8)) / 3).astype(np.float32)
X /= np.linalg.norm(X, axis=1, keepdims=True)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, np.asarray(b), equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        return bool(np.isnan(b))
    return bool(a == b)


def _segment() -> SegmentModel:
    m = SegmentModel(ScoreConfig(warmup=20, k=4), DriftConfig(), 1e6, 3)
    m.process(X[:32], [str(i) for i in range(32)], [None] * 32, [None] * 32)
    return m


def _evidence() -> FieldEvidence:
    layout = FieldLayout(("amount", "age"), ("shop", "country"), (0, 1, HOUR), True, 32)
    return FieldEvidence(layout, 20.0)


def _values(seed: int, n: int) -> FieldValues:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 2)) * [1.0, 10.0] + [3.0, 40.0]
    num[rng.random(n) < 0.05, 0] = np.nan  # missing values too
    return FieldValues(num, rng.integers(32, size=(n, 2)),
                       1.7e9 + np.arange(n) * 3_000.0 * (seed + 1))


# (build a used instance, build an empty one, use it: returns comparable output)
CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[Any], Any]]] = {
    "RobustScaler": (
        lambda: (s := RobustScaler(2, 50), s.transform_learn(RNG.normal(size=(70, 2))))[0],
        lambda: RobustScaler(2, 50),
        lambda s: s.transform_learn(np.ones((5, 2))),
    ),
    "TabularEncoder": (
        lambda: (e := TabularEncoder([NumericField(name="a")], ["c"], 4, True, 64),
                 e.encode([Event(id=str(i), numeric={"a": i}, categorical={"c": "x"},
                                 timestamp=1e9 + i) for i in range(40)]))[0],
        lambda: TabularEncoder([NumericField(name="a")], ["c"], 4, True, 64),
        lambda e: e.encode([Event(id="z", numeric={"a": 3.0}, categorical={"c": "y"})]),
    ),
    "CentroidReference": (
        lambda: CentroidReference.fit(X, 4, 0, ids=[str(i) for i in range(64)]),
        lambda: CentroidReference(np.zeros((1, 8), np.float32), np.ones(1), np.ones(1)),
        lambda r: (r.nearest(X[:5]), r.learn(X[:5], *r.nearest(X[:5]), 0.9), r.means)[2],
    ),
    "CalibrationReservoir": (
        lambda: (r := CalibrationReservoir(10), r.add(RNG.random(25)))[0],
        lambda: CalibrationReservoir(3),
        lambda r: (r.add(np.array([0.5])), r.p_values(np.array([0.1, 0.9])))[1],
    ),
    "FraudPrototypes": (
        lambda: (p := FraudPrototypes(3), p.add(X[:5]))[0],
        lambda: FraudPrototypes(1),
        lambda p: (p.add(X[10:12]), p.similarity(X[:4]))[1],
    ),
    "ShiryaevRoberts": (
        lambda: (d := ShiryaevRoberts(100.0), [d.update(0.2) for _ in range(5)])[0],
        lambda: ShiryaevRoberts(1.0),
        lambda d: [d.update(0.01) for _ in range(5)],
    ),
    "WindowGauges": (
        lambda: (g := WindowGauges(5), g.update([i % 3 for i in range(9)],
                                                [i % 4 == 0 for i in range(9)],
                                                [str(i) for i in range(9)]))[0],
        lambda: WindowGauges(2),
        lambda g: g.snapshot(np.array([0.2, 0.3, 0.5]), np.eye(3, dtype=np.float32)),
    ),
    "FieldEvidence": (
        lambda: (f := _evidence(), f.fit(_values(0, 300)))[0],
        _evidence,
        lambda f: (f.learn(_values(1, 40), 0.9), f.numeric_z(_values(2, 9)),
                   f.count_p(_values(2, 9)))[1:],
    ),
    "SegmentModel": (
        _segment,
        lambda: SegmentModel(ScoreConfig(warmup=20, k=4), DriftConfig(), 1e6, 99),
        lambda m: m.process(X[32:48], ["n"] * 16, [None] * 16, [None] * 16),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_changes_no_future_output(name: str) -> None:
    build, empty, use = CASES[name]
    original = build()
    copy = empty()
    copy.load_state_dict(decode_state(encode_state(original.state_dict())))
    assert _equal(original.state_dict(), copy.state_dict())
    assert _equal(_as_tree(use(original)), _as_tree(use(copy)))
    assert _equal(original.state_dict(), copy.state_dict())


def _as_tree(x: Any) -> Any:
    if hasattr(x, "__slots__") and hasattr(x, "score"):
        return {k: getattr(x, k) for k in x.__slots__}
    return x


def _events(n: int, seed: int = 1) -> list[Event]:
    cfg = parse_config(DEMO_CONFIG).fields
    lines, _ = generate(n, seed=seed, malformed=0)
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(decode_json(line, cfg, str(i)))
        except DecodeError:
            continue
    return out


def _pipeline(text_evidence: str = "joint") -> Pipeline:
    tree = DEMO_CONFIG | {"score": DEMO_CONFIG["score"] | {"text_evidence": text_evidence}}
    return Pipeline.build(parse_config(tree), HashingTextModel())


TEXT_EVIDENCE = pytest.mark.parametrize("text_evidence", ["joint", "per_field"])


@TEXT_EVIDENCE
def test_pipeline_restored_mid_stream_matches_uninterrupted_run(text_evidence: str) -> None:
    events = _events(2_400)
    whole = _pipeline(text_evidence)
    full_scores = [s for i in range(0, len(events), 100) for s in whole.process(
        events[i : i + 100])[0]]
    first, second = _pipeline(text_evidence), _pipeline(text_evidence)
    part = [s for i in range(0, 1_300, 100) for s in first.process(events[i : i + 100])[0]]
    second.load_state_dict(decode_state(encode_state(first.state_dict())))
    part += [s for i in range(1_300, len(events), 100) for s in second.process(
        events[i : i + 100])[0]]
    assert part == full_scores
    assert _equal(whole.state_dict(), second.state_dict())


@TEXT_EVIDENCE
def test_results_do_not_depend_on_batch_boundaries(text_evidence: str) -> None:
    events = _events(1_500, seed=2)
    a, b = _pipeline(text_evidence), _pipeline(text_evidence)
    sa = [s for i in range(0, len(events), 256) for s in a.process(events[i : i + 256])[0]]
    sizes = [1, 7, 64, 3, 250, 31]
    sb, i, j = [], 0, 0
    while i < len(events):
        n = sizes[j % len(sizes)]
        sb += b.process(events[i : i + n])[0]
        i, j = i + n, j + 1
    assert sa == sb
    assert _equal(a.state_dict(), b.state_dict())


def _segmented_stream(n: int = 3_000) -> tuple[list[Event], np.ndarray]:
    """Six segments of unequal volume (staggered warm-ups), confirmed fraud in one, and a
    shift half way through another, so blocks, fits, prototypes and alarms all happen."""
    rng = np.random.default_rng(5)
    seg = rng.choice(6, size=n, p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    centres = rng.normal(size=(6 * 3, 16))
    x = centres[seg * 3 + rng.integers(3, size=n)] + rng.normal(size=(n, 16)) * 0.4
    shifted = (seg == 1) & (np.arange(n) > n // 2)
    x[shifted] += 3.0 * rng.normal(size=16)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    label = (seg == 2) & (rng.random(n) < 0.05)
    events = [Event(id=str(i), segment=f"s{s}", label=True if lab else None)
              for i, (s, lab) in enumerate(zip(seg.tolist(), label.tolist(), strict=True))]
    return events, x


def test_segmented_engine_does_not_depend_on_batch_boundaries() -> None:
    from monitor.score.engine import Engine

    events, x = _segmented_stream()
    cfg = ScoreConfig(warmup=60, k=4, learn_block=16)
    drift = DriftConfig(threshold=1e4, hysteresis=50)
    a, b = Engine(cfg, drift, segmented=True), Engine(cfg, drift, segmented=True)
    sa, aa = [], []
    for i in range(0, len(events), 256):
        s, al = a.process(events[i : i + 256], x[i : i + 256])
        sa += s
        aa += al
    sb, ab, i, j = [], [], 0, 0
    sizes = [1, 7, 64, 3, 250, 31, 900]
    while i < len(events):
        n = sizes[j % len(sizes)]
        s, al = b.process(events[i : i + n], x[i : i + n])
        sb += s
        ab += al
        i, j = i + n, j + 1
    assert sum(s.warming_up for s in sa) > 0 and sum(not s.warming_up for s in sa) > 2_000
    assert max(s.fraud_similarity for s in sa) > 0.9  # prototypes were learnt and used
    assert [al.segment for al in aa] and all(al.segment == "s1" for al in aa)
    assert sa == sb
    assert [al.as_dict() for al in aa] == [al.as_dict() for al in ab]
    assert _equal(a.state_dict(), b.state_dict())


def test_a_snapshot_of_another_format_is_refused_with_the_reason() -> None:
    import zlib

    import orjson

    from monitor.state.codec import MAGIC

    old = b"MON1" + zlib.compress(orjson.dumps({"a": 1}))
    assert old[:4] != MAGIC
    with pytest.raises(DecodeError, match="format MON1 is from another release"):
        decode_state(old)
    with pytest.raises(DecodeError, match="bad magic"):
        decode_state(b"{}")
    assert decode_state(encode_state({"a": 1})) == {"a": 1}
