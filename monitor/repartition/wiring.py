"""Builds the router and the scorer's view of the config (`kafka.repartition: true`).

The scorer is the ordinary daemon (`monitor.wiring.open_daemon`) whose input is the
internal topic; the router is built here with the same retry helper and producer
factory as the daemon (`monitor.kafka_clients`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, TypeVar

from kafka import KafkaConsumer

from monitor.config import KafkaConfig, MonitorConfig
from monitor.errors import FatalError
from monitor.http import HttpServer, check
from monitor.kafka_clients import daemon_producer, probe, retrying
from monitor.observer import AlertPort, Observer, daemon_metrics
from monitor.repartition.report import RouterReport
from monitor.repartition.router import Router
from monitor.resources import open_alert_sink, open_http, serve_metrics
from monitor.sinks.admin import create_topics, source_topics, topic_partitions
from monitor.sinks.topics import TopicSinks
from monitor.source.kafka import make_consumer

T = TypeVar("T")
log = logging.getLogger(__name__)


def scorer_config(cfg: MonitorConfig) -> MonitorConfig:
    """The scorer's config: the same, reading the internal topic instead of the input."""
    k = cfg.kafka.model_copy(update={"topics": [cfg.kafka.by_segment_topic], "pattern": None})
    return cfg.model_copy(update={"kafka": k})


def ensure_internal_topic(bootstrap: str | list[str], k: KafkaConfig,
                          client: Mapping[str, Any]) -> int:
    """Create `<group_id>.by-segment` if missing (`repartition_partitions`, default the
    largest input topic's count); returns its partition count."""
    parts = k.repartition_partitions
    if parts is None:
        counts = [topic_partitions(bootstrap, t, client)
                  for t in source_topics(bootstrap, k, client)]
        parts = max([n for n in counts if n] or [1])
    create_topics(bootstrap, [(k.by_segment_topic, parts), (k.dead_letter_topic, 1)],
                  client=client)
    found = topic_partitions(bootstrap, k.by_segment_topic, client)
    if found is None:
        raise FatalError(f"the internal topic {k.by_segment_topic} could not be created")
    if k.repartition_partitions is not None and found != k.repartition_partitions:
        log.warning("kafka.repartition_partitions is %d but the internal topic %s already "
                    "has %d: the topic's count is used (it cannot change in place; see "
                    "deploy/RUNBOOK.md, Scale-out)", k.repartition_partitions,
                    k.by_segment_topic, found)
    return found


def open_router(cfg: MonitorConfig, bootstrap: str | list[str], stack: ExitStack,
                stop: threading.Event, *, beside: Observer | None = None) -> Router:
    """A router ready to `run()`, its clients closed by `stack`. `beside`: the scorer's
    observer in the same process (`--role both`), whose registry and alert sink the
    router reports to; without one the router has its own, with its own HTTP server
    (`--role router`)."""
    k = cfg.kafka
    http = None
    if beside is not None:
        report = RouterReport(beside.metrics, cfg.alerts, beside.alerts)
    else:
        report, http = _own_report(cfg, stack)
    retry = retrying(k, stop)
    client = k.client_options(bootstrap)
    retry(lambda: probe(bootstrap), f"bootstrap {bootstrap}")
    retry(lambda: ensure_internal_topic(bootstrap, k, client), "internal topic set-up")
    # one request in flight: a retried send must not overtake the next one, or a source
    # partition's offsets would not grow within an internal partition (see dedupe.py)
    producer = retry(lambda: daemon_producer(
        k, {**client, "max_in_flight_requests_per_connection": 1}), "router producer")
    stack.callback(producer.close)
    routed = k.model_copy(update={"group_id": k.router_group})
    consumer: KafkaConsumer = retry(lambda: make_consumer(routed, client), "router consumer")
    stack.callback(lambda: consumer.close(autocommit=False))
    if k.pattern is not None:
        consumer.subscribe(pattern=k.pattern)
    else:
        consumer.subscribe(topics=list(k.topics))
    sinks = TopicSinks(producer, k.scored_topic, k.dead_letter_topic)
    router = Router(k, cfg.fields, consumer=consumer, producer=producer, dead_letters=sinks,
                    report=report, stop=stop, stale_after_s=cfg.http.stale_after_s)
    if http is not None:  # a router process's own /healthz, /readyz and /metrics
        http.route("/healthz", check(router.healthy))
        http.route("/readyz", check(router.ready))
        serve_metrics(http, report.metrics)
        stack.enter_context(http)
    return router


def _own_report(cfg: MonitorConfig, stack: ExitStack) -> tuple[RouterReport, HttpServer | None]:
    """A router process's metrics, alert sink (its outbox in `<state_dir>/router`, apart
    from a scorer's) and HTTP server, opened before any broker call so that a taken port
    is said at once."""
    import os

    metrics = daemon_metrics(cfg)
    state = cfg.checkpoint.state_dir
    own = cfg if state is None else cfg.model_copy(update={"checkpoint": (
        cfg.checkpoint.model_copy(update={"state_dir": os.path.join(state, "router")}))})
    if own.checkpoint.state_dir is not None:
        os.makedirs(own.checkpoint.state_dir, exist_ok=True)
    alerts: AlertPort | None = open_alert_sink(own, metrics, os.environ, stack)
    return RouterReport(metrics, cfg.alerts, alerts), open_http(cfg, stack)
