"""Where the explanations' examples come from: drift examples from the clusters that grew,
exemplar events from a bounded memory of allow-listed fields, and gauges state that still
loads from snapshots written before the examples changed."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from monitor.decode import decode_record
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.score.drift.gauges import RECENT, WindowGauges
from monitor.sinks.alerts.explain import RecentFields
from monitor.state.codec import decode_state, encode_state
from tests.unit.test_observer_alerts import config, record


def test_drift_examples_are_the_newest_events_of_grown_clusters() -> None:
    g = WindowGauges(window=100, examples=3)
    g.update([0] * 50, [False] * 50, [f"old-{i}" for i in range(50)])
    g.update([2, 0, 2, 0, 0], [False] * 5, ["n0", "x1", "n2", "x3", "x4"])
    snap = g.snapshot(np.array([1.0, 0.0, 0.0]), np.eye(3, dtype=np.float32))
    assert snap["grown"] == [2]
    assert g.example_ids(snap["grown"]) == ["n2", "n0"]  # only grown ones, newest first
    assert g.example_ids([]) == ["x4", "x3", "n2"]  # nothing grew: the newest
    g.update([0] * RECENT, [False] * RECENT, [f"late-{i}" for i in range(RECENT)])
    assert g.example_ids([2]) == [f"late-{RECENT - 1 - i}" for i in range(3)]  # aged out


def _old_layout(state: dict[str, Any]) -> dict[str, Any]:
    """A gauges state as written before (id, centroid) pairs: the newest 5 ids only."""
    return {"window": state["window"], "centroids": state["centroids"],
            "flags": state["flags"], "recent_ids": state["recent_ids"][-5:], "examples": 5}


def test_gauges_load_the_old_layout() -> None:
    g = WindowGauges(window=10)
    g.update([0, 1, 2, 1, 2, 2], [False] * 6, list("abcdef"))
    old = WindowGauges(2)
    old.load_state_dict(decode_state(encode_state(_old_layout(g.state_dict()))))
    assert list(old.recent_ids) == list("bcdef") and list(old.recent_centroids) == [1, 2, 1, 2, 2]
    assert old.example_ids([2]) == ["f", "e", "c"] == g.example_ids([2])
    assert old.recent_ids.maxlen == RECENT and old.window == 10
    short = WindowGauges(2)  # fewer centroids than ids (window smaller than 5)
    short.load_state_dict({"window": 2, "centroids": [1, 2], "flags": [False, False],
                           "recent_ids": list("abc"), "examples": 5})
    assert list(short.recent_centroids) == [-1, 1, 2] and short.example_ids([1]) == ["b"]


def test_a_pipeline_snapshot_with_old_gauges_resumes_like_an_uninterrupted_run() -> None:
    cfg = config()
    rng = random.Random(0)
    events = [decode_record(record(rng, i), cfg.fields, "") for i in range(400)]
    events += [decode_record(record(rng, 1000 + i, log_mean=7.0, merchant="new"), cfg.fields,
                             "") for i in range(200)]
    whole, first = Pipeline.build(cfg), Pipeline.build(cfg)
    for p in (whole, first):
        p.process(events[:450])
    state = first.state_dict()
    for seg in state["engine"]["segments"].values():
        seg["gauges"] = _old_layout(seg["gauges"])
    resumed = Pipeline.build(cfg)
    resumed.load_state_dict(decode_state(encode_state(state)))
    a, b = whole.process(events[450:]), resumed.process(events[450:])
    assert a[0] == b[0] and [x.as_dict() for x in a[1]] == [x.as_dict() for x in b[1]]
    snap_a = whole.engine.segments["web"].gauge_snapshot()
    assert snap_a == resumed.engine.segments["web"].gauge_snapshot()
    assert snap_a["examples"] and all(e.startswith("tx-1") for e in snap_a["examples"])


def test_recent_fields_are_bounded_and_keyed_by_topic() -> None:
    mem = RecentFields(("merchant",), size=3)
    mem.remember("a", [Event(str(i), fields={"merchant": f"m{i}", "card": "4111"})
                       for i in range(3)])
    mem.describe("a", ["0"])  # a lookup keeps "0" fresh
    mem.remember("b", [Event("0", fields={"merchant": "other"})])
    assert len(mem) == 3
    assert mem.describe("a", ["0", "1", "2"]) == [
        {"event_id": "0", "fields": {"merchant": "m0"}}, {"event_id": "1"},
        {"event_id": "2", "fields": {"merchant": "m2"}}]
    assert mem.describe("b", ["0"]) == [{"event_id": "0", "fields": {"merchant": "other"}}]
    empty = RecentFields(())
    empty.remember("a", [Event("x", fields={"merchant": "m"})])
    assert len(empty) == 0 and empty.describe("a", ["x"]) == [{"event_id": "x"}]


def test_long_segment_names_become_bounded_labels_in_alerts() -> None:
    """The same bounded label as in /metrics (issue 15): alert fingerprints and group
    keys stay small whatever the data names a segment."""
    from monitor.events import Score
    from monitor.sinks.alerts.explain import drift_labels, drift_resolved, explain_outlier
    from monitor.sinks.labels import bounded_label

    name = "s" * 60_000
    s = Score("e1", name, 3.0, 1e-4, True, 0.0, 0.1, 0.9, 0)
    outlier = explain_outlier("tx", s, 0.0)
    assert outlier.labels["segment"] == bounded_label(name) and len(outlier.labels["segment"]) == 64
    assert len(outlier.annotations["summary"]) < 200
    assert drift_labels("tx", name, 3)["segment"] == bounded_label(name)
    assert drift_resolved("tx", name, 0.0, partition=3).labels == drift_labels("tx", name, 3)
