"""The feedback topic read outside the group: positions follow what the held partition
states still need, and each state applies a case once."""

from __future__ import annotations

from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import parse_config
from monitor.handler import BatchHandler
from monitor.observer import Observer
from monitor.pipeline import Pipeline
from monitor.sinks.topics import TopicSinks
from monitor.source.feedback import FeedbackReader
from monitor.state.partition import PartitionState
from tests.fakes import FakeProducer, ManualClock

TOPIC = "fb"


class FakeConsumer:
    """Just what FeedbackReader uses of a KafkaConsumer, over an in-memory log."""

    def __init__(self, log: dict[int, list[bytes]]) -> None:
        self.log = log
        self.pos: dict[int, int] = {}
        self.metadata_calls = 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.metadata_calls += 1
        return set(self.log)

    def assign(self, tps: list[TopicPartition]) -> None:
        self.pos = {tp.partition: self.pos.get(tp.partition, 0) for tp in tps}

    def position(self, tp: TopicPartition) -> int:
        return self.pos[tp.partition]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.pos[tp.partition] = offset

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        out = {}
        for p, at in self.pos.items():
            values = self.log[p][at : at + max_records]
            if values:
                out[TopicPartition(TOPIC, p)] = [record(p, at + i, v)
                                                 for i, v in enumerate(values)]
                self.pos[p] = at + len(values)
        return out


def record(partition: int, offset: int, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(topic=TOPIC, partition=partition, leader_epoch=0, offset=offset,
                          timestamp=0, timestamp_type=0, key=None, value=value, headers=[],
                          checksum=None, serialized_key_size=-1,
                          serialized_value_size=len(value), serialized_header_size=-1)


def case(i: int, fraud: bool = True) -> bytes:
    return (f'{{"id": "c{i}", "amount": {5000 + i}, "is_fraud": {int(fraud)}}}').encode()


CFG = parse_config({"fields": {"label": "is_fraud", "numeric": [{"name": "amount"}]},
                    "score": {"warmup": 20}})


def test_nothing_is_read_until_states_say_what_they_need() -> None:
    consumer = FakeConsumer({0: [case(0), case(1)]})
    reader = FeedbackReader(TOPIC, {}, consumer=consumer, clock=ManualClock(0.0))
    assert reader.poll() == []
    reader.position([{0: 1}, {0: 2}])  # the lagging state decides
    assert [r.offset for r in reader.poll()] == [1]
    reader.position([{0: 2}])  # that state left: skip ahead, nothing is re-read
    assert reader.poll() == []


def test_partitions_are_looked_up_again_only_every_refresh_interval() -> None:
    consumer = FakeConsumer({0: []})
    clock = ManualClock(0.0)
    reader = FeedbackReader(TOPIC, {}, consumer=consumer, clock=clock, refresh_s=30.0)
    reader.position([{}])
    calls = consumer.metadata_calls
    for _ in range(50):
        reader.poll()
    assert consumer.metadata_calls == calls  # not once per loop
    consumer.log[1] = [case(7)]  # a partition added later
    clock.now += 31
    assert [(r.partition, r.offset) for r in reader.poll()] == [(1, 0)]


def test_each_state_applies_a_case_once_and_records_how_far_it_got() -> None:
    consumer = FakeConsumer({0: [case(0), case(1), b"{not json", case(3, fraud=False)]})
    reader = FeedbackReader(TOPIC, {}, consumer=consumer, clock=ManualClock(0.0))
    handler = BatchHandler(CFG.fields)
    producer = FakeProducer()
    sinks = TopicSinks(producer, "scored", "dlq")  # type: ignore[arg-type]
    observer = Observer(CFG)
    fresh = PartitionState("tx", 0, Pipeline.build(CFG), restored=True)
    ahead = PartitionState("tx", 1, Pipeline.build(CFG), restored=True, feedback={0: 2})
    states = [fresh, ahead]

    def poll() -> dict[int, int]:
        """One feedback poll handed to the sinks; the prototypes each state holds after."""
        reader.position(st.feedback for st in states)
        result = handler.feedback(reader.poll(), states, reader.first_sighting)
        sinks.feedback(result)
        observer.feedback(result)
        return {st.partition: sum(len(m.fraud) for m in st.pipeline.engine.segments.values())
                for st in states}

    prototypes = poll()
    assert prototypes == {0: 2, 1: 0}  # the one ahead had applied cases 0 and 1 already
    assert fresh.feedback == ahead.feedback == {0: 4} and fresh.dirty and ahead.dirty
    assert observer.totals.feedback == 3 and observer.totals.dead_letters == 1
    # a state restored from an older snapshot: re-read for it alone, counted once
    older = PartitionState("tx", 2, Pipeline.build(CFG), restored=True, feedback={0: 1})
    states.append(older)
    prototypes = poll()
    assert prototypes == {0: 2, 1: 0, 2: 1}
    assert observer.totals.feedback == 3 and observer.totals.dead_letters == 1
    assert [m["topic"] for m in producer.sent] == ["dlq"]
