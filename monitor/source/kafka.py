"""The Kafka edge: connecting with capped backoff, the group consumer, the rebalance hook.

The listener only forwards to the daemon: on revoke it checkpoints (while this member
still owns the partitions), on assign it pauses the new partitions until their state is
restored (the daemon does that in its loop, then seeks and resumes).
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from monitor.config import KafkaConfig
from monitor.errors import FatalError

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_backoff(connect: Callable[[], T], what: str, deadline_s: float, backoff_max_s: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> T:
    """Call `connect` until it succeeds; capped, jittered exponential backoff; `FatalError`
    with a clear message once `deadline_s` has passed."""
    end = clock() + deadline_s
    delay = 0.2
    attempt = 0
    while True:
        attempt += 1
        try:
            return connect()
        except (KafkaError, OSError) as err:
            left = end - clock()
            if left <= 0:
                raise FatalError(f"cannot reach the Kafka broker ({what}) after "
                                 f"{attempt} attempts in {deadline_s:g}s: {err!r}") from None
            wait = min(delay, backoff_max_s, left) * (0.5 + random.random() / 2)
            log.warning("%s: broker unreachable (%r); retry %d in %.1fs", what, err, attempt,
                        wait)
            sleep(wait)
            delay *= 2


def probe(bootstrap: str | list[str], timeout_s: float = 2.0) -> str:
    """A TCP connection to the first bootstrap server that accepts one (kafka-python's own
    bootstrap waits up to half a minute with its own backoff; this answers in seconds)."""
    servers = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    errors = []
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)),
                                          timeout=timeout_s):
                return server
        except (OSError, ValueError) as err:
            errors.append(f"{server}: {err}")
    raise OSError("; ".join(errors) or "no bootstrap servers")


def make_consumer(cfg: KafkaConfig, client: dict[str, Any]) -> KafkaConsumer:
    heartbeat = cfg.heartbeat_interval_ms or max(100, cfg.session_timeout_ms // 3)
    return KafkaConsumer(
        group_id=cfg.group_id, enable_auto_commit=False, auto_offset_reset=cfg.auto_offset_reset,
        session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=heartbeat,
        max_poll_interval_ms=cfg.max_poll_interval_ms, fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        max_poll_records=cfg.max_batch_events, **client)


def make_producer(cfg: KafkaConfig, client: dict[str, Any]) -> KafkaProducer:
    """One producer for scored records, dead letters and changelog snapshots (a snapshot
    may be as large as `max_snapshot_bytes`)."""
    max_request = cfg.max_snapshot_bytes + 65_536
    return KafkaProducer(acks="all", linger_ms=cfg.producer_linger_ms, retries=5,
                         batch_size=min(cfg.producer_batch_bytes, max_request),
                         max_request_size=max_request, **client)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards rebalance callbacks; `on_assigned` runs after this hook paused them."""

    def __init__(self, consumer: KafkaConsumer,
                 on_revoked: Callable[[list[TopicPartition]], None],
                 on_assigned: Callable[[list[TopicPartition]], None]) -> None:
        self.consumer = consumer
        self._revoked = on_revoked
        self._assigned = on_assigned
        self.generation = 0

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("revoked %s", sorted(f"{tp.topic}:{tp.partition}" for tp in revoked))
        self._revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        tps = list(assigned)
        self.generation += 1
        log.info("assigned %s", sorted(f"{tp.topic}:{tp.partition}" for tp in tps))
        if tps:
            self.consumer.pause(*tps)
        self._assigned(tps)


def subscribe(consumer: KafkaConsumer, cfg: KafkaConfig, listener: Rebalance) -> None:
    """The input topics, by name or pattern (the feedback topic is read apart from the
    group: see `monitor.source.feedback`)."""
    if cfg.pattern is not None:
        consumer.subscribe(pattern=cfg.pattern, listener=listener)
    else:
        consumer.subscribe(topics=list(cfg.topics), listener=listener)
