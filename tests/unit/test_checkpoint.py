"""Checkpointer: flush, check, changelog, local store, then (and only then) commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from monitor.config import parse_config
from monitor.errors import FatalError
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.state.checkpoint import Checkpointer
from monitor.state.partition import PartitionState
from monitor.state.snapshot import Snapshot, SnapshotStore, state_digest
from tests.fakes import FakeFuture, FakeProducer, ManualClock

CONFIG = {"fields": {"numeric": [{"name": "amount"}]}, "score": {"warmup": 20}}


class FakeConsumer:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.log.append("commit")
        self.commits.append(dict(offsets))


class FakeSinks:
    def __init__(self, log: list[str], error: Exception | None = None) -> None:
        self.log = log
        self.error = error

    def check(self, timeout_s: float = 30.0) -> None:
        self.log.append("sinks.check")
        if self.error is not None:
            raise self.error


class FakeChangelog:
    """Sends through the producer like the real one; `fail` makes deliveries fail."""

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.fail = fail
        self.sent: list[tuple[Snapshot, bytes]] = []
        self.futures: list[FakeFuture] = []

    def send(self, snap: Snapshot, data: bytes) -> FakeFuture:
        self.log.append(f"changelog.send:{snap.partition}")
        self.sent.append((snap, data))
        fut = _LoggedFuture(self.log, RuntimeError("broker said no") if self.fail else None)
        self.futures.append(fut)
        return fut


class _LoggedFuture(FakeFuture):
    def __init__(self, log: list[str], error: BaseException | None) -> None:
        super().__init__(error)
        self.log = log

    def get(self, timeout: float | None = None) -> object:
        self.log.append("changelog.get")
        return super().get(timeout)


class FakeStore:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.written: list[tuple[Snapshot, bytes | None]] = []

    def write(self, snap: Snapshot, data: bytes | None = None) -> None:
        self.log.append(f"store.write:{snap.partition}")
        self.written.append((snap, data))


def _state(partition: int, offset: int, dirty: bool = True, restored: bool = True,
           events: int = 0) -> PartitionState:
    st = PartitionState("in", partition, Pipeline.build(parse_config(CONFIG)), offset=offset,
                        dirty=dirty, restored=restored)
    if events:
        st.pipeline.process([Event(id=str(i), numeric={"amount": float(i % 7)})
                             for i in range(events)])
    return st


def _rig(fail_changelog: bool = False, sinks_error: Exception | None = None,
         **kw: Any) -> tuple[Checkpointer, list[str], FakeConsumer, FakeChangelog, FakeStore,
                             FakeProducer]:
    log: list[str] = []
    consumer, producer = FakeConsumer(log), FakeProducer(log)
    changelog, store = FakeChangelog(log, fail_changelog), FakeStore(log)
    cp = Checkpointer(consumer, producer, FakeSinks(log, sinks_error), changelog,  # type: ignore[arg-type]
                      store, **kw)  # type: ignore[arg-type]
    return cp, log, consumer, changelog, store, producer


def test_order_of_steps_and_the_committed_offsets() -> None:
    cp, log, consumer, changelog, store, _ = _rig()
    states = [_state(0, 40, events=30), _state(1, 7)]
    assert cp.checkpoint(states) == 2
    assert log == ["flush", "sinks.check", "changelog.send:0", "changelog.send:1", "flush",
                   "changelog.get", "changelog.get", "store.write:0", "store.write:1",
                   "commit"]
    assert consumer.commits == [{TopicPartition("in", 0): OffsetAndMetadata(40, "", -1),
                                 TopicPartition("in", 1): OffsetAndMetadata(7, "", -1)}]
    # the changelog and the local file get the same bytes: the snapshot at the offset
    (snap0, data0), _ = changelog.sent
    assert store.written[0] == (snap0, data0)
    back = Snapshot.decode(data0)
    assert (back.topic, back.partition, back.offset) == ("in", 0, 40)
    assert state_digest(back.state) == state_digest(states[0].snapshot().state)
    assert not any(s.dirty for s in states)
    assert cp.count == 1


def test_only_dirty_and_restored_states_are_written_and_committed() -> None:
    cp, _, consumer, changelog, store, _ = _rig()
    dirty = _state(0, 5)
    clean = _state(1, 6, dirty=False)
    restoring = _state(2, 7, restored=False)
    assert cp.checkpoint([dirty, clean, restoring]) == 1
    assert [s.partition for s, _ in changelog.sent] == [0]
    assert [s.partition for s, _ in store.written] == [0]
    assert list(consumer.commits[0]) == [TopicPartition("in", 0)]
    assert restoring.dirty  # still to be written once restored
    assert not dirty.dirty


def test_nothing_changed_means_no_flush_and_no_commit() -> None:
    cp, log, consumer, _, _, _ = _rig()
    assert cp.checkpoint([_state(0, 5, dirty=False)]) == 0
    assert cp.checkpoint([]) == 0
    assert log == [] and consumer.commits == [] and cp.count == 0


def test_failed_changelog_delivery_raises_before_store_and_commit() -> None:
    cp, log, consumer, _, store, _ = _rig(fail_changelog=True)
    st = _state(0, 5)
    with pytest.raises(FatalError, match="changelog record"):
        cp.checkpoint([st])
    assert "commit" not in log and consumer.commits == []
    assert store.written == []
    assert st.dirty  # the next checkpoint tries again


def test_failed_output_delivery_raises_before_the_changelog() -> None:
    cp, log, consumer, changelog, _, _ = _rig(sinks_error=FatalError("1 output record(s)"))
    st = _state(0, 5)
    with pytest.raises(FatalError, match="output"):
        cp.checkpoint([st])
    assert changelog.sent == [] and consumer.commits == []
    assert log == ["flush", "sinks.check"]
    assert st.dirty


def test_oversized_snapshot_is_fatal_and_names_the_setting() -> None:
    cp, _, consumer, changelog, _, _ = _rig(max_snapshot_bytes=64)
    st = _state(0, 5, events=30)
    with pytest.raises(FatalError, match=r"kafka\.max_snapshot_bytes") as err:
        cp.checkpoint([st])
    assert "in:0" in str(err.value) and "(64)" in str(err.value)
    assert changelog.sent == [] and consumer.commits == [] and st.dirty


def test_due_by_events_and_by_seconds_with_an_injected_clock() -> None:
    clock = ManualClock(1_000.0)
    cp, *_ = _rig(clock=clock)
    assert not cp.due(events_since=99, every_events=100, every_seconds=5.0)
    assert cp.due(events_since=100, every_events=100, every_seconds=5.0)
    clock.now += 4.9
    assert not cp.due(0, 100, 5.0)
    clock.now += 0.1
    assert cp.due(0, 100, 5.0)
    cp.checkpoint([])  # even an empty checkpoint restarts the timer
    assert not cp.due(0, 100, 5.0)
    clock.now += 5.0
    assert cp.due(0, 100, 5.0)


def test_with_a_real_store_the_local_snapshot_matches_the_commit(tmp_path: Path) -> None:
    log: list[str] = []
    consumer = FakeConsumer(log)
    store = SnapshotStore(tmp_path)
    cp = Checkpointer(consumer, FakeProducer(log), FakeSinks(log),  # type: ignore[arg-type]
                      FakeChangelog(log), store)  # type: ignore[arg-type]
    st = _state(2, 321, events=25)
    st.feedback = {0: 4}
    cp.checkpoint([st])
    snap = store.read("in", 2)
    assert snap is not None and snap.offset == 321
    assert consumer.commits[0][TopicPartition("in", 2)].offset == snap.offset
    assert snap.state["feedback"] == [(0, 4)]
