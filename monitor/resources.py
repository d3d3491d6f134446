"""Local resources a process opens before any broker call, so that a bad `state_dir` or a
taken port is said in one line at once: its HTTP server and its alert sink. The daemon
(`monitor.wiring`) and a router process (`monitor.repartition.wiring`) both open them here.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from monitor.config import MonitorConfig
from monitor.http import HttpServer
from monitor.observer import AlertPort
from monitor.sinks.metrics import Metrics

log = logging.getLogger(__name__)


def open_http(cfg: MonitorConfig, stack: ExitStack) -> HttpServer | None:
    """The process's HTTP server (not yet serving), closed by `stack`; None when disabled.
    Made before any broker call, so a taken port is said at once."""
    h = cfg.http
    if not h.enabled:
        return None
    http = HttpServer(h.host, h.port, timeout_s=h.timeout_s, max_connections=h.max_connections)
    stack.callback(http.server.server_close)
    return http


def serve_metrics(http: Any, metrics: Metrics) -> None:
    """/metrics: the registry in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    http.route("/metrics", lambda: (200, CONTENT_TYPE_LATEST,
                                    generate_latest(metrics.registry)))


def open_alert_sink(cfg: MonitorConfig, metrics: Metrics, env: Mapping[str, str],
                    stack: ExitStack) -> AlertPort | None:
    """The alert sink when receivers are configured (closed with `stack`), else None."""
    if not cfg.alerts.receivers:
        return None
    from monitor.sinks.alerts import AlertSink

    state_dir = cfg.checkpoint.state_dir
    if state_dir is None:
        state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="monitor-alerts-"))
        log.warning("checkpoint.state_dir is not set: the alert outbox lives in %s and does "
                    "not survive a restart", state_dir)
    sink = AlertSink(cfg.alerts, state_dir, env=env, on_count=metrics.on_alert_count)
    return stack.enter_context(sink)
