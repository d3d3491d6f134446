"""PartitionState.snapshot()/load(): pipeline state, offset and feedback positions round-trip
through Snapshot.encode/decode."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.config import parse_config
from monitor.errors import DecodeError
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.state.codec import decode_state, encode_state
from monitor.state.partition import PartitionState
from monitor.state.snapshot import Snapshot, SnapshotStore, snapshot_key, state_digest

CONFIG = {
    "fields": {"id": "id", "segment": "country", "numeric": [{"name": "amount"}],
               "categorical": ["merchant"]},
    "score": {"warmup": 30, "k": 3, "learn_block": 8},
}


def _pipeline() -> Pipeline:
    return Pipeline.build(parse_config(CONFIG))


def _events(start: int, n: int) -> list[Event]:
    rng = np.random.default_rng(start)
    return [Event(id=str(i), segment="GB" if i % 3 else "FR",
                  numeric={"amount": float(rng.lognormal(3, 0.5))},
                  categorical={"merchant": f"m{i % 5}"}) for i in range(start, start + n)]


def _busy_state() -> PartitionState:
    st = PartitionState("payments", 3, _pipeline())
    st.pipeline.process(_events(0, 150))
    st.offset = 150
    st.feedback = {0: 12, 2: 7}
    return st


def test_snapshot_round_trip_restores_pipeline_offset_and_feedback() -> None:
    st = _busy_state()
    snap = Snapshot.decode(st.snapshot().encode())
    assert (snap.topic, snap.partition, snap.offset) == ("payments", 3, 150)
    assert snap.key == snapshot_key("payments", 3) == b"payments:3"

    fresh = PartitionState("payments", 3, _pipeline())
    fresh.load(snap)
    assert fresh.offset == 150
    assert fresh.feedback == {0: 12, 2: 7}
    assert all(type(k) is int and type(v) is int for k, v in fresh.feedback.items())
    assert state_digest(fresh.pipeline.state_dict()) == state_digest(st.pipeline.state_dict())
    # and the restored pipeline goes on exactly like the original
    more = _events(150, 60)
    assert fresh.pipeline.process(more) == st.pipeline.process(more)


def test_snapshot_does_not_leak_feedback_into_the_pipeline_state() -> None:
    st = _busy_state()
    assert "feedback" in st.snapshot().state
    assert "feedback" not in st.pipeline.state_dict()


def test_an_old_snapshot_without_feedback_loads_with_empty_positions() -> None:
    st = _busy_state()
    state = st.pipeline.state_dict()  # what a release before feedback positions wrote
    old = Snapshot("payments", 3, 150, decode_state(encode_state(state)))
    target = PartitionState("payments", 3, _pipeline(), feedback={1: 99})
    target.load(Snapshot.decode(old.encode()))
    assert target.feedback == {}
    assert target.offset == 150
    assert state_digest(target.pipeline.state_dict()) == state_digest(state)


def test_snapshot_decode_rejects_a_tree_without_its_fields() -> None:
    with pytest.raises(DecodeError, match="missing or bad field"):
        Snapshot.decode(encode_state({"topic": "t", "partition": 0}))
    with pytest.raises(DecodeError, match="bad magic"):
        Snapshot.decode(b"garbage")


def test_snapshot_store_writes_atomically_and_reads_back(tmp_path) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    st = _busy_state()
    snap = st.snapshot()
    assert store.read("payments", 3) is None
    store.write(snap)
    back = store.read("payments", 3)
    assert back is not None and back.offset == 150
    assert state_digest(back.state) == state_digest(snap.state)
    assert [p.name for p in (tmp_path / "snaps").iterdir()] == ["payments-3.snap"]
    store.path("payments", 3).write_bytes(b"torn")
    assert store.read("payments", 3) is None  # unreadable: the changelog decides
