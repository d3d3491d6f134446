"""Builds a daemon from its config: local resources first, then the Kafka clients.

Everything the `Daemon` depends on is made here and handed to its constructor; the
`ExitStack` closes them in reverse order (the consumer first, whose revoke takes the last
checkpoint while the producer, the changelog and the alert sink are still open). Local
resources come first so that a bad `state_dir` or a taken port is said in one line at
once, not after the broker retries.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, TypeVar

from monitor.app import Daemon
from monitor.config import MonitorConfig
from monitor.embed import TextModel
from monitor.embed.composite import CompositeEncoder, build_encoder
from monitor.handler import BatchHandler
from monitor.kafka_clients import daemon_producer, probe, retrying
from monitor.observer import Observer, daemon_metrics
from monitor.outcome import BatchSink
from monitor.pipeline import Pipeline
from monitor.resources import open_alert_sink, open_http, serve_metrics
from monitor.sinks.admin import ensure_output_topics
from monitor.sinks.alerts.drift_alerts import input_label
from monitor.sinks.topics import TopicSinks
from monitor.source.feedback import FeedbackReader
from monitor.source.kafka import make_consumer, rebalance_listener, subscribe
from monitor.state.changelog import Changelog
from monitor.state.checkpoint import Checkpointer
from monitor.state.seed import Seed
from monitor.state.snapshot import SnapshotStore

T = TypeVar("T")
log = logging.getLogger(__name__)


def text_model_for(cfg: MonitorConfig) -> TextModel | None:
    """The one text model of the process, or None when no field is text."""
    if not (cfg.fields.text or cfg.fields.template):
        return None
    from monitor.embed.profiles import load_text_model

    e = cfg.embed
    return load_text_model(e.profile, e.model, e.device, e.batch_size, e.max_seq_length,
                           e.threads, e.cache_dir)


def pipeline_factory(cfg: MonitorConfig, text_model: TextModel | None, seed: Seed | None = None
                     ) -> tuple[Callable[[], Pipeline], CompositeEncoder]:
    """New partitions' pipelines, all sharing one text encoder (and its cache), each
    starting from `seed` (`monitor fit`'s output) when given."""
    shared = build_encoder(cfg, text_model)

    def new_pipeline() -> Pipeline:
        own = build_encoder(cfg, text_model)
        enc = CompositeEncoder(shared.text, own.tabular, cfg.embed.text_weight,
                               cfg.embed.tabular_weight)
        return Pipeline(cfg, enc, seed)

    return new_pipeline, shared


def _scorer_view(cfg: MonitorConfig, bootstrap: str | list[str],
                 stop: threading.Event) -> MonitorConfig:
    """The repartition scorer's config: it reads the internal topic, which is created
    here if the router has not yet."""
    from monitor.repartition.wiring import ensure_internal_topic, scorer_config

    opts = cfg.kafka.client_options(bootstrap)
    retrying(cfg.kafka, stop)(lambda: ensure_internal_topic(bootstrap, cfg.kafka, opts),
                              "internal topic set-up")
    return scorer_config(cfg)


def open_daemon(cfg: MonitorConfig, bootstrap: str | list[str], text_model: TextModel | None,
                stack: ExitStack, stop: threading.Event | None = None,
                sinks: Sequence[BatchSink] = (), env: Mapping[str, str] | None = None,
                clock: Callable[[], float] = time.monotonic, seed: Seed | None = None) -> Daemon:
    """A daemon ready to `run()`, its resources closed by `stack`. With
    `kafka.repartition` it is the scorer: it reads the internal topic (created here if
    the router has not yet) and names each event's source record in its outputs."""
    stop = stop or threading.Event()
    handler = BatchHandler(cfg.fields, repartitioned=cfg.kafka.repartition)
    input_name = None
    if cfg.kafka.repartition:
        input_name = input_label(cfg.kafka.topics, cfg.kafka.pattern)
        cfg = _scorer_view(cfg, bootstrap, stop)
    k = cfg.kafka
    client = k.client_options(bootstrap)

    retry = retrying(k, stop)
    store = SnapshotStore(cfg.checkpoint.state_dir) if cfg.checkpoint.state_dir else None
    http = open_http(cfg, stack)
    metrics = daemon_metrics(cfg)
    alerts = open_alert_sink(cfg, metrics, os.environ if env is None else env, stack)
    retry(lambda: probe(bootstrap), f"bootstrap {bootstrap}")
    changelog_parts = retry(lambda: ensure_output_topics(bootstrap, k, client), "topic set-up")
    producer = retry(lambda: daemon_producer(k, client), "producer")
    stack.callback(producer.close)
    topics = TopicSinks(producer, k.scored_topic, k.dead_letter_topic)
    changelog = Changelog(producer, k.changelog, changelog_parts, client)
    stack.callback(changelog.close)
    feedback = None
    if k.feedback_topic is not None:
        topic = k.feedback_topic
        feedback = retry(lambda: FeedbackReader(topic, client), "feedback reader")
        stack.callback(feedback.close)
    consumer = retry(lambda: make_consumer(k, client), "consumer")
    stack.callback(lambda: consumer.close(autocommit=False))

    def highwater(topic: str, partition: int) -> int | None:
        from kafka import TopicPartition

        high = consumer.highwater(TopicPartition(topic, partition))
        return None if high is None else int(high)

    observer = Observer(cfg, alerts=alerts, highwater=highwater, metrics=metrics,
                        input_name=input_name)
    checkpointer = Checkpointer(consumer, producer, topics, changelog, store, clock,
                                k.max_snapshot_bytes)
    pipelines, shared = pipeline_factory(cfg, text_model, seed)
    daemon = Daemon(cfg, consumer=consumer, topics=topics, changelog=changelog,
                    checkpointer=checkpointer, observer=observer, pipelines=pipelines,
                    text=shared.text, feedback=feedback, sinks=sinks, http=http, stop=stop,
                    clock=clock, handler=handler)
    if http is not None:
        serve(observer, http, daemon.status)
        stack.enter_context(http)
    subscribe(consumer, k, rebalance_listener(consumer, daemon.on_revoked, daemon.on_assigned))
    return daemon


def serve(observer: Observer, http: Any, extra: Callable[[], dict[str, Any]]) -> None:
    """Add /metrics, /status and the HTML status page (/) to the daemon's HTTP server."""
    from monitor.sinks.status import page, status_json
    from monitor.sinks.status_page import CONTENT_TYPE, render

    serve_metrics(http, observer.metrics)
    http.route("/status", lambda: status_json(observer, extra))
    http.route("/", lambda: (200, CONTENT_TYPE, render(page(observer, extra()))))
