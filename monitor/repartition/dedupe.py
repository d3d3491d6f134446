"""The scorer's side of repartition: which internal records are new, and where they came from.

The router writes at least once: after a crash it re-reads its input from the last
committed offset and writes again what it had already written. Per source partition the
router keeps the input order (one producer, one request in flight), so within one
internal partition a source partition's offsets only grow, except for such duplicates.
The highest source offset a state has applied is therefore enough to recognise them; it
is part of the partition state (`PartitionState.sources`) and so of its snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka.consumer.fetcher import ConsumerRecord

from monitor.outcome import DeadLetter
from monitor.repartition.origin import Origin, OriginError, read_origin


@dataclass(slots=True)
class Selection:
    """The records of a batch to decode, aligned with their origins; the dead letters of
    records that carry no source; the highest source offset per source partition seen."""

    records: list[ConsumerRecord] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    sources: dict[tuple[str, int], int] = field(default_factory=dict)


def select(records: list[ConsumerRecord], applied: Mapping[tuple[str, int], int]) -> Selection:
    """Drop every record whose source offset is at or below the highest already applied
    (in `applied`, or earlier in this batch: a duplicate may follow its original within
    one poll). A record without the router's headers is dead-lettered, not guessed at."""
    out = Selection()
    for r in records:
        try:
            origin = read_origin(r.headers)
        except OriginError as err:
            out.dead.append(DeadLetter(r.value, r.key, f"repartition: {err}", r.topic,
                                       r.partition, r.offset, r.timestamp))
            continue
        src = (origin.topic, origin.partition)
        high = max(applied.get(src, -1), out.sources.get(src, -1))
        if origin.offset <= high:
            continue  # the router's duplicate of a record already applied
        out.sources[src] = origin.offset
        out.records.append(r)
        out.origins.append(origin)
    return out
