"""The Kafka edge: the group consumer, its subscription and the rebalance hook.

The listener only forwards to the daemon: on revoke it checkpoints (while this member
still owns the partitions), on assign it pauses the new partitions until their state is
restored (the daemon does that in its loop, then seeks and resumes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from monitor.config import KafkaConfig

log = logging.getLogger(__name__)


def make_consumer(cfg: KafkaConfig, client: dict[str, Any]) -> KafkaConsumer:
    heartbeat = cfg.heartbeat_interval_ms or max(100, cfg.session_timeout_ms // 3)
    return KafkaConsumer(
        group_id=cfg.group_id, enable_auto_commit=False, auto_offset_reset=cfg.auto_offset_reset,
        session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=heartbeat,
        max_poll_interval_ms=cfg.max_poll_interval_ms, fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        max_poll_records=cfg.max_batch_events, **client)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards rebalance callbacks; `on_assigned` runs after this hook paused them."""

    def __init__(self, consumer: KafkaConsumer,
                 on_revoked: Callable[[list[TopicPartition]], None],
                 on_assigned: Callable[[list[TopicPartition]], None]) -> None:
        self.consumer = consumer
        self._revoked = on_revoked
        self._assigned = on_assigned

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("revoked %s", sorted(f"{tp.topic}:{tp.partition}" for tp in revoked))
        self._revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        tps = list(assigned)
        log.info("assigned %s", sorted(f"{tp.topic}:{tp.partition}" for tp in tps))
        if tps:
            self.consumer.pause(*tps)
        self._assigned(tps)


try:  # kafka-python >= 3 runs rebalance listeners on its IO thread
    from kafka import AsyncConsumerRebalanceListener
except ImportError:  # pragma: no cover - kafka-python 2.x: on the polling thread
    AsyncConsumerRebalanceListener = None


def rebalance_listener(consumer: KafkaConsumer,
                       on_revoked: Callable[[list[TopicPartition]], None],
                       on_assigned: Callable[[list[TopicPartition]], None]) -> Any:
    """The listener this kafka-python needs: `Rebalance`, or on kafka-python 3 (whose
    IO thread runs listeners and refuses a blocking call there, such as the revoke
    checkpoint's commit) one that runs the revoke hook in a worker thread and awaits it."""
    if AsyncConsumerRebalanceListener is None:
        return Rebalance(consumer, on_revoked, on_assigned)
    return _async_rebalance(consumer, on_revoked, on_assigned)


def _async_rebalance(consumer: KafkaConsumer,
                     on_revoked: Callable[[list[TopicPartition]], None],
                     on_assigned: Callable[[list[TopicPartition]], None]) -> Any:
    sync = Rebalance(consumer, on_revoked, on_assigned)

    class AsyncRebalance(AsyncConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            done = threading.Event()
            failed: list[BaseException] = []

            def work() -> None:
                try:
                    sync.on_partitions_revoked(revoked)
                except BaseException as err:  # raised below, on the IO thread
                    failed.append(err)
                finally:
                    done.set()

            threading.Thread(target=work, name="revoke", daemon=True).start()
            # the IO loop must keep running while the worker commits through it: sleep on
            # the loop (kafka-python has no public way to await a thread)
            net = consumer._coordinator._net
            while not done.is_set():
                await net.sleep(0.005)
            if failed:
                raise failed[0]

        async def on_partitions_assigned(self, assigned: Any) -> None:
            sync.on_partitions_assigned(assigned)  # pause only: does not block

    return AsyncRebalance()


def subscribe(consumer: KafkaConsumer, cfg: KafkaConfig, listener: Any) -> None:
    """The input topics, by name or pattern (the feedback topic is read apart from the
    group: see `monitor.source.feedback`)."""
    if cfg.pattern is not None:
        consumer.subscribe(pattern=cfg.pattern, listener=listener)
    else:
        consumer.subscribe(topics=list(cfg.topics), listener=listener)
