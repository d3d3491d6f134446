"""Repartition by segment, without a broker: the header codec, the scorer's dedupe, the
handler's source-naming results, the partition state's source offsets across a snapshot,
and the config and role checks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import parse_config
from monitor.errors import ConfigError
from monitor.handler import BatchHandler
from monitor.pipeline import Pipeline
from monitor.repartition.dedupe import select
from monitor.repartition.origin import Origin, OriginError, read_origin
from monitor.repartition.roles import check_role
from monitor.repartition.wiring import scorer_config
from monitor.state.partition import PartitionState
from monitor.state.snapshot import Snapshot

CONFIG: dict[str, Any] = {
    "fields": {"id": "id", "segment": "country", "numeric": [{"name": "amount"}]},
    "score": {"warmup": 20, "k": 2, "learn_block": 8},
    "kafka": {"repartition": True, "group_id": "g", "topics": ["events"]},
}


def _record(offset: int, origin: Origin | None, value: bytes | None = None) -> ConsumerRecord:
    body = value if value is not None else orjson.dumps(
        {"id": f"e{offset}", "country": "GB", "amount": 10.0 + offset % 7})
    headers = origin.headers() if origin is not None else []
    return ConsumerRecord("g.by-segment", 0, -1, offset, 0, 0, b"card", body, headers, None,
                          4, len(body), -1)


def test_origin_round_trips_and_refuses_partial_headers() -> None:
    o = Origin("events", 2, 41, None)
    assert read_origin(o.headers()) == o
    with pytest.raises(OriginError, match="offset"):
        read_origin([(k, v) for k, v in o.headers() if not k.endswith("offset")])
    with pytest.raises(OriginError, match="malformed"):
        read_origin([*o.headers()[:2], ("monitor.source.offset", b"x")])


def test_select_drops_what_was_applied_and_duplicates_within_a_batch() -> None:
    recs = [_record(i, Origin("events", i % 2, i // 2)) for i in range(6)]
    dup = _record(6, Origin("events", 0, 1))  # the router's second copy of source 0:1
    sel = select([*recs, dup, _record(7, None)], {("events", 1): 0})
    assert [(o.partition, o.offset) for o in sel.origins] == [(0, 0), (0, 1), (1, 1),
                                                              (0, 2), (1, 2)]
    assert sel.sources == {("events", 0): 2, ("events", 1): 2}
    assert len(sel.dead) == 1 and sel.dead[0].reason.startswith("repartition: no ")


def test_handler_names_the_source_and_skips_duplicates_across_batches() -> None:
    cfg = parse_config(CONFIG)
    st = PartitionState("g.by-segment", 0, Pipeline.build(cfg))
    handler = BatchHandler(cfg.fields, repartitioned=True)
    first = [_record(i, Origin("events", 1, 100 + i)) for i in range(5)]
    res = handler.process(st, first)
    assert res is not None and res.origins is not None
    st.apply(res)
    assert res.offsets == [100, 101, 102, 103, 104] and res.next_offset == 5
    assert {o.partition for o in res.origins} == {1} and st.sources == {("events", 1): 104}
    replayed = [_record(5 + i, Origin("events", 1, 102 + i)) for i in range(5)]
    res2 = handler.process(st, replayed)
    assert res2 is not None
    assert res2.offsets == [105, 106] and res2.received == 2 and res2.next_offset == 10
    bad = handler.process(st, [_record(10, Origin("events", 1, 107), b"{not json")])
    assert bad is not None and bad.dead_letters[0].offset == 107
    assert bad.dead_letters[0].topic == "events"


def test_source_offsets_survive_a_snapshot_and_are_absent_without_repartition() -> None:
    cfg = parse_config(CONFIG)
    st = PartitionState("g.by-segment", 0, Pipeline.build(cfg))
    assert "sources" not in st.snapshot().state
    st.sources = {("events", 0): 12, ("other", 3): 4}
    fresh = PartitionState("g.by-segment", 0, Pipeline.build(cfg))
    fresh.load(Snapshot.decode(st.snapshot().encode()))
    assert fresh.sources == st.sources


def test_config_and_roles() -> None:
    cfg = parse_config(CONFIG)
    assert cfg.kafka.by_segment_topic == "g.by-segment"
    assert cfg.kafka.router_group == "g.router"
    assert scorer_config(cfg).kafka.topics == ["g.by-segment"]
    fields = CONFIG["fields"]
    assert not parse_config({"fields": fields}).kafka.repartition
    with pytest.raises(ConfigError, match="internal topic"):
        parse_config({"fields": fields, "kafka": {"repartition": True,
                                                  "topics": ["monitor.by-segment"]}})
    with pytest.raises(ConfigError, match="by-segment"):
        parse_config({"fields": fields, "kafka": {"repartition": True, "pattern": "mon.*"}})
    plain = parse_config({"fields": CONFIG["fields"]})
    with pytest.raises(ConfigError, match="--role router"):
        check_role(plain, "router")
    check_role(plain, "both")


class _Future:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class _Producer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail
        self.flushed = 0

    def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def send(self, topic: str, **kw: Any) -> _Future:
        self.sent.append({"topic": topic, **kw})
        return _Future(RuntimeError("broker said no") if self.fail else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed += 1


class _Consumer:
    def __init__(self) -> None:
        self.commits: list[Any] = []

    def commit(self, offsets: Any) -> None:
        self.commits.append(offsets)


def _router(producer: _Producer, consumer: _Consumer) -> Any:
    from monitor.repartition.router import Router
    from monitor.sinks.topics import TopicSinks

    cfg = parse_config(CONFIG)
    return Router(cfg.kafka, cfg.fields, consumer=consumer, producer=producer,
                  dead_letters=TopicSinks(producer, "s", "dlq"))


def _input(offset: int, value: bytes | None = None) -> ConsumerRecord:
    body = value if value is not None else orjson.dumps(
        {"id": f"e{offset}", "country": ["GB", "FR"][offset % 2], "amount": 1.0})
    return ConsumerRecord("events", 1, -1, offset, 1700, 0, b"card-7", body, [], None, 6,
                          len(body), -1)


def test_router_forwards_by_segment_dead_letters_bad_input_and_commits_after_acks() -> None:
    from kafka import TopicPartition

    producer, consumer = _Producer(), _Consumer()
    router = _router(producer, consumer)
    tp = TopicPartition("events", 1)
    router.route({tp: [_input(10), _input(11), _input(12, b"{oops"), _input(13)]})
    forwards = [s for s in producer.sent if s["topic"] == "g.by-segment"]
    assert [read_origin(s["headers"]).offset for s in forwards] == [10, 11, 13]
    assert all(s["key"] == b"card-7" for s in forwards)  # the input's key is kept
    gb = {s["partition"] for s in forwards if orjson.loads(s["value"])["country"] == "GB"}
    assert len(gb) == 1 and gb == {router.partition_of("GB")}
    dead = [s for s in producer.sent if s["topic"] == "dlq"]
    assert len(dead) == 1 and dict(dead[0]["headers"])["monitor.source.offset"] == b"12"
    assert producer.flushed == 1 and consumer.commits[0][tp].offset == 14


def test_router_commits_nothing_when_a_forward_fails() -> None:
    from kafka import TopicPartition

    from monitor.errors import FatalError

    producer, consumer = _Producer(fail=True), _Consumer()
    with pytest.raises(FatalError, match="repartitioned"):
        _router(producer, consumer).route({TopicPartition("events", 0): [_input(0)]})
    assert consumer.commits == []
