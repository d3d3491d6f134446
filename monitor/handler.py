"""One polled batch of one input partition: decode -> pipeline -> metrics -> output topics.

The daemon owns the Kafka edges and the partition states; this does the work on a batch
and times each stage (`StageTimes`), so an operator and `monitor bench` see where the
time goes without wrapping the loop's internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import MonitorConfig
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.events import DriftAlarm, Event, Score
from monitor.feedback import add_fraud_prototypes
from monitor.observer import Observer
from monitor.sinks.topics import TopicSinks
from monitor.state.partition import PartitionState
from monitor.stats import FRAUD_LIKE, StageTimes, Stats

log = logging.getLogger(__name__)


class BatchHandler:
    """Turns records into scored records, dead letters, metrics and alerts."""

    def __init__(self, cfg: MonitorConfig, observer: Observer, stats: Stats,
                 stages: StageTimes) -> None:
        self.cfg = cfg
        self.observer = observer
        self.stats = stats
        self.stages = stages
        self.sinks: TopicSinks | None = None  # set once the producer exists

    def _decode(self, tp: TopicPartition,
                records: list[ConsumerRecord]) -> tuple[list[Event], list[ConsumerRecord]]:
        """Decoded events and their records; the rest go to the dead-letter topic."""
        assert self.sinks is not None
        events: list[Event] = []
        kept: list[ConsumerRecord] = []
        for r in records:
            try:
                events.append(decode_json(r.value, self.cfg.fields,
                                          f"{tp.topic}:{tp.partition}:{r.offset}"))
                kept.append(r)
            except DecodeError as err:
                self.sinks.dead_letter(r.value, r.key, err.reason, tp.topic, tp.partition,
                                       r.offset, r.timestamp)
                self.stats.dead_letters += 1
                self.observer.dead_letter(tp.topic, tp.partition)
        return events, kept

    def records(self, tp: TopicPartition, st: PartitionState,
                records: list[ConsumerRecord]) -> int:
        """Process the records of `st`'s partition not yet reflected in its state."""
        assert self.sinks is not None
        records = [r for r in records if r.offset >= st.offset]
        if not records:
            return 0
        t0 = time.perf_counter()
        events, kept = self._decode(tp, records)
        t1 = time.perf_counter()
        st.pipeline.last_embed_seconds = None
        scores, alarms = st.pipeline.process(events)
        t2 = time.perf_counter()
        self.observer.scored(tp.topic, tp.partition, st.pipeline, events, scores, alarms)
        t3 = time.perf_counter()
        self.sinks.scored(tp.topic, tp.partition, [
            (score, r.offset, r.key, ev.timestamp)
            for score, ev, r in zip(scores, events, kept, strict=True)])
        t4 = time.perf_counter()
        self._count(scores, alarms, tp)
        st.offset = records[-1].offset + 1
        st.dirty = True
        st.events += len(records)
        self.stats.events += len(records)
        embed = st.pipeline.last_embed_seconds or 0.0
        self.stages.add(decode=t1 - t0 + time.perf_counter() - t4, embed=embed,
                        score=t2 - t1 - embed, metrics=t3 - t2, produce=t4 - t3)
        return len(records)

    def _count(self, scores: Sequence[Score], alarms: Sequence[DriftAlarm],
               tp: TopicPartition) -> None:
        for score in scores:
            self.stats.scored += score.p_value is not None
            if score.fraud_similarity >= FRAUD_LIKE:
                self.stats.fraud_like_ids.append(score.event_id)
            if score.outlier:
                self.stats.outliers += 1
                self.stats.outlier_ids.append(score.event_id)
                self.stats.precision.flagged(score.event_id)
        for alarm in alarms:
            log.warning("drift in %s:%d segment %r at event %d (statistic %.3g)", tp.topic,
                        tp.partition, alarm.segment, alarm.index, alarm.statistic)
            self.stats.alarms.append(alarm)
            self.stats.alarms_total += 1

    def feedback(self, records: list[ConsumerRecord], states: Iterable[PartitionState],
                 first_sighting: Callable[[ConsumerRecord], bool]) -> int:
        """Labelled events update the fraud prototypes of every state that has not applied
        them yet (see `monitor.source.feedback`); each record is counted, dead-lettered
        and matched against outlier flags once per process, on its first sighting."""
        assert self.sinks is not None
        decoded: list[tuple[ConsumerRecord, Event | None]] = []
        new: dict[tuple[str, int], int] = {}
        for r in records:
            first = first_sighting(r)
            try:
                ev = decode_json(r.value, self.cfg.fields,
                                 f"feedback:{r.partition}:{r.offset}")
            except DecodeError as err:
                ev = None
                if first:
                    self.sinks.dead_letter(r.value, r.key, err.reason, r.topic, r.partition,
                                           r.offset, r.timestamp)
                    self.stats.dead_letters += 1
                    self.observer.dead_letter(r.topic, r.partition)
            if first:
                new[(r.topic, r.partition)] = new.get((r.topic, r.partition), 0) + 1
                if ev is not None and ev.label is not None:
                    self.stats.precision.feedback(ev.id, ev.label)
                    self.stats.feedback += 1
            decoded.append((r, ev))
        for (topic, partition), n in new.items():
            self.observer.records(topic, partition, n)
        for st in states:
            todo = [(r, ev) for r, ev in decoded if r.offset >= st.feedback.get(r.partition, 0)]
            if not todo:
                continue
            add_fraud_prototypes(st.pipeline, [ev for _, ev in todo
                                               if ev is not None and ev.label is not None])
            for r, _ in todo:
                st.feedback[r.partition] = max(st.feedback.get(r.partition, 0), r.offset + 1)
            st.dirty = True
        return len(records)
