"""`fields.segment_buckets`: a hot segment split into buckets by a stable hash of the
event id, at decode, so the router spreads the buckets over scorer partitions."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from monitor.config import parse_config
from monitor.decode import decode_json, decode_record
from monitor.errors import ConfigError, DecodeError
from monitor.handler import BatchHandler
from monitor.pipeline import Pipeline
from monitor.repartition.router import Router
from monitor.sinks.labels import bounded_label
from monitor.sinks.topics import TopicSinks
from monitor.state.partition import PartitionState
from monitor.state.seed import Fitted, fitted_config, read_seed, seed_of, write_seed

FIELDS: dict[str, Any] = {"id": "id", "segment": "shop", "numeric": [{"name": "amount"}],
                          "segment_buckets": {"hot": 4, "7": 2}}


def _fields(**change: Any) -> Any:
    return parse_config({"fields": {**FIELDS, **change}}).fields


def _seg(shop: Any, event_id: Any = "e1", **change: Any) -> str:
    record = {"id": event_id, "shop": shop, "amount": 1.0}
    return decode_record(record, _fields(**change), "f:1").segment


def test_a_listed_segment_gets_the_crc32_bucket_of_its_id() -> None:
    for i in range(50):
        assert _seg("hot", f"tx-{i}") == f"hot#{zlib.crc32(f'tx-{i}'.encode()) % 4}"
    raw = b'{"id": "tx-9", "shop": "hot", "amount": 2}'
    assert decode_json(raw, _fields(), "x").segment == decode_json(raw, _fields(), "y").segment
    assert _seg(7, "tx-9") in {"7#0", "7#1"}  # a number keyed as its text, like the segment


def test_the_bucket_does_not_depend_on_the_process_hash_seed() -> None:
    code = ("from monitor.config import parse_config; from monitor.decode import decode_record;"
            f"f = parse_config({{'fields': {FIELDS!r}}}).fields;"
            "print(' '.join(decode_record({'id': f'tx-{i}', 'shop': 'hot', 'amount': 1}, f,"
            " '').segment for i in range(20)))")
    root = Path(__file__).resolve().parents[2]
    runs = {tuple(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=root,
                           env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
                           ).stdout.split())
            for seed in ("1", "2")}
    assert runs == {tuple(_seg("hot", f"tx-{i}") for i in range(20))}


@pytest.mark.parametrize("ids", [
    [str(i) for i in range(10_000)],
    [f"events:3:{i}" for i in range(10_000)],  # the daemon's ids without fields.id
    [f"{i * 7919:032x}" for i in range(10_000)],
])
def test_buckets_share_the_events_roughly_evenly(ids: list[str]) -> None:
    f = _fields(segment_buckets={"hot": 4, "warm": 3})
    for shop, n in (("hot", 4), ("warm", 3)):
        counts = Counter(decode_record({"id": i, "shop": shop, "amount": 1.0}, f, "").segment
                         for i in ids)
        assert set(counts) == {f"{shop}#{b}" for b in range(n)}
        assert all(abs(c - len(ids) / n) < 0.1 * len(ids) / n for c in counts.values()), counts


def test_unlisted_segments_and_the_default_segment_are_unchanged() -> None:
    assert _seg("cold") == "cold"
    assert _seg(None) == "default" and _seg("") == "default"
    assert _seg(None, segment_buckets={"default": 2}) in {"default#0", "default#1"}
    assert _seg("hot", segment_buckets={}) == "hot"
    assert _seg("hot#1", segment_buckets={}) == "hot#1"


def test_without_an_id_field_the_fallback_id_picks_the_bucket() -> None:
    f = parse_config({"fields": {**FIELDS, "id": None}}).fields
    segs = {decode_record({"shop": "hot", "amount": 1.0}, f, f"events:0:{i}").segment
            for i in range(40)}
    assert segs == {"hot#0", "hot#1", "hot#2", "hot#3"}


def test_an_unlisted_value_that_reads_as_a_bucket_is_dead_lettered() -> None:
    with pytest.raises(DecodeError, match=r"segment 'hot#2' reads as bucket 2 of 'hot'"):
        _seg("hot#2")
    # only the names the buckets use are refused
    assert [_seg(s) for s in ("hot#4", "hot#02", "hot#x", "hot#", "hot#²", "cold#1",
                              "hot#" + "9" * 5000)] == [
        "hot#4", "hot#02", "hot#x", "hot#", "hot#²", "cold#1", "hot#" + "9" * 5000]


def test_config_validation() -> None:
    assert _fields().segment_buckets == {"hot": 4, "7": 2}
    assert parse_config({"fields": {"numeric": [{"name": "x"}]}}).fields.segment_buckets == {}
    with pytest.raises(ConfigError, match=r"fields\.segment_buckets.*at least 2: "
                                          r"\{'cold': 0, 'hot': 1\}"):
        _fields(segment_buckets={"hot": 1, "warm": 2, "cold": 0})
    with pytest.raises(ConfigError, match=r"fields\.segment_buckets\.hot"):
        _fields(segment_buckets={"hot": "many"})
    with pytest.raises(ConfigError, match=r"set fields\.segment too"):
        parse_config({"fields": {"numeric": [{"name": "x"}], "segment_buckets": {"a": 2}}})
    with pytest.raises(ConfigError, match="list that name instead"):
        _fields(segment_buckets={"": 2})
    with pytest.raises(ConfigError, match=r"fields\.segment_bucket"):
        parse_config({"fields": {**FIELDS, "segment_bucket": {"a": 2}}})


class _Future:
    def get(self, timeout: float | None = None) -> None:
        return None


class _Producer:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.sent: list[dict[str, Any]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def send(self, topic: str, **kw: Any) -> _Future:
        self.sent.append({"topic": topic, **kw})
        return _Future()

    def flush(self, timeout: float | None = None) -> None:
        pass


class _Consumer:
    def commit(self, offsets: Any) -> None:
        pass


CONFIG: dict[str, Any] = {
    "fields": {**FIELDS, "id": None, "segment_buckets": {"hot": 8}},
    "score": {"warmup": 20, "k": 2, "learn_block": 8},
    "kafka": {"repartition": True, "group_id": "g", "topics": ["events"]},
}


def _router(partitions: int) -> tuple[Router, _Producer]:
    cfg = parse_config(CONFIG)
    producer = _Producer(partitions)
    return Router(cfg.kafka, cfg.fields, consumer=_Consumer(), producer=producer,
                  dead_letters=TopicSinks(producer, "s", "dlq")), producer


def test_the_buckets_of_a_segment_land_on_several_scorer_partitions() -> None:
    router, _ = _router(8)
    placed = {router.partition_of(f"hot#{b}") for b in range(8)}
    assert len(placed) > 1, placed  # murmur2 of hot#0..hot#7 over 8 partitions: 5 of them
    assert len({router.partition_of("hot")}) == 1


def test_router_and_scorer_agree_on_each_events_bucket() -> None:
    """The router decodes with the source offset as the id, the scorer with the same
    source offset read back from the headers: each bucket's events meet in the partition
    the router picked for that bucket."""
    router, producer = _router(8)
    body = orjson.dumps({"shop": "hot", "amount": 1.0})
    records = [ConsumerRecord("events", 2, -1, i, 1700, 0, b"card", body, [], None, 6,
                              len(body), -1) for i in range(64)]
    router.route({TopicPartition("events", 2): records})
    forwards = [s for s in producer.sent if s["topic"] == "g.by-segment"]
    assert len({s["partition"] for s in forwards}) > 1
    cfg = parse_config(CONFIG)
    handler = BatchHandler(cfg.fields, repartitioned=True)
    for part in {s["partition"] for s in forwards}:
        mine = [s for s in forwards if s["partition"] == part]
        internal = [ConsumerRecord("g.by-segment", part, -1, i, 0, 0, s["key"], s["value"],
                                   s["headers"], None, 4, len(s["value"]), -1)
                    for i, s in enumerate(mine)]
        st = PartitionState("g.by-segment", part, Pipeline.build(cfg))
        res = handler.process(st, internal)
        assert res is not None and len(res.events) == len(mine)
        assert {router.partition_of(e.segment) for e in res.events} == {part}


def test_each_bucket_warms_up_on_its_own() -> None:
    """The stated cost: N buckets, N warm-ups, each as long as the whole segment's."""
    def warming(buckets: dict[str, int]) -> Counter[str]:
        cfg = parse_config({**CONFIG, "fields": {**CONFIG["fields"],
                                                 "segment_buckets": buckets}})
        events = [decode_record({"shop": "hot", "amount": float(i % 13)}, cfg.fields, str(i))
                  for i in range(400)]
        scores, _ = Pipeline.build(cfg).process(events)
        return Counter(s.segment for s in scores if s.warming_up)

    whole = warming({})
    assert set(whole) == {"hot"} and whole["hot"] >= 20
    assert warming({"hot": 4}) == {f"hot#{b}": whole["hot"] for b in range(4)}


