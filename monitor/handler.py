"""One polled batch of one input partition: decode -> pipeline -> a `BatchResult`.

The handler computes and returns; it sends nothing, counts nothing and moves no offset.
The daemon applies the result to the partition state and hands it to its sinks
(`monitor.outcome`), so every consequence of a batch is visible in one value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import FieldsConfig
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.events import Event
from monitor.outcome import BatchResult, DeadLetter, FeedbackResult
from monitor.repartition.dedupe import Selection, select
from monitor.repartition.origin import Origin
from monitor.state.partition import PartitionState


def dead_letter(r: ConsumerRecord, reason: str) -> DeadLetter:
    return DeadLetter(r.value, r.key, reason, r.topic, r.partition, r.offset, r.timestamp)


def _origin_letter(r: ConsumerRecord, o: Origin, reason: str) -> DeadLetter:
    """A repartitioned record's dead letter names its source record, not the internal one."""
    return DeadLetter(r.value, r.key, reason, o.topic, o.partition, o.offset, o.timestamp_ms)


class BatchHandler:
    """Turns records into a `BatchResult`, and feedback records into a `FeedbackResult`.

    `repartitioned`: the records are the router's (`monitor.repartition`); their source
    is read from the headers and the router's duplicates are skipped."""

    def __init__(self, fields: FieldsConfig, repartitioned: bool = False) -> None:
        self.fields = fields
        self.repartitioned = repartitioned

    def process(self, st: PartitionState, records: list[ConsumerRecord]) -> BatchResult | None:
        """Score the records of `st`'s partition not yet reflected in its state (None when
        there are none: a replay after a restore may deliver records already applied)."""
        records = [r for r in records if r.offset >= st.offset]
        if not records:
            return None
        if self.repartitioned:
            return self._process_routed(st, records)
        t0 = time.perf_counter()
        events: list[Event] = []
        kept: list[ConsumerRecord] = []
        dead: list[DeadLetter] = []
        for r in records:
            try:
                events.append(decode_json(r.value, self.fields,
                                          f"{st.topic}:{st.partition}:{r.offset}"))
                kept.append(r)
            except DecodeError as err:
                dead.append(dead_letter(r, err.reason))
        t1 = time.perf_counter()
        scores, alarms, embed_s = st.pipeline.process_timed(events)
        t2 = time.perf_counter()
        return BatchResult(
            st.topic, st.partition, len(records), events, scores, alarms,
            [r.offset for r in kept], [r.key for r in kept], dead, records[-1].offset + 1,
            {"decode": t1 - t0, "embed": embed_s, "score": t2 - t1 - embed_s})

    def _process_routed(self, st: PartitionState, records: list[ConsumerRecord]
                        ) -> BatchResult:
        """As `process`, for the internal topic: duplicates skipped, and every output
        (scores, dead letters) naming the source record. `received` counts the records
        applied, not the duplicates, so consumption metrics count each event once."""
        t0 = time.perf_counter()
        sel: Selection = select(records, st.sources)
        events: list[Event] = []
        kept: list[ConsumerRecord] = []
        origins: list[Origin] = []
        dead = sel.dead
        for r, o in zip(sel.records, sel.origins, strict=True):
            try:
                events.append(decode_json(r.value, self.fields,
                                          f"{o.topic}:{o.partition}:{o.offset}"))
                kept.append(r)
                origins.append(o)
            except DecodeError as err:
                dead.append(_origin_letter(r, o, err.reason))
        t1 = time.perf_counter()
        scores, alarms, embed_s = st.pipeline.process_timed(events)
        t2 = time.perf_counter()
        return BatchResult(
            st.topic, st.partition, len(sel.records) + len(sel.dead), events, scores, alarms,
            [o.offset for o in origins], [r.key for r in kept], dead, records[-1].offset + 1,
            {"decode": t1 - t0, "embed": embed_s, "score": t2 - t1 - embed_s},
            origins=origins, sources=sel.sources)

    def feedback(self, records: list[ConsumerRecord], states: Iterable[PartitionState],
                 first_sighting: Callable[[ConsumerRecord], bool]) -> FeedbackResult:
        """Labelled events update the fraud prototypes of every state that has not applied
        them yet (see `monitor.source.feedback`); each record is counted, dead-lettered
        and its label reported once per process, on its first sighting."""
        decoded: list[tuple[ConsumerRecord, Event | None]] = []
        received: dict[tuple[str, int], int] = {}
        labels: list[tuple[str, bool]] = []
        dead: list[DeadLetter] = []
        for r in records:
            first = first_sighting(r)
            try:
                ev: Event | None = decode_json(r.value, self.fields,
                                               f"feedback:{r.partition}:{r.offset}")
            except DecodeError as err:
                ev = None
                if first:
                    dead.append(dead_letter(r, err.reason))
            if first:
                received[(r.topic, r.partition)] = received.get((r.topic, r.partition), 0) + 1
                if ev is not None and ev.label is not None:
                    labels.append((ev.id, ev.label))
            decoded.append((r, ev))
        for st in states:
            todo = [(r, ev) for r, ev in decoded if r.offset >= st.feedback.get(r.partition, 0)]
            if not todo:
                continue
            st.pipeline.confirm([ev for _, ev in todo if ev is not None and ev.label is not None])
            for r, _ in todo:
                st.feedback[r.partition] = max(st.feedback.get(r.partition, 0), r.offset + 1)
            st.dirty = True
        return FeedbackResult(received, labels, dead)
