"""Kafka client plumbing shared by the daemon's edges and the tools: reaching a broker
(a TCP probe; retries with capped, jittered backoff until a deadline), the one producer
factory, and checking delivery futures.

Below source/, sinks/ and state/: it imports only `monitor.config` and `monitor.errors`.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from monitor.config import KafkaConfig
from monitor.errors import FatalError

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_backoff(connect: Callable[[], T], what: str, deadline_s: float, backoff_max_s: float,
                 first_delay_s: float = 0.2, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 log_level: int = logging.WARNING) -> T:
    """Call `connect` until it succeeds; a Kafka or OS error is retried after a capped,
    jittered, doubling delay (each retry logged at `log_level`); `FatalError` with a
    clear message once `deadline_s` has passed. The one retry loop of the daemon and the
    tools."""
    end = clock() + deadline_s
    delay = first_delay_s
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
            log.log(log_level, "%s: broker unreachable (%r); retry %d in %.1fs", what, err,
                    attempt, wait)
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


def make_producer(client: Mapping[str, Any], linger_ms: int = 20,
                  batch_bytes: int | None = None, max_request_bytes: int | None = None,
                  retries: int | None = None) -> KafkaProducer:
    """Every producer of the process (daemon, demo, bench, feeder): `acks="all"`, so a
    send counts once the broker holds it durably. `client` carries the connection and
    security options (at least ``bootstrap_servers``); unset sizes keep kafka-python's."""
    opts: dict[str, Any] = dict(client)
    opts.update(acks="all", linger_ms=linger_ms)
    for key, value in (("batch_size", batch_bytes), ("max_request_size", max_request_bytes),
                       ("retries", retries)):
        if value is not None:
            opts[key] = value
    return KafkaProducer(**opts)


def daemon_producer(cfg: KafkaConfig, client: Mapping[str, Any]) -> KafkaProducer:
    """The daemon's one producer for scored records, dead letters and changelog snapshots
    (a snapshot may be as large as `max_snapshot_bytes`)."""
    max_request = cfg.max_snapshot_bytes + 65_536
    return make_producer(client, cfg.producer_linger_ms,
                         batch_bytes=min(cfg.producer_batch_bytes, max_request),
                         max_request_bytes=max_request, retries=5)


def check_futures(futures: Iterable[FutureRecordMetadata], timeout_s: float, what: str) -> None:
    """After a flush: wait for every delivery; `FatalError` naming how many failed."""
    failed = 0
    first: BaseException | None = None
    for fut in futures:
        try:
            fut.get(timeout=timeout_s)
        except Exception as err:
            failed += 1
            first = first or err
    if failed:
        raise FatalError(f"{failed} {what} record(s) not delivered: {first!r}")


def retrying(k: KafkaConfig, stop: threading.Event
             ) -> Callable[[Callable[[], T], str], T]:
    """The daemon's start-up retry (capped, jittered backoff until the start deadline),
    cut short by `stop`."""
    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise FatalError("stopped while waiting for the Kafka broker")

    def retry(connect: Callable[[], T], what: str) -> T:
        return with_backoff(connect, what, k.start_deadline_s, k.start_backoff_max_s,
                            sleep=sleep)

    return retry
