"""Issue 13, must-show 3: kill -9 of the router and of the scorer, each mid-stream. After
the restarts every input offset is scored at least once, and the scorer's state equals
that of an uninterrupted scorer over the same stream without the router's duplicates
(digest for digest, as test_daemon_recovery does for the plain daemon)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from daemon_helpers import (
    DaemonProcess,
    committed,
    free_port,
    local_snapshot,
    new_topic,
    read_all,
    unique,
    wait_until,
    write_config,
)
from kafka import KafkaProducer
from repartition_helpers import DRIFTING, FIELDS, make_stream, produce_keyed

from monitor.repartition.dedupe import select
from monitor.sinks.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.state.snapshot import state_digest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

PARTS = 3


def _config(tmp: Path, bootstrap: str, topic: str, group: str, port: int, state: Path,
            name: str) -> Path:
    return write_config(tmp / f"{name}.yaml", bootstrap, topic, group, http_port=port,
                        state_dir=state, fields=FIELDS, score={"warmup": 256},
                        checkpoint={"on_idle": False},
                        kafka={"repartition": True, "scored_topic": f"{group}.scored",
                               "max_batch_events": 50})


def _internal(bootstrap: str, topic: str) -> dict[int, list[Any]]:
    parts: dict[int, list[Any]] = {}
    for r in read_all(bootstrap, topic, PARTS):
        parts.setdefault(r.partition, []).append(r)
    return {p: sorted(v, key=lambda r: r.offset) for p, v in parts.items()}


def _copy(bootstrap: str, parts: dict[int, list[Any]], topic: str) -> int:
    """Records to `topic`, partition for partition, headers and all; returns how many."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10)
    futures = [producer.send(topic, key=r.key, value=r.value, partition=p,
                             headers=list(r.headers), timestamp_ms=r.timestamp)
               for p, records in parts.items() for r in records]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()
    return len(futures)


def _covered(bootstrap: str, scored: str) -> set[tuple[int, int]]:
    return {(row["partition"], row["offset"]) for row in
            (orjson.loads(r.value) for r in read_all(bootstrap, scored, PARTS, quiet_polls=1))}


def test_kill9_router_and_scorer_mid_stream(broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group = new_topic(bootstrap, PARTS), unique("g-crash")
    internal, state = f"{group}.by-segment", tmp_path / "state"
    rows = make_stream(1500, 1000)
    port = free_port()
    cfg = _config(tmp_path, bootstrap, topic, group, port, state, "crash")
    scorer = DaemonProcess(cfg, tmp_path / "scorer.log", port, ("--role", "scorer")).start()
    router_port = free_port()  # the router process serves its own /healthz, /metrics
    router_env = {"MONITOR__HTTP__PORT": str(router_port)}
    router = DaemonProcess(cfg, tmp_path / "router.log", router_port, ("--role", "router"),
                           router_env).start()
    fed: list[Any] = []
    feeder = threading.Thread(target=lambda: fed.append(produce_keyed(
        bootstrap, topic, rows, 1000, chunk=30, pause_s=0.1)))
    injected = 0
    try:
        scorer.wait_ready(90)
        feeder.start()
        wait_until(lambda: sum(v or 0 for v in committed(
            bootstrap, f"{group}.router", topic, PARTS).values()) >= 1500, 90,
            "the router committed input offsets")
        assert router.ready(), router.get("/readyz")
        status, page = router.get("/metrics")
        series = f'monitor_router_forwarded_total{{partition="0",topic="{topic}"}}'
        assert status == 200 and series in page, page[-2000:]
        assert router.get("/healthz")[0] == 200
        router.kill9()
        assert feeder.is_alive(), "the router's kill should land while events still arrive"
        router = DaemonProcess(cfg, tmp_path / "router2.log", router_port,
                               ("--role", "router"), router_env).start()

        # the router's at-least-once replay, made certain: each internal partition's first
        # 40 records written again (same headers), as a router dying before its commit does
        first = {p: recs[:40] for p, recs in _internal(bootstrap, internal).items()}
        injected = _copy(bootstrap, first, internal)

        def ahead_of_commit() -> bool:  # checkpointed, and processed well past it
            mark = sum(v or 0 for v in committed(bootstrap, group, internal, PARTS).values())
            status = orjson.loads(scorer.get("/status")[1] or b"{}")
            return mark >= 1500 and status.get("events", 0) >= mark + 100

        wait_until(ahead_of_commit, 120, "scorer checkpoints and a tail after one")
        scorer.kill9()
        assert feeder.is_alive(), "the scorer's kill should land while events still arrive"
        scorer = DaemonProcess(cfg, tmp_path / "scorer2.log", port,
                               ("--role", "scorer")).start()
        scorer.wait_ready(90)
        feeder.join(timeout=120)
        everything = {(p, o) for p, ids in fed[0].by_partition.items()
                      for o in range(len(ids))}
        wait_until(lambda: _covered(bootstrap, f"{group}.scored") >= everything, 180,
                   "every input offset scored", every_s=2)
    finally:
        codes = [router.stop(), scorer.stop()]
        feeder.join(timeout=120)
    assert codes == [0, 0], scorer.output()[-3000:] + router.output()[-3000:]
    assert "restored at offset" in scorer.output()

    # the uninterrupted reference: one scorer over the same internal stream, without the
    # duplicates (what a router that never crashed would have written)
    parts = _internal(bootstrap, internal)
    total = sum(len(v) for v in parts.values())
    clean = {p: select(recs, {}).records for p, recs in parts.items()}
    dups = total - sum(len(v) for v in clean.values())
    ref_group, ref_state, ref_port = unique("g-ref"), tmp_path / "ref-state", free_port()
    create_topics(bootstrap, [(f"{ref_group}.by-segment", PARTS)])
    n = _copy(bootstrap, clean, f"{ref_group}.by-segment")
    ref_cfg = _config(tmp_path, bootstrap, topic, ref_group, ref_port, ref_state, "ref")
    ref = DaemonProcess(ref_cfg, tmp_path / "ref.log", ref_port, ("--role", "scorer")).start()
    try:
        ref.wait_ready(90)
        wait_until(lambda: len(read_all(bootstrap, f"{ref_group}.scored", PARTS,
                                        quiet_polls=1)) >= n, 180, "reference scored")
    finally:
        assert ref.stop() == 0, ref.output()[-3000:]
    scored = len(read_all(bootstrap, f"{group}.scored", PARTS))
    print(f"\ninternal records {total}, duplicates {dups} ({injected} injected), "
          f"unique {n}, input {len(rows)}, scored records {scored}")
    assert n == len(rows) and dups >= injected > 0
    assert scored > len(rows)  # the scorer's processed, uncommitted tail was scored again
    for p in range(PARTS):
        crashed = local_snapshot(state, internal, p)
        ref_snap = local_snapshot(ref_state, f"{ref_group}.by-segment", p)
        print(f"partition {p}: segments {sorted(crashed.state['engine']['segments'])}, "
              f"events {crashed.state['engine']['index']}")
        assert crashed.state["engine"]["index"] == ref_snap.state["engine"]["index"]
        assert crashed.state["sources"] == ref_snap.state["sources"]
        assert state_digest(crashed.state) == state_digest(ref_snap.state)
    assert DRIFTING in {s for p in range(PARTS) for s in
                        local_snapshot(state, internal, p).state["engine"]["segments"]}
