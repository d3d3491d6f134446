"""Generic v1 document, Slack message and Alertmanager body shapes."""

from __future__ import annotations

import json

from monitor.config import AlertsConfig
from monitor.events import Score
from monitor.sinks.alerts.explain import explain_outlier
from monitor.sinks.alerts.payloads import SCHEMA, alertmanager, document, render, slack
from monitor.sinks.alerts.router import Notification

CFG = AlertsConfig(repeat_interval_seconds=600.0, group_interval_seconds=30.0)


def alert(kind: str, status: str, ends: float | None = None) -> dict[str, object]:
    return {
        "fingerprint": "abc",
        "kind": kind,
        "status": status,
        "labels": {"segment": "s-1", "detector.name": "sr"},
        "annotations": {},
        "starts_at": 100.0,
        "ends_at": ends,
        "count": 7,
        "total_count": 9,
        "repeat": False,
        "details": {"p_value": 0.001, "score": 2.5, "fields": {}},
        "examples": [{"event_id": "e9", "risk": 0.9}],
    }


def note(*alerts: dict[str, object]) -> Notification:
    return Notification(
        "ops", "g1", {"kind": "drift", "segment": "s-1"}, 4, 200.0, "firing", 7, 0, alerts
    )


def test_generic_document_is_versioned_and_iso_timed() -> None:
    doc = document(note(alert("drift", "firing")), "id-1")
    assert doc["schema"] == SCHEMA and doc["id"] == "id-1" and doc["sequence"] == 4
    assert doc["created_at"] == "1970-01-01T00:03:20.000Z"
    [a] = doc["alerts"]
    assert a["starts_at"] == "1970-01-01T00:01:40.000Z" and a["ends_at"] is None
    assert json.loads(render(doc, "webhook", 0.0, CFG)) == doc


def test_slack_has_text_and_blocks() -> None:
    msg = slack(document(note(alert("outlier", "firing")), "id"))
    assert msg["text"].startswith("[FIRING:1] kind=drift, segment=s-1 (7 events)")
    body = msg["blocks"][1]["text"]["text"]
    assert "p_value=0.001" in body and "worst: e9" in body


def test_alertmanager_shape_resolves_with_real_end() -> None:
    doc = document(note(alert("drift", "firing"), alert("drift", "resolved", ends=150.0)), "x")
    firing, resolved = alertmanager(doc, 1000.0, CFG)
    assert firing["labels"] == {
        "segment": "s-1",
        "detector_name": "sr",
        "alertname": "MonitorDrift",
        "kind": "drift",
    }
    assert all(isinstance(v, str) for v in firing["annotations"].values())
    assert firing["annotations"]["count"] == "7"
    assert firing["startsAt"] == "1970-01-01T00:01:40.000Z"
    assert firing["endsAt"] == "1970-01-01T00:36:40.000Z"  # now + 2 x repeat interval
    assert resolved["endsAt"] == "1970-01-01T00:02:30.000Z"
    outlier = alertmanager(document(note(alert("outlier", "firing")), "x"), 1000.0, CFG)[0]
    assert outlier["endsAt"] == "1970-01-01T00:17:40.000Z"  # now + 2 x group interval
    assert outlier["labels"]["alertname"] == "MonitorOutliers"


def test_slack_worst_ids_from_real_outlier_details() -> None:
    s = Score("tx-42", "s-1", 3.0, 1e-4, True, 0.1, 0.2, 0.97, 2)
    details = explain_outlier("payments", s, 100.0, exemplars=["tx-1"]).details
    a = {**alert("outlier", "firing"), "details": details, "examples": [details]}
    body = slack(document(note(a), "id"))["blocks"][1]["text"]["text"]
    assert "worst: tx-42" in body and "?" not in body
    assert "p_value=0.0001" in body and "risk=0.97" in body


def test_slack_example_id_falls_back_to_id_then_question_mark() -> None:
    a = {**alert("outlier", "firing"), "examples": [{"id": "old"}, {"risk": 1.0}]}
    body = slack(document(note(a), "id"))["blocks"][1]["text"]["text"]
    assert "worst: old, ?" in body
