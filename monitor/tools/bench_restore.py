"""`monitor bench --restore`: one partition's restore time, the changelog read included.

For each layout (`VARIANTS`), one input partition's state is built with `segments`
segments of about `per_segment` events each, through a real `Pipeline` whose engine is
given the vectors (384-dim unit vectors in 4 clusters per segment, as `monitor bench
--engine-only` makes them: no text model, so building 64 x 3,000 events takes seconds).
The daemon's own parts then write and restore it on an embedded broker:

- write: `ensure_output_topics` creates the compacted changelog topic, and the daemon's
  `Checkpointer` (with `daemon_producer`) sends the snapshot and commits the offset;
  `snapshots` > 1 writes that many checkpoints (more events between them), as an
  uncompacted changelog holds them;
- restore, `repeats` times: a fresh group consumer (assigned the partition) and a fresh
  `Changelog` reader, as a starting daemon has, then `restore_partitions`, the call the
  daemon makes on assignment (committed offset, changelog read to its end, decode,
  load). The changelog's `last_restore` splits its part into read and decode; the rest of
  the call (offset look-up, a new pipeline, loading the state, seek) is `load_s`.

Medians and maxima are reported; each restore pays its reader's connection, as a
starting daemon does.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TextIO

import numpy as np
from kafka import TopicPartition

from monitor.config import MonitorConfig, parse_config
from monitor.embed.composite import CompositeEncoder
from monitor.embed.tabular import TabularEncoder
from monitor.errors import FatalError
from monitor.kafka_clients import daemon_producer
from monitor.pipeline import Pipeline
from monitor.sinks.admin import create_topics, ensure_output_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.source.kafka import make_consumer
from monitor.state.changelog import Changelog
from monitor.state.checkpoint import Checkpointer
from monitor.state.partition import PartitionState
from monitor.state.recovery import restore_partitions
from monitor.state.snapshot import Snapshot
from monitor.tools.bench_data import MIXED_FIELDS, _batch_maker

VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # name: (fields, score)
    # tabular-only events: per-field evidence is off, the embedding is the only evidence
    "embedding": ({"segment": "segment", "numeric": [{"name": "amount"}]}, {}),
    # a text field beside 6 numerics, 3 categoricals and a timestamp: per-field evidence
    "mixed_joint": (MIXED_FIELDS, {"text_evidence": "joint"}),
    # the same, the text field judged on its own (its vector is the event's vector)
    "mixed_per_field": (MIXED_FIELDS, {"text_evidence": "per_field"}),
}
BATCH = 256
MAX_SNAPSHOT_BYTES = 64 << 20  # per-field states of 64 segments pass the 16 MiB default
DEFAULT_MAX_SNAPSHOT_BYTES = 16 << 20


class _NoSinks:
    """The checkpoint checks the scored/dead-letter sends first: here there are none."""

    def check(self, timeout_s: float) -> None:
        """Nothing was sent."""


def variant_config(name: str, bootstrap: str, segments: int) -> MonitorConfig:
    fields, score = VARIANTS[name]
    topic = f"bench.restore.{name}"
    return parse_config({
        "fields": fields,
        "score": {**score, "max_segments": max(segments, 1000)},
        "kafka": {"bootstrap_servers": bootstrap, "topics": [topic],
                  "group_id": f"bench-restore-{name}", "scored_topic": f"{topic}.scored",
                  "dead_letter_topic": f"{topic}.dead-letter",
                  "max_snapshot_bytes": MAX_SNAPSHOT_BYTES},
        "http": {"enabled": False},
    })


def _pipelines(cfg: MonitorConfig) -> Callable[[], Pipeline]:
    """New pipelines as `engine_cost` builds them: the engine is given the vectors, so the
    encoder has no text model (its tabular part holds no fields: a few bytes of state)."""
    def new() -> Pipeline:
        return Pipeline(cfg, CompositeEncoder(None, TabularEncoder([], [], 1, False, 20), 0.0))

    return new


def build_state(cfg: MonitorConfig, name: str, segments: int, per_segment: int,
                seed: int = 0) -> tuple[PartitionState, Callable[[int], None]]:
    """The partition state after `segments * per_segment` events, and `more(n)`, which
    feeds it n more events (between checkpoints)."""
    tp_topic = cfg.kafka.topics[0]
    st = PartitionState(tp_topic, 0, _pipelines(cfg)(), restored=True)
    make = _batch_maker(np.random.default_rng(seed), segments, 384, name != "embedding")
    per_field = cfg.score.text_evidence == "per_field"

    def more(n: int) -> None:
        for base in range(st.offset, st.offset + n, BATCH):
            size = min(BATCH, st.offset + n - base)
            events, x = make(size, base)
            st.pipeline.engine.process(events, x, x[:, None, :] if per_field else None)
        st.offset += n
        st.events += n
        st.dirty = True

    # k-means' OpenMP threads crawl on a busy machine: fit the warm-ups on one (engine_cost)
    with importlib.import_module("threadpoolctl").threadpool_limits(limits=1):
        more(segments * per_segment)
    return st, more


def _summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "max": max(values),
            "runs": [round(v, 6) for v in values]}


def restore_once(cfg: MonitorConfig, bootstrap: str, tp: TopicPartition, parts: int,
                 new: Callable[[], Pipeline], producer: Any) -> tuple[dict[str, Any],
                                                                        PartitionState]:
    """One restore as a starting daemon does it; its times and the restored state."""
    k = cfg.kafka
    client = k.client_options(bootstrap)
    with ExitStack() as stack:
        consumer = make_consumer(k, client)
        stack.callback(lambda: consumer.close(autocommit=False))
        consumer.assign([tp])
        changelog = Changelog(producer, k.changelog, parts, client)
        stack.callback(changelog.close)
        t = time.perf_counter()
        states = restore_partitions(consumer, [tp], changelog, None, new,
                                    k.restore_timeout_s, k.feedback_topic)
        total = time.perf_counter() - t
    stats = changelog.last_restore
    if stats is None or tp not in states:
        raise FatalError(f"restore of {tp.topic}:{tp.partition} read no changelog")
    return {"read_s": stats.read_s, "end_wait_s": stats.end_wait_s,
            "decode_s": stats.decode_s, "load_s": total - stats.total_s, "total_s": total,
            "records": stats.records, "value_bytes": stats.value_bytes,
            "decodes": stats.decodes}, states[tp]


def decode_and_load(data: bytes, new: Callable[[], Pipeline], repeats: int
                    ) -> dict[str, Any]:
    """The first snapshot decoded once and loaded into a new pipeline, without Kafka:
    `load_once_s` is `PartitionState.load` alone."""
    decode, load = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        snap = Snapshot.decode(data)
        decode.append(time.perf_counter() - t)
        st = PartitionState(snap.topic, snap.partition, new(), restored=True)
        t = time.perf_counter()
        st.load(snap)
        load.append(time.perf_counter() - t)
    return {"decode_once_s": _summary(decode), "load_once_s": _summary(load)}


def run_variant(name: str, bootstrap: str, segments: int, per_segment: int, repeats: int,
                snapshots: int, log: TextIO) -> dict[str, Any]:
    cfg = variant_config(name, bootstrap, segments)
    k = cfg.kafka
    client = k.client_options(bootstrap)
    create_topics(bootstrap, [(k.topics[0], 1)])
    parts = ensure_output_topics(bootstrap, k, client)
    tp = TopicPartition(k.topics[0], 0)
    out: dict[str, Any] = {"text_evidence": cfg.score.text_evidence,
                           "per_field_evidence": name != "embedding",
                           "segments": segments, "events_per_segment": per_segment}
    t = time.perf_counter()
    st, more = build_state(cfg, name, segments, per_segment)
    out["build_s"] = time.perf_counter() - t
    out["segments_live"] = st.pipeline.engine.segment_count
    out["segments_ready"] = sum(1 for _, v in st.pipeline.engine.views() if v.ready)
    with ExitStack() as stack:
        producer = daemon_producer(k, client)
        stack.callback(producer.close)
        owner = make_consumer(k, client)  # commits the offsets, as the daemon's consumer
        stack.callback(lambda: owner.close(autocommit=False))
        owner.assign([tp])
        changelog = Changelog(producer, k.changelog, parts, client)
        checkpointer = Checkpointer(owner, producer, _NoSinks(), changelog, None,
                                    max_snapshot_bytes=k.max_snapshot_bytes)
        t = time.perf_counter()
        data = st.snapshot().encode()
        out["encode_s"] = time.perf_counter() - t
        out["snapshot_bytes"] = len(data)
        out["snapshot_bytes_per_segment"] = len(data) / max(1, out["segments_live"])
        out["over_default_max_snapshot_bytes"] = len(data) > DEFAULT_MAX_SNAPSHOT_BYTES
        writes = []
        for i in range(snapshots):
            if i:
                more(BATCH)  # the next checkpoint's state: a few more events
            t = time.perf_counter()
            checkpointer.checkpoint([st])
            writes.append(time.perf_counter() - t)
        out["checkpoint_s"] = _summary(writes)
        out["committed_offset"] = st.offset
        del st  # only the restored copies from here on
        runs = []
        for i in range(repeats):
            r, restored = restore_once(cfg, bootstrap, tp, parts, _pipelines(cfg), producer)
            if restored.offset != out["committed_offset"]:
                raise FatalError(f"restored offset {restored.offset}, committed "
                                 f"{out['committed_offset']}")
            print(f"{name}: restore {i + 1}/{repeats} {r['total_s'] * 1e3:,.0f} ms (read "
                  f"{r['read_s'] * 1e3:,.0f}, decode {r['decode_s'] * 1e3:,.0f}, load "
                  f"{r['load_s'] * 1e3:,.0f})", file=log, flush=True)
            runs.append(r)
    for key in ("read_s", "end_wait_s", "decode_s", "load_s", "total_s"):
        out[key] = _summary([r[key] for r in runs])
    out.update(decode_and_load(data, _pipelines(cfg), repeats))
    for key in ("records", "value_bytes", "decodes"):
        out[f"changelog_{key}"] = runs[-1][key]
    return out


def run(segments: int, per_segment: int, repeats: int, snapshots: int, stop: threading.Event,
        variants: list[str] | None = None, log: TextIO = sys.stderr) -> dict[str, Any]:
    """Every variant on one embedded broker (each with its own topics and group)."""
    chosen = variants or list(VARIANTS)
    report: dict[str, Any] = {
        "mode": "restore", "segments": segments, "events_per_segment": per_segment,
        "repeats": repeats, "snapshots": snapshots, "broker": "embedded (Tansu, memory)",
        "vectors": "given: 384-dim unit vectors, 4 clusters per segment (no text model)",
        "max_snapshot_bytes": MAX_SNAPSHOT_BYTES, "variants": {}}
    with EmbeddedBroker() as broker:
        for name in chosen:
            if stop.is_set():
                break
            print(f"{name}: building {segments} segments x {per_segment:,} events", file=log,
                  flush=True)
            report["variants"][name] = run_variant(name, broker.bootstrap, segments,
                                                   per_segment, repeats, snapshots, log)
    return report
