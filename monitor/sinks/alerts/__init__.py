"""Alerts: grouping, a durable outbox, signed delivery to webhooks, Slack and Alertmanager.

Public surface: `AlertSink` (submit / pump / start / stop / flush / checkpoint and
per-receiver `counters`), `AlertsConfig`, `ReceiverConfig`, and `verify` for receivers.
"""

from monitor.config import AlertsConfig, ReceiverConfig
from monitor.sinks.alerts.payloads import SCHEMA
from monitor.sinks.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from monitor.sinks.alerts.sink import AlertSink, ReceiverCounters

__all__ = [
    "SCHEMA",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertSink",
    "AlertsConfig",
    "ReceiverConfig",
    "ReceiverCounters",
    "sign",
    "verify",
]