def test_a_seed_fitted_with_other_buckets_is_refused_with_the_reason(tmp_path: Path) -> None:
    def config(buckets: dict[str, int]) -> Any:
        return parse_config({"fields": {**FIELDS, "segment_buckets": buckets}})

    path = tmp_path / "seed.mon"
    fitted = Fitted(encoder={}, segments={}, ready=0)
    write_seed(path, seed_of(fitted, config({"hot": 4}), 0, 0, "h.jsonl", 0.0))
    assert read_seed(path, config({"hot": 4})).header["segments"] == 0
    with pytest.raises(ConfigError, match=r"fields\.segment_buckets\.hot: 4 in the file, "
                                          r"2 here"):
        read_seed(path, config({"hot": 2}), "checkpoint.seed_file")
    with pytest.raises(ConfigError, match=r"fields\.segment_buckets\.hot: 4 in the file, "
                                          r"unset here"):
        read_seed(path, config({}))
    write_seed(path, seed_of(fitted, config({}), 0, 0, "h.jsonl", 0.0))
    with pytest.raises(ConfigError, match=r"fields\.segment_buckets\.cold: unset in the "
                                          r"file, 3 here"):
        read_seed(path, config({"cold": 3}))
    # no buckets: the key is left out, so seeds fitted before the key existed stay valid
    assert "segment_buckets" not in fitted_config(config({}))["fields"]


def test_bucket_names_stay_apart_as_bounded_labels() -> None:
    long = "m" * 80
    names = [_seg(long, f"tx-{i}", segment_buckets={long: 4}) for i in range(40)]
    labels = {bounded_label(n) for n in names}
    assert len(set(names)) == len(labels) == 4 and all(len(x) <= 64 for x in labels)
    assert bounded_label("GB#3") == "GB#3"
