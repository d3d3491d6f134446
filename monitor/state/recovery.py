"""Recovery of newly assigned partitions (paused by the rebalance hook until done).

For each partition: the committed offset is the mark. A local snapshot at exactly that
offset is used as is; otherwise the changelog gives the newest snapshot at or below it.
The consumer is then positioned at the snapshot's offset, so events between the snapshot
and the commit (if any) are replayed against it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from monitor.pipeline import Pipeline
from monitor.state.changelog import Changelog
from monitor.state.partition import PartitionState
from monitor.state.snapshot import Snapshot, SnapshotStore

log = logging.getLogger(__name__)


def restore_partitions(consumer: KafkaConsumer, tps: list[TopicPartition], changelog: Changelog,
                       store: SnapshotStore | None, new_pipeline: Callable[[], Pipeline],
                       timeout_s: float, feedback_topic: str | None = None,
                       ) -> dict[TopicPartition, PartitionState]:
    """Restored states of `tps`, with the consumer positioned for each (not resumed)."""
    committed = {(tp.topic, tp.partition): consumer.committed(tp) for tp in tps}
    local: dict[tuple[str, int], Snapshot] = {}
    need: dict[tuple[str, int], int | None] = {}
    for key, offset in committed.items():
        snap = store.read(*key) if store is not None else None
        if snap is not None and offset is not None and snap.offset == offset:
            local[key] = snap
        else:
            need[key] = offset
    found = {**changelog.restore(need, timeout_s), **local}
    states = {}
    for tp in tps:
        key = (tp.topic, tp.partition)
        st = PartitionState(tp.topic, tp.partition, new_pipeline(), restored=True)
        snap = found.get(key)
        mark = committed[key]
        if snap is not None:
            st.load(snap)
            if feedback_topic is not None and "feedback" not in snap.state:
                st.feedback = group_feedback_offsets(consumer, feedback_topic)
            consumer.seek(tp, snap.offset)
        elif mark is not None:
            log.warning("%s:%d has a committed offset but no snapshot: cold start at %d",
                        tp.topic, tp.partition, mark)
            st.offset = int(mark)
            consumer.seek(tp, st.offset)
        else:
            st.offset = consumer.position(tp) or 0
        log.info("%s:%d %s at offset %d (%s)", tp.topic, tp.partition,
                 "restored" if snap else "fresh", st.offset,
                 "local snapshot" if key in local else "changelog" if snap else "no state")
        states[tp] = st
    return states


def group_feedback_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    """Feedback applied by a snapshot written before states recorded it themselves: up to
    what the group committed on the feedback topic, as earlier releases did (so an
    upgrade does not apply old cases a second time)."""
    found = consumer.partitions_for_topic(topic) or set()
    offsets = {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(found)}
    return {p: int(o) for p, o in offsets.items() if o is not None}
