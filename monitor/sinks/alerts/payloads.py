"""Payload shapes: the generic versioned document, Slack, and Alertmanager's API.

The generic document (schema ``monitor.alerts/v1``) is what the outbox stores; the other
shapes are rendered from it at send time, so a retry of an Alertmanager post refreshes the
``endsAt`` that keeps a firing alert alive there.

Generic document (JSON Schema: ``webhook-v1.schema.json`` next to this module, also
`json_schema()`)::

    {"schema": "monitor.alerts/v1", "id": "<uuid>", "receiver": "ops",
     "group_key": "<hex>", "group_labels": {"kind": "outlier", "segment": "s1"},
     "sequence": 3, "status": "firing", "created_at": "2024-01-01T00:00:00Z",
     "count": 4711, "truncated_count": 0,
     "alerts": [{"fingerprint": "<hex>", "kind": "outlier", "status": "firing",
                 "labels": {...}, "annotations": {...}, "starts_at": "...", "ends_at": null,
                 "count": 4711, "total_count": 9000, "repeat": false,
                 "details": {...}, "examples": [{...worst first...}]}]}
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from monitor.config import AlertsConfig
from monitor.sinks.alerts.router import Notification

SCHEMA = "monitor.alerts/v1"
SCHEMA_FILE = "webhook-v1.schema.json"
JSON = "application/json"
_ALERTNAMES = {
    "drift": "MonitorDrift",
    "outlier": "MonitorOutliers",
    "operational": "MonitorOperational",
}
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")
_SLACK_ALERTS = 10
_ANNOTATION_CHARS = 4000


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with a Z, milliseconds kept.

    >>> iso(0.0)
    '1970-01-01T00:00:00.000Z'
    """
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def document(note: Notification, notification_id: str) -> dict[str, Any]:
    """The generic, versioned JSON document for one notification."""
    alerts = [
        {**a, "starts_at": iso(a["starts_at"]), "ends_at": iso(a["ends_at"])} for a in note.alerts
    ]
    return {
        "schema": SCHEMA,
        "id": notification_id,
        "receiver": note.receiver,
        "group_key": note.group_key,
        "group_labels": note.group_labels,
        "sequence": note.sequence,
        "status": note.status,
        "created_at": iso(note.created_at),
        "count": note.count,
        "truncated_count": note.truncated_count,
        "alerts": alerts,
    }


@cache
def _schema_text() -> str:
    package = resources.files("monitor.sinks.alerts")
    return package.joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the generic document, shipped with the package.

    >>> json_schema()["properties"]["schema"]["const"] == SCHEMA
    True
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _summary(alert: dict[str, Any]) -> str:
    text = alert["annotations"].get("summary")
    if text:
        return str(text)
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
    return f"{alert['kind']} {alert['status']} ({labels}), {alert['count']} new"


def _example_id(example: dict[str, Any]) -> str:
    """The event id of one worst example (``event_id``; ``id`` from hand-made alerts)."""
    value = example.get("event_id", example.get("id"))
    return "?" if value is None else str(value)


def slack(doc: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: a text fallback plus mrkdwn blocks."""
    group = ", ".join(f"{k}={v}" for k, v in doc["group_labels"].items())
    title = f"[{doc['status'].upper()}:{len(doc['alerts'])}] {group} ({doc['count']} events)"
    lines = []
    for alert in doc["alerts"][:_SLACK_ALERTS]:
        d = alert["details"]
        facts = [f"{k}={d[k]}" for k in ("p_value", "score", "risk", "statistic") if k in d]
        ids = [_example_id(e) for e in alert["examples"]]
        line = f"• *{alert['status']}* {_summary(alert)}"
        if facts:
            line += f" — {' '.join(facts)}"
        if ids:
            line += f" — worst: {', '.join(ids)}"
        lines.append(line)
    hidden = len(doc["alerts"]) - _SLACK_ALERTS
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    return {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}},
        ],
    }


def _am_labels(alert: dict[str, Any]) -> dict[str, str]:
    labels = {_LABEL_NAME.sub("_", str(k)): str(v) for k, v in alert["labels"].items()}
    labels.setdefault("alertname", _ALERTNAMES.get(alert["kind"], "MonitorAlert"))
    labels.setdefault("kind", alert["kind"])
    return labels


def alertmanager(doc: dict[str, Any], now: float, config: AlertsConfig) -> list[dict[str, Any]]:
    """Alertmanager ``POST /api/v2/alerts`` body.

    A firing alert carries ``endsAt`` in the future (twice the interval at which it is
    re-sent), so Alertmanager neither resolves it early nor keeps it forever if the monitor
    dies; a resolved alert carries its real end, which resolves it there.
    """
    out = []
    for alert in doc["alerts"]:
        aggregate = alert["kind"] in config.aggregate_kinds
        ttl = 2 * (config.group_interval_seconds if aggregate else config.repeat_interval_seconds)
        annotations = {str(k): str(v) for k, v in alert["annotations"].items()}
        annotations.setdefault("summary", _summary(alert))
        annotations["count"] = str(alert["count"])
        annotations["total_count"] = str(alert["total_count"])
        annotations["details"] = _dumps(alert["details"]).decode()[:_ANNOTATION_CHARS]
        if alert["examples"]:
            annotations["examples"] = _dumps(alert["examples"]).decode()[:_ANNOTATION_CHARS]
        ends = alert["ends_at"] if alert["status"] == "resolved" else iso(now + ttl)
        out.append(
            {
                "labels": _am_labels(alert),
                "annotations": annotations,
                "startsAt": alert["starts_at"],
                "endsAt": ends,
            }
        )
    return out


def render(doc: dict[str, Any], receiver_type: str, now: float, config: AlertsConfig) -> bytes:
    """The request body for a receiver of `receiver_type`, as UTF-8 JSON."""
    if receiver_type == "slack":
        return _dumps(slack(doc))
    if receiver_type == "alertmanager":
        return _dumps(alertmanager(doc, now, config))
    return _dumps(doc)
