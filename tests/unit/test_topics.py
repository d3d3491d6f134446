"""TopicSinks with a fake producer: scored records, dead letters, delivery checks."""

from __future__ import annotations

import orjson
import pytest
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import parse_config
from monitor.errors import FatalError
from monitor.events import Score
from monitor.handler import BatchHandler
from monitor.kafka_clients import check_futures
from monitor.pipeline import Pipeline
from monitor.sinks.topics import (
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TIMESTAMP,
    H_TOPIC,
    TopicSinks,
    scored_record,
)
from monitor.state.partition import PartitionState
from tests.fakes import FakeFuture, FakeProducer

README_FIELDS = {"id", "segment", "score", "p_value", "outlier", "fraud_similarity",
                 "normal_similarity", "risk", "centroid", "warming_up", "driver", "evidence",
                 "key", "topic",
                 "partition", "offset", "timestamp"}


def _score(eid: str, warming: bool = False) -> Score:
    return Score(eid, "GB", 0.25, None if warming else 0.004, not warming, 0.1, 0.75, 0.996,
                 -1 if warming else 3, warming)


def test_scored_records_carry_the_documented_fields_and_their_source() -> None:
    producer = FakeProducer()
    sinks = TopicSinks(producer, "scored", "dead")  # type: ignore[arg-type]
    sinks.scored("payments", 4, [(_score("e1"), 100, b"card-9", 1_700_000_000.5),
                                 (_score("e2", warming=True), 101, None, None)])
    assert len(sinks.pending) == 2
    first, second = producer.sent
    assert first["topic"] == second["topic"] == "scored"
    body = orjson.loads(first["value"])
    assert set(body) == README_FIELDS
    assert body == {"id": "e1", "segment": "GB", "score": 0.25, "p_value": 0.004,
                    "outlier": True, "fraud_similarity": 0.1, "normal_similarity": 0.75,
                    "risk": 0.996, "centroid": 3, "warming_up": False, "driver": "",
                    "evidence": None, "key": "card-9",
                    "topic": "payments", "partition": 4, "offset": 100,
                    "timestamp": 1_700_000_000.5}
    assert first["key"] == b"card-9"  # keyed like the input
    body2 = orjson.loads(second["value"])
    assert (body2["p_value"], body2["warming_up"], body2["key"], body2["offset"]) == (
        None, True, None, 101)
    assert second["key"] == b"e2"  # no input key: keyed by event id


def test_scored_record_decodes_a_binary_key_leniently() -> None:
    row = scored_record(_score("e"), "t", 0, 1, b"\xffab", None)
    assert row["key"] == "\ufffdab"


def test_dead_letters_keep_the_original_bytes_and_carry_reason_and_source() -> None:
    producer = FakeProducer()
    sinks = TopicSinks(producer, "scored", "dead")  # type: ignore[arg-type]
    raw = b'{"amount": "\xff not a number"'
    sinks.dead_letter(raw, b"k1", "not JSON: unexpected end", "payments", 2, 77,
                      timestamp_ms=1_700_000_000_123)
    sinks.dead_letter(None, None, "tombstone", "payments", 0, 5)
    assert len(sinks.pending) == len(producer.sent) == 2
    first, second = producer.sent
    assert first["topic"] == "dead" and first["value"] == raw and first["key"] == b"k1"
    assert dict(first["headers"]) == {H_REASON: b"not JSON: unexpected end",
                                      H_TOPIC: b"payments", H_PARTITION: b"2",
                                      H_OFFSET: b"77", H_TIMESTAMP: b"1700000000123"}
    assert H_TIMESTAMP not in dict(second["headers"])
    assert second["value"] is None and dict(second["headers"])[H_OFFSET] == b"5"
    assert second["key"] == b""  # kafka-python refuses a record with neither key nor value


def _record(offset: int, value: bytes | None, key: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(topic="payments", partition=3, leader_epoch=0, offset=offset,
                          timestamp=1_700_000_000_000, timestamp_type=0, key=key, value=value,
                          headers=[], checksum=None, serialized_key_size=-1,
                          serialized_value_size=-1, serialized_header_size=-1)


def test_a_tombstone_is_dead_lettered_with_its_null_value_and_the_reason() -> None:
    cfg = parse_config({"fields": {"id": "id", "numeric": [{"name": "amount"}]}})
    handler = BatchHandler(cfg.fields)
    producer = FakeProducer()
    sinks = TopicSinks(producer, "scored", "dead")  # type: ignore[arg-type]
    state = PartitionState("payments", 3, Pipeline.build(cfg), restored=True)
    tombstones = [_record(10, None, b"card-9"), _record(11, None, None)]
    result = handler.process(state, [*tombstones, _record(12, b'{"id": "e", "amount": 5}',
                                                          None)])
    assert result is not None and result.next_offset == 13 and len(result.dead_letters) == 2
    sinks.batch(result, state.pipeline)
    feedback = handler.feedback([_record(13, None, b"card-7")], [], lambda r: True)
    sinks.feedback(feedback)
    assert len(feedback.dead_letters) == 1
    assert [(m["topic"], m["value"], m["key"]) for m in producer.sent] == [
        ("dead", None, b"card-9"),
        # kafka-python raises ValueError for a record with neither key nor value
        ("dead", None, b""),
        ("scored", producer.sent[2]["value"], b"e"),
        ("dead", None, b"card-7")]
    dead = [dict(m["headers"]) for m in producer.sent if m["topic"] == "dead"]
    assert [h[H_REASON] for h in dead] == [b"tombstone: null value"] * 3
    assert [h[H_OFFSET] for h in dead] == [b"10", b"11", b"13"]


def test_check_surfaces_a_failed_delivery_and_clears_pending() -> None:
    producer = FakeProducer(fail_topics=["dead"])
    sinks = TopicSinks(producer, "scored", "dead")  # type: ignore[arg-type]
    sinks.scored("in", 0, [(_score("a"), 1, None, None)])
    sinks.dead_letter(b"x", None, "bad", "in", 0, 2)
    with pytest.raises(FatalError, match=r"1 output record\(s\) not delivered.*dead"):
        sinks.check(timeout_s=3.0)
    assert sinks.pending == []
    sinks.scored("in", 0, [(_score("b"), 3, None, None)])
    sinks.check()  # later sends that succeed pass


def test_check_futures_waits_for_every_future_and_counts_failures() -> None:
    futures = [FakeFuture(), FakeFuture(RuntimeError("one")), FakeFuture(RuntimeError("two"))]
    with pytest.raises(FatalError, match=r"2 changelog record\(s\).*one"):
        check_futures(futures, 7.0, "changelog")  # type: ignore[arg-type]
    assert [f.timeouts for f in futures] == [[7.0], [7.0], [7.0]]
    check_futures([FakeFuture()], 1.0, "output")  # type: ignore[list-item]
