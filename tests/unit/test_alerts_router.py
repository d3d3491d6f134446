"""Grouping, dedup, repeat interval, rate limit and storms, on an injected clock."""

from __future__ import annotations

import json
import random

import pytest
from pydantic import ValidationError

from monitor.config import AlertsConfig, ReceiverConfig
from monitor.events import Alert, Score
from monitor.sinks.alerts.explain import explain_outlier
from monitor.sinks.alerts.ratelimit import TokenBucket
from monitor.sinks.alerts.router import AlertRouter, Notification, fingerprint


def make(rate: int = 100, window: float = 60.0, **kw: object) -> AlertRouter:
    cfg = AlertsConfig(**{"group_wait_seconds": 1.0, "group_interval_seconds": 5.0, **kw})
    return AlertRouter("r", cfg, TokenBucket(rate, window))


def drift(status: str, segment: str = "s1", t: float = 0.0) -> Alert:
    return Alert(
        "drift",
        status,
        {"segment": segment, "detector": "sr"},
        {"summary": "drift"},
        {"statistic": 123.0},
        starts_at=t,
        ends_at=t if status == "resolved" else None,
    )


def outlier(i: int, segment: str = "s1", risk: float = 0.0) -> Alert:
    """Built by the observer's own builder, so tests see the shape production sends."""
    s = Score(f"e{i}", segment, 3.0, 1e-4, True, 0.0, 0.2, risk, 0)
    return explain_outlier(
        "tx",
        s,
        0.0,
        exemplars=["r1", "r2"],
        features=[{"field": "amount", "z": 9.5, "value": 50_000.0}],
        fields={"merchant": "m", "pan": "4111"},
    )


def test_fingerprint_depends_on_kind_and_labels_only() -> None:
    a = drift("firing")
    assert fingerprint(a) == fingerprint(drift("resolved"))
    assert fingerprint(a) != fingerprint(drift("firing", segment="s2"))
    assert fingerprint(a) != fingerprint(Alert("operational", "firing", a.labels))


def test_group_waits_then_sends_once_and_dedups_repeats() -> None:
    r = make()
    r.submit(drift("firing"), 0.0)
    assert r.due(0.5) == []
    [note] = r.due(1.0)
    assert note.status == "firing" and note.sequence == 1
    assert note.group_labels == {"kind": "drift", "segment": "s1"}
    for t in (2.0, 3.0, 10.0):
        r.submit(drift("firing"), t)  # the detector keeps alarming: same fingerprint
    assert r.due(20.0) == []  # no news: deduplicated


def test_resolve_follows_firing_and_is_sent_once() -> None:
    r = make()
    r.submit(drift("firing"), 0.0)
    r.due(1.0)
    r.submit(drift("resolved", t=2.0), 2.0)
    assert r.due(3.0) == []  # group_interval not yet over
    [note] = r.due(6.0)
    assert note.status == "resolved"
    assert note.alerts[0]["ends_at"] == 2.0
    assert r.due(100.0) == [] and r.groups == {}


def test_fire_and_resolve_within_group_wait_says_nothing() -> None:
    r = make()
    r.submit(drift("firing"), 0.0)
    r.submit(drift("resolved"), 0.5)
    assert r.due(2.0) == []


def test_repeat_interval_resends_still_firing() -> None:
    r = make(repeat_interval_seconds=100.0)
    r.submit(drift("firing"), 0.0)
    r.due(1.0)
    assert r.due(50.0) == []
    [note] = r.due(101.0)
    assert note.alerts[0]["repeat"] is True and note.alerts[0]["status"] == "firing"


def test_groups_are_independent() -> None:
    r = make()
    r.submit(drift("firing", "a"), 0.0)
    r.submit(drift("firing", "b"), 0.0)
    notes = r.due(1.0)
    assert sorted(n.group_labels["segment"] for n in notes) == ["a", "b"]


def storm(r: AlertRouter, n: int, seconds: float, rng: random.Random) -> list[Notification]:
    notes: list[Notification] = []
    for i in range(n):
        t = seconds * i / n
        r.submit(outlier(i, risk=rng.random()), t)
        notes += r.due(t)
    return notes


