"""A card-keyed stream of six segments with one drifting, and what the repartition tests
read back: warm-ups per segment, drift alarms from the daemon logs, their detection delay
in segment events, and where each segment's model lives."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from daemon_helpers import TABULAR_FIELDS, read_all
from kafka import KafkaProducer

from monitor.repartition.dedupe import select
from monitor.state.snapshot import Snapshot

SEGMENTS = [f"s{i}" for i in range(6)]
DRIFTING = "s2"
FIELDS: dict[str, Any] = {**TABULAR_FIELDS, "segment": "seg"}
ALARM = re.compile(r"drift in (\S+):(\d+) segment '(\w+)' at event (\d+)")


@dataclass
class Stream:
    lines: list[bytes]
    ids: list[str]
    segment_pos: dict[str, int]  # event id -> its position in its segment's stream
    onset: int  # position in the drifting segment's stream of its first drifted event
    by_partition: dict[int, list[str]]  # input partition -> event ids, in offset order


def make_stream(per_segment: int, drift_at: int, cards: int = 300,
                seed: int = 11) -> list[dict[str, Any]]:
    """`per_segment` events of each segment, interleaved at random; the drifting segment's
    events from its `drift_at`-th on come from another distribution (larger amounts, a new
    country and category)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(np.arange(len(SEGMENTS)), per_segment))
    seen: Counter[str] = Counter()
    rows = []
    for i, s in enumerate(order):
        seg = SEGMENTS[int(s)]
        n = seen[seg]
        seen[seg] += 1
        drifted = seg == DRIFTING and n >= drift_at
        rows.append({
            "id": f"tx-{i}", "ts": 1_700_000_000 + i, "seg": seg,
            "card": f"card-{int(rng.integers(cards))}",
            "amount": float(rng.lognormal(6.5 if drifted else 3.0 + 0.2 * int(s), 0.4)),
            "country": "BR" if drifted else str(rng.choice(["GB", "FR", "DE"], p=[.6, .3, .1])),
            "category": "electronics" if drifted else str(rng.choice(["food", "fuel", "travel"])),
            "merchant": f"m{int(rng.integers(20))}",
        })
    return rows


def produce_keyed(bootstrap: str, topic: str, rows: list[dict[str, Any]], drift_at: int,
                  chunk: int = 0, pause_s: float = 0.0) -> Stream:
    """Keyed by card id (Kafka's partitioner places them); every delivery checked. With
    `chunk`, a live stream: `chunk` events, then a pause (a backlog lets a consumer read
    one partition far ahead of the others, which is not event order)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
    lines = [orjson.dumps(r) for r in rows]
    futures = []
    for i, (r, line) in enumerate(zip(rows, lines, strict=True)):
        futures.append(producer.send(topic, key=r["card"].encode(), value=line))
        if chunk and i % chunk == chunk - 1:
            producer.flush()
            time.sleep(pause_s)
    producer.flush()
    placed = sorted((f.get(timeout=30).partition, f.get(timeout=30).offset, r["id"])
                    for f, r in zip(futures, rows, strict=True))
    producer.close()
    by_partition: dict[int, list[str]] = {}
    for p, _, event_id in placed:
        by_partition.setdefault(p, []).append(event_id)
    pos: dict[str, int] = {}
    seen: Counter[str] = Counter()
    for r in rows:
        pos[r["id"]] = seen[r["seg"]]
        seen[r["seg"]] += 1
    return Stream(lines, [r["id"] for r in rows], pos, drift_at, by_partition)


def warmups(bootstrap: str, scored_topic: str) -> dict[str, int]:
    """Scored records per segment that were still warming up (no p-value)."""
    out: Counter[str] = Counter()
    for r in read_all(bootstrap, scored_topic, 3):
        row = orjson.loads(r.value)
        if row["p_value"] is None:
            out[row["segment"]] += 1
    return {s: out[s] for s in SEGMENTS}


def alarms(logs: list[str]) -> list[tuple[str, int, str, int]]:
    """(topic, partition, segment, stream index) of every drift alarm the daemons logged."""
    return [(m[1], int(m[2]), m[3], int(m[4])) for text in logs for m in ALARM.finditer(text)]


def internal_order(bootstrap: str, topic: str) -> tuple[dict[int, list[str]], int]:
    """Event ids of each internal partition in the order its scorer applied them (offset
    order, the router's duplicates dropped as the scorer drops them), and how many
    duplicates there were."""
    parts: dict[int, list[Any]] = {}
    for r in read_all(bootstrap, topic, 3):
        parts.setdefault(r.partition, []).append(r)
    out, dups = {}, 0
    for p, records in parts.items():
        records.sort(key=lambda r: r.offset)
        sel = select(records, {})
        dups += len(records) - len(sel.records)
        out[p] = [orjson.loads(r.value)["id"] for r in sel.records]
    return out, dups


def delays(found: list[tuple[str, int, str, int]], order: dict[int, list[str]],
           stream: Stream) -> list[int]:
    """Per alarm in the drifting segment: segment events from the onset to the event the
    alarm fired at (the partition's stream index -> event id -> segment position)."""
    return sorted(stream.segment_pos[order[p][index]] - stream.onset
                  for _, p, seg, index in found if seg == DRIFTING)


def segment_homes(bootstrap: str, changelog: str) -> dict[str, list[int]]:
    """Segment -> the partitions whose latest snapshot holds a model of it."""
    latest: dict[bytes, Any] = {}
    for r in sorted(read_all(bootstrap, changelog, 3), key=lambda r: (r.partition, r.offset)):
        if r.value is not None:
            latest[r.key] = r.value
    homes: dict[str, list[int]] = {}
    for value in latest.values():
        snap = Snapshot.decode(value)
        for name in snap.state["engine"]["segments"]:
            homes.setdefault(name, []).append(snap.partition)
    return {s: sorted(p) for s, p in homes.items()}
