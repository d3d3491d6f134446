"""Output-topic administration: create what the daemon writes to, size it like its sources.

Used against the embedded broker and production clusters alike.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from monitor.config import KafkaConfig
from monitor.kafka_clients import with_backoff

log = logging.getLogger(__name__)


def _admin_options(bootstrap: str | list[str],
                   client: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = dict(client or {})
    opts["bootstrap_servers"] = bootstrap
    return opts


def create_topics(bootstrap: str | list[str], topics: Iterable[tuple[str, int]],
                  compacted: Iterable[str] = (), timeout_s: float = 20.0,
                  client: Mapping[str, Any] | None = None,
                  configs: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Create `(name, partitions)` topics that do not exist yet; retries until the broker
    answers metadata requests (a fresh broker may not at first)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    compact = set(compacted)
    wanted = list(topics)
    # a fresh broker may refuse at first: expected, so its retries are not warnings
    admin = with_backoff(lambda: KafkaAdminClient(**_admin_options(bootstrap, client)),
                         f"topic administration on {bootstrap}", timeout_s, backoff_max_s=0.2,
                         log_level=logging.DEBUG)
    try:
        existing = set(admin.list_topics())
        for name, parts in wanted:
            if name in existing:
                continue
            extra = dict((configs or {}).get(name, {}))
            if name in compact:
                extra["cleanup.policy"] = "compact"
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, parts, 1, topic_configs=extra)])
    finally:
        admin.close()


def topic_partitions(bootstrap: str | list[str], topic: str,
                     client: Mapping[str, Any] | None = None) -> int | None:
    """Partition count of `topic`, or None when it does not exist."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**_admin_options(bootstrap, client))
    try:
        meta = admin.describe_topics([topic])
    finally:
        admin.close()
    for t in meta:
        name = t.get("name", t.get("topic"))
        if name == topic and not t.get("error_code") and t.get("partitions"):
            return len(t["partitions"])
    return None


def source_topics(bootstrap: str | list[str], k: KafkaConfig,
                  client: Mapping[str, Any] | None = None) -> list[str]:
    """The input topics: `kafka.topics`, or the existing topics `kafka.pattern` matches
    (as the consumer matches them, from the start of the name)."""
    if k.pattern is None:
        return list(k.topics)
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**_admin_options(bootstrap, client))
    try:
        names = admin.list_topics()
    finally:
        admin.close()
    return sorted(t for t in names if re.match(k.pattern, t))


def ensure_output_topics(bootstrap: str | list[str], k: KafkaConfig,
                         client: Mapping[str, Any] | None = None) -> int:
    """Create the scored, dead-letter and changelog topics if missing, with as many
    partitions as the largest source topic (and the feedback topic, with one); returns
    the changelog's partition count."""
    counts = [topic_partitions(bootstrap, t, client) for t in source_topics(bootstrap, k, client)]
    parts = max([n for n in counts if n] or [1])
    wanted = [(k.scored_topic, parts), (k.dead_letter_topic, 1), (k.changelog, parts)]
    if k.feedback_topic is not None:  # analysts' tooling may create it first, larger
        wanted.append((k.feedback_topic, 1))
    try:
        big = {k.changelog: {"max.message.bytes": str(k.max_snapshot_bytes)}}
        create_topics(bootstrap, wanted, compacted=[k.changelog], client=client, configs=big)
    except Exception as err:
        log.warning("could not create output topics (%r); assuming they exist", err)
    return topic_partitions(bootstrap, k.changelog, client) or parts