def test_storm_is_bounded_by_rate_limit_and_counts_add_up() -> None:
    r = make(rate=5, window=60.0, group_interval_seconds=0.5, max_examples=3)
    notes = storm(r, 10_000, 10.0, random.Random(0))
    assert len(notes) == 5  # the rate limit, not one per event nor per interval
    t = 10.0
    while any(g.alerts for g in r.groups.values()):  # the bucket refills at 5 per minute
        t += 1.0
        notes += r.due(t)
        assert t < 200
    assert sum(n.count for n in notes) == 10_000
    for n in notes:
        risks = [e["risk"] for e in n.alerts[0]["examples"]]
        assert len(risks) <= 3 and risks == sorted(risks, reverse=True)


def test_storm_unlimited_still_one_per_group_interval() -> None:
    r = make(rate=1000, group_interval_seconds=2.0)
    notes = storm(r, 10_000, 10.0, random.Random(1))
    assert len(notes) <= 1 + 10.0 / 2.0
    notes += r.due(20.0)
    assert sum(n.count for n in notes) == 10_000


def test_worst_examples_are_the_highest_risk_and_redacted() -> None:
    r = make(max_examples=2, allow_fields=("merchant",))
    for i, risk in enumerate([0.1, 0.9, 0.5, 0.7]):
        r.submit(outlier(i, risk=risk), 0.0)
    [note] = r.due(1.0)
    [alert] = note.alerts
    assert alert["count"] == 4
    assert [e["event_id"] for e in alert["examples"]] == ["e1", "e3"]
    assert alert["examples"][0]["fields"] == {"merchant": "m"}
    assert alert["details"]["fields"] == {"merchant": "m"}
    assert alert["details"]["deviating_features"] == [{"field": "amount", "z": 9.5}]


def test_allow_listed_feature_keeps_its_value() -> None:
    r = make(allow_fields=("amount",))
    r.submit(outlier(0), 0.0)
    [note] = r.due(1.0)
    [feature] = note.alerts[0]["details"]["deviating_features"]
    assert feature == {"field": "amount", "z": 9.5, "value": 50_000.0}


def test_no_fields_by_default() -> None:
    r = make()
    r.submit(outlier(0), 0.0)
    [note] = r.due(1.0)
    details = note.alerts[0]["details"]
    assert details["fields"] == {}
    assert details["deviating_features"] == [{"field": "amount", "z": 9.5}]  # no value
    assert "50000" not in json.dumps(note.alerts) and "4111" not in json.dumps(note.alerts)


def test_fingerprint_overflow_is_counted_not_lost() -> None:
    r = make(max_alerts_per_group=2)
    for i in range(5):
        r.submit(Alert("operational", "firing", {"segment": "s", "check": f"c{i}"}), 0.0)
    [note] = r.due(1.0)
    assert len(note.alerts) == 2 and note.truncated_count == 3 and note.count == 5


def test_group_cap_drops_and_counts() -> None:
    r = make(max_groups=1)
    r.submit(drift("firing", "a"), 0.0)
    r.submit(drift("firing", "b"), 0.0)
    assert r.dropped == 1


def test_state_round_trip_changes_nothing() -> None:
    a = make(rate=2)
    for i in range(7):
        a.submit(outlier(i, risk=i / 10), 0.0)
    a.submit(drift("firing"), 0.0)
    b = make(rate=2)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert json.dumps(a.state_dict()) == json.dumps(b.state_dict())
    da, db = a.due(5.0), b.due(5.0)
    assert [(n.group_key, n.count, n.alerts) for n in da] == [
        (n.group_key, n.count, n.alerts) for n in db
    ]


def test_config_rejects_unknown_keys_and_duplicate_receivers() -> None:
    with pytest.raises(ValidationError):
        AlertsConfig(group_wait=3)  # type: ignore[call-arg]
    rc = ReceiverConfig(name="a", url="http://127.0.0.1:1/")
    with pytest.raises(ValidationError, match="unique"):
        AlertsConfig(receivers=(rc, rc))
    with pytest.raises(ValidationError):
        ReceiverConfig(name="a", url="ftp://x")


def test_restored_examples_keep_ranking_with_equal_risks() -> None:
    a = make(max_examples=2)
    for i in range(3):
        a.submit(outlier(i, risk=0.5), 0.0)
    b = make(max_examples=2)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for i in range(3, 6):
        b.submit(outlier(i, risk=0.5), 0.1)  # equal ranks must not compare the dicts
    [note] = b.due(1.0)
    assert note.count == 6 and len(note.alerts[0]["examples"]) == 2
