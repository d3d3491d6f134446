"""The shipped JSON Schema of the generic webhook document matches what is really sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.config import AlertsConfig
from monitor.events import Alert, DriftAlarm, Score
from monitor.sinks.alerts import SCHEMA
from monitor.sinks.alerts.explain import drift_alert, explain_outlier
from monitor.sinks.alerts.operational import checkpoint_alert, dead_letter_alert
from monitor.sinks.alerts.payloads import document, json_schema, render
from monitor.sinks.alerts.ratelimit import TokenBucket
from monitor.sinks.alerts.router import AlertRouter

jsonschema = pytest.importorskip("jsonschema")

ALARM = DriftAlarm(index=405, segment="web", statistic=1.7e10, threshold=1e8,
                   detector="shiryaev_roberts", grown=(1,), shrunk=(0,), centroid_shift=3e-4,
                   occupancy_divergence=0.016, outlier_rate=0.12,
                   examples=("tx-1000", "tx-1001"))


def outlier(i: int, risk: float) -> Alert:
    s = Score(f"tx-{i}", "web", 0.18, 0.0056, True, 0.0, 0.82, risk, 0)
    return explain_outlier("payments", s, 1000.0, exemplars=["tx-3", "tx-9"],
                           features=[{"field": "amount", "z": 14.2, "value": 98765.4},
                                     {"field": "age", "z": 10.7, "value": 93.5}],
                           fields={"merchant": "zzz", "card": "4111"})


def documents(alerts: list[Alert], at: float, **kw: Any) -> list[dict[str, Any]]:
    cfg = AlertsConfig(group_wait_seconds=0.0, **kw)
    router = AlertRouter("ops", cfg, TokenBucket(100, 60.0))
    for a in alerts:
        router.submit(a, at)
    docs = [document(n, f"n{n.sequence}") for n in router.due(at)]
    return [json.loads(render(d, "webhook", at, cfg)) for d in docs]  # exactly what is sent


def validator() -> Any:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_names_the_version_it_validates() -> None:
    assert json_schema()["properties"]["schema"]["const"] == SCHEMA


@pytest.mark.parametrize("allow", [(), ("merchant", "amount")])
def test_outlier_document_is_valid(allow: tuple[str, ...]) -> None:
    [doc] = documents([outlier(i, i / 10) for i in range(4)], 1000.0, allow_fields=allow)
    validator().validate(doc)
    assert doc["alerts"][0]["examples"][0]["event_id"] == "tx-3"


def test_drift_documents_firing_and_resolved_are_valid() -> None:
    firing = drift_alert("payments", ALARM, 1000.0)
    [doc] = documents([firing], 1000.0)
    validator().validate(doc)
    assert doc["alerts"][0]["details"]["example_ids"] == ["tx-1000", "tx-1001"]
    resolved = Alert("drift", "resolved", dict(firing.labels), starts_at=1001.0, ends_at=1001.0)
    cfg = AlertsConfig(group_wait_seconds=0.0)
    router = AlertRouter("ops", cfg, TokenBucket(100, 60.0))
    router.submit(firing, 1000.0)
    router.due(1000.0)
    router.submit(resolved, 1001.0)
    [note] = router.due(1000.0 + cfg.group_interval_seconds)
    validator().validate(json.loads(render(document(note, "r"), "webhook", 0.0, cfg)))


def test_examples_with_allow_listed_fields_are_valid() -> None:
    s = Score("tx-1", "web", 0.18, 0.0056, True, 0.0, 0.82, 0.9, 0)
    alert = explain_outlier("payments", s, 1000.0, exemplars=["tx-3", "tx-9"],
                            exemplar_events=[{"event_id": "tx-3",
                                              "fields": {"merchant": "acme", "card": "4111"}},
                                             {"event_id": "tx-9"}])
    firing = drift_alert("payments", ALARM, 1000.0, partition=2,
                         examples=[{"event_id": "tx-1000", "fields": {"merchant": "new"}},
                                   {"event_id": "tx-1001"}])
    docs = documents([alert, firing], 1000.0, allow_fields=("merchant",))
    for doc in docs:
        validator().validate(doc)
    by_kind = {d["group_labels"]["kind"]: d["alerts"][0] for d in docs}
    assert by_kind["outlier"]["details"]["exemplar_events"] == [
        {"event_id": "tx-3", "fields": {"merchant": "acme"}}, {"event_id": "tx-9"}]  # redacted
    drift = by_kind["drift"]
    assert drift["labels"] == {"topic": "payments", "segment": "web", "partition": "2"}
    assert drift["details"]["example_events"][0] == {"event_id": "tx-1000",
                                                     "fields": {"merchant": "new"}}
    bad = {**alert.details, "exemplar_events": [{"fields": {}}]}  # an example needs its id
    [doc] = documents([Alert("outlier", "firing", alert.labels, details=bad)], 1000.0)
    assert not validator().is_valid(doc)


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_operational_documents_are_valid(status: str) -> None:
    facts = {"dead_letters": 7, "records": 500, "rate": 0.014, "threshold": 0.01,
             "window_seconds": 300.0}
    docs = documents([checkpoint_alert(status, 1000.0, 2),
                      dead_letter_alert("payments", status, 1000.0, facts)], 1000.0)
    for doc in docs:
        validator().validate(doc)
    details = [a["details"] for d in docs for a in d["alerts"]]
    assert {d["condition"] for d in details} == {"checkpoint_failed", "dead_letter_rate"}
    [bad] = documents([Alert("operational", "firing", {"condition": "x"},
                             details={"condition": "mystery"})], 1000.0)
    assert not validator().is_valid(bad)


def test_schema_rejects_what_v1_does_not_allow() -> None:
    [doc] = documents([outlier(1, 0.5)], 1000.0)
    check = validator()
    bad = [
        {**doc, "schema": "monitor.alerts/v2"},
        {**doc, "sequence": 0},
        {**doc, "created_at": "yesterday"},
        {**doc, "alerts": [{**doc["alerts"][0], "kind": "mystery"}]},
        {**doc, "alerts": [{**doc["alerts"][0], "details": {"score": 1.0}}]},
        {k: v for k, v in doc.items() if k != "count"},
    ]
    for d in bad:
        assert not check.is_valid(d), d
