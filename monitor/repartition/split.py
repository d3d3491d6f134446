"""A scorer's batch seen per source partition, for whatever reports by source.

One internal partition's batch mixes events of many source partitions. The model (and
so drift) belongs to the internal partition; counts, latencies and outliers belong to
the source record, so the observer reports those per source (`by_source`).
"""

from __future__ import annotations

from dataclasses import replace

from monitor.outcome import BatchResult


def by_source(result: BatchResult) -> list[BatchResult]:
    """One result per source (topic, partition), events in their order, without alarms
    (those stay with the internal partition); `received` counts each part's events and
    dead letters. A result without origins is returned as it is.

    >>> from monitor.events import Event
    >>> from monitor.repartition.origin import Origin
    >>> r = BatchResult("g.by-segment", 0, 3, [Event("a"), Event("b"), Event("c")], [], [],
    ...                 [5, 7, 6], [None] * 3, [], 3,
    ...                 origins=[Origin("t", 1, 5), Origin("t", 2, 7), Origin("t", 1, 6)])
    >>> [(p.topic, p.partition, p.offsets, p.received) for p in by_source(r)]
    [('t', 1, [5, 6], 2), ('t', 2, [7], 1)]
    """
    if result.origins is None:
        return [result]
    rows: dict[tuple[str, int], list[int]] = {}
    for i, o in enumerate(result.origins):
        rows.setdefault((o.topic, o.partition), []).append(i)
    dead: dict[tuple[str, int], list[int]] = {}
    for j, d in enumerate(result.dead_letters):
        dead.setdefault((d.topic, d.partition), []).append(j)
    parts = []
    for src in sorted(set(rows) | set(dead)):
        idx, dl = rows.get(src, []), dead.get(src, [])
        parts.append(replace(
            result, topic=src[0], partition=src[1], received=len(idx) + len(dl),
            events=[result.events[i] for i in idx],
            scores=[result.scores[i] for i in idx] if result.scores else [],
            alarms=[], offsets=[result.offsets[i] for i in idx],
            keys=[result.keys[i] for i in idx],
            dead_letters=[result.dead_letters[j] for j in dl],
            origins=[result.origins[i] for i in idx], sources={}))
    return parts
