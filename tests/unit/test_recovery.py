"""restore_partitions with a fake consumer and changelog and a real local SnapshotStore:
local snapshot only at exactly the committed offset, else the changelog, else cold start."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kafka import TopicPartition

from monitor.config import parse_config
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.state.partition import PartitionState
from monitor.state.recovery import restore_partitions
from monitor.state.snapshot import Snapshot, SnapshotStore, state_digest

CONFIG = {"fields": {"numeric": [{"name": "amount"}]}, "score": {"warmup": 20}}
TP0, TP1 = TopicPartition("in", 0), TopicPartition("in", 1)


def _pipeline() -> Pipeline:
    return Pipeline.build(parse_config(CONFIG))


def _snap(partition: int, offset: int, events: int, feedback: dict[int, int]) -> Snapshot:
    st = PartitionState("in", partition, _pipeline(), offset=offset, feedback=feedback)
    st.pipeline.process([Event(id=str(i), numeric={"amount": float(i % 11)})
                         for i in range(events)])
    return st.snapshot()


class FakeConsumer:
    def __init__(self, committed: dict[TopicPartition, int | None],
                 positions: dict[TopicPartition, int | None] | None = None) -> None:
        self._committed = committed
        self._positions = positions or {}
        self.seeks: list[tuple[TopicPartition, int]] = []

    def committed(self, tp: TopicPartition) -> int | None:
        return self._committed.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def position(self, tp: TopicPartition) -> int | None:
        return self._positions.get(tp)


class FakeChangelog:
    """Answers like `Changelog.restore`: the newest snapshot at or below each commit."""

    def __init__(self, *snaps: Snapshot) -> None:
        self.snaps = snaps
        self.asked: list[dict[tuple[str, int], int | None]] = []

    def restore(self, wanted: Mapping[tuple[str, int], int | None],
                timeout_s: float = 120.0) -> dict[tuple[str, int], Snapshot]:
        self.asked.append(dict(wanted))
        best: dict[tuple[str, int], Snapshot] = {}
        for s in self.snaps:
            key = (s.topic, s.partition)
            mark = wanted.get(key)
            if mark is not None and s.offset <= mark and (
                    key not in best or s.offset >= best[key].offset):
                best[key] = s
        return best


def _restore(consumer: FakeConsumer, changelog: FakeChangelog, store: SnapshotStore | None,
             tps: list[TopicPartition]) -> dict[TopicPartition, PartitionState]:
    built: list[Pipeline] = []

    def new_pipeline() -> Pipeline:
        built.append(_pipeline())
        return built[-1]

    states = restore_partitions(consumer, tps, changelog, store,  # type: ignore[arg-type]
                                new_pipeline, timeout_s=1.0)
    assert len(built) == len(tps)  # one fresh pipeline per partition
    return states


def test_local_snapshot_at_the_committed_offset_is_used_without_the_changelog(
        tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    local = _snap(0, 120, events=40, feedback={0: 3})
    store.write(local)
    stale_in_changelog = _snap(0, 100, events=10, feedback={})
    consumer, changelog = FakeConsumer({TP0: 120}), FakeChangelog(stale_in_changelog)
    states = _restore(consumer, changelog, store, [TP0])
    st = states[TP0]
    assert st.restored and not st.dirty
    assert st.offset == 120 and st.feedback == {0: 3}
    assert state_digest(st.pipeline.state_dict()) == state_digest(
        {k: v for k, v in local.state.items() if k != "feedback"})
    assert changelog.asked == [{}]  # nothing left for the changelog to find
    assert consumer.seeks == [(TP0, 120)]


def test_local_snapshot_past_the_commit_loses_to_the_changelog(tmp_path: Path) -> None:
    # a checkpoint that wrote its local file but crashed before committing
    store = SnapshotStore(tmp_path)
    store.write(_snap(0, 150, events=50, feedback={0: 9}))
    behind = _snap(0, 110, events=30, feedback={0: 2})
    consumer, changelog = FakeConsumer({TP0: 120}), FakeChangelog(behind)
    st = _restore(consumer, changelog, store, [TP0])[TP0]
    assert changelog.asked == [{("in", 0): 120}]
    assert st.offset == 110 and st.feedback == {0: 2}
    assert consumer.seeks == [(TP0, 110)]  # events 110..119 are replayed against it
    assert state_digest(st.snapshot().state) == state_digest(behind.state)


def test_without_a_store_the_changelog_decides() -> None:
    snap = _snap(1, 40, events=25, feedback={})
    consumer, changelog = FakeConsumer({TP1: 40}), FakeChangelog(snap)
    st = _restore(consumer, changelog, None, [TP1])[TP1]
    assert st.offset == 40 and consumer.seeks == [(TP1, 40)]
    assert state_digest(st.snapshot().state) == state_digest(snap.state)


def test_cold_start_at_the_commit_or_at_the_position(tmp_path: Path) -> None:
    consumer = FakeConsumer({TP0: 500, TP1: None}, positions={TP1: 42})
    changelog = FakeChangelog()
    states = _restore(consumer, changelog, SnapshotStore(tmp_path), [TP0, TP1])
    assert changelog.asked == [{("in", 0): 500, ("in", 1): None}]
    assert states[TP0].offset == 500 and states[TP0].restored
    assert states[TP0].pipeline.engine.segments == {}  # fresh state
    assert states[TP1].offset == 42
    assert consumer.seeks == [(TP0, 500)]  # no commit: left where the consumer stands


def test_nothing_committed_ignores_a_leftover_local_snapshot(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(_snap(1, 80, events=25, feedback={0: 1}))
    consumer = FakeConsumer({TP1: None}, positions={TP1: None})
    st = _restore(consumer, FakeChangelog(), store, [TP1])[TP1]
    assert st.offset == 0 and st.feedback == {} and consumer.seeks == []
