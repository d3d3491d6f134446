"""Which internal partition holds a segment, and the check that it still does.

The router places a segment by Kafka's own key hash, so another client can compute
where a segment lives. The placement depends on the internal topic's partition count:
add partitions and most segments belong elsewhere, while their learned state (and the
source offsets that recognise the router's duplicates) stays in the old partition's
snapshots. Moving state between partitions is not supported, so both roles refuse to go
on, with the reason, instead of silently learning each moved segment again.
"""

from __future__ import annotations

from collections.abc import Iterable

from kafka.partitioner.default import murmur2

from monitor.errors import FatalError

MOVED = ("the internal topic {topic} has {now} partitions but {what}. Changing its "
         "partition count moves segments away from their state; start a new "
         "kafka.group_id (seeded with `monitor fit`, see deploy/RUNBOOK.md) instead")


def partition_of(segment: str, partitions: int) -> int:
    """murmur2 of the segment, as the Java and kafka-python partitioners hash keys.

    >>> partition_of("s1", 3), partition_of("s3", 3)
    (0, 2)
    >>> sorted({partition_of(f"s{i}", 4) for i in range(40)})
    [0, 1, 2, 3]
    """
    return int(murmur2(segment.encode()) & 0x7FFFFFFF) % partitions


def check_count(topic: str, started: int, now: int) -> None:
    """The router's check before each batch: the count it places by has not changed.

    >>> check_count("g.by-segment", 3, 3)
    >>> check_count("g.by-segment", 3, 4)
    Traceback (most recent call last):
    monitor.errors.FatalError: the internal topic g.by-segment has 4 partitions but the \
router started with 3. Changing its partition count moves segments away from their state; \
start a new kafka.group_id (seeded with `monitor fit`, see deploy/RUNBOOK.md) instead
    """
    if now != started:
        raise FatalError(MOVED.format(topic=topic, now=now,
                                      what=f"the router started with {started}"))


def check_restored(topic: str, partition: int, segments: Iterable[str], partitions: int
                   ) -> None:
    """The scorer's check of a restored state: every segment it holds still hashes here.

    >>> check_restored("g.by-segment", 2, ["s3", "s5"], 3)
    >>> check_restored("g.by-segment", 2, ["s3", "s2"], 3)
    Traceback (most recent call last):
    monitor.errors.FatalError: the internal topic g.by-segment has 3 partitions but the \
state of partition 2 holds segment 's2', which now hashes to partition 0. Changing its \
partition count moves segments away from their state; start a new kafka.group_id \
(seeded with `monitor fit`, see deploy/RUNBOOK.md) instead
    """
    for name in segments:
        home = partition_of(name, partitions)
        if home != partition:
            raise FatalError(MOVED.format(
                topic=topic, now=partitions,
                what=f"the state of partition {partition} holds segment {name!r}, which "
                     f"now hashes to partition {home}"))
