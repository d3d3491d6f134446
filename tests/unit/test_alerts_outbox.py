"""The SQLite outbox: head-of-line order per group, restart survival, expiry."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.sinks.alerts.outbox import Outbox


def doc(n: int) -> dict[str, object]:
    return {"id": f"n{n}", "n": n}


def test_only_the_oldest_pending_of_each_group_is_due(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.sqlite")
    box.enqueue(
        [
            ("n1", "r", "g1", doc(1)),
            ("n2", "r", "g1", doc(2)),
            ("n3", "r", "g2", doc(3)),
            ("n4", "other", "g1", doc(4)),
        ],
        now=0.0,
    )
    assert [row.id for row in box.due("r", 0.0, 10)] == ["n1", "n3"]
    box.mark(1, "pending", 1.0, error="HTTP 503", next_attempt_at=5.0)
    assert [row.id for row in box.due("r", 1.0, 10)] == ["n3"]  # n2 waits behind n1
    [head] = box.due("r", 5.0, 10)[:1]
    assert head.id == "n1" and head.attempts == 1
    box.mark(1, "delivered", 5.0)
    assert [row.id for row in box.due("r", 5.0, 10)] == ["n2", "n3"]
    assert box.due("r", 5.0, 1)[0].id == "n2"


def test_pending_survives_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.sqlite")
    box.enqueue([("n1", "r", "g", doc(1))], now=0.0, router_states={"r": {"x": 1}})
    box.close()
    again = Outbox(tmp_path / "a.sqlite")
    assert again.pending() == 1
    assert again.due("r", 0.0, 5)[0].document == doc(1)
    assert again.load_router_state() == {"r": {"x": 1}}


def test_expire_counts_per_receiver_and_failed_unblocks_group(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.sqlite")
    box.enqueue([("n1", "r", "g", doc(1)), ("n2", "r", "g", doc(2))], now=0.0)
    box.mark(1, "failed", 1.0, error="HTTP 400")
    assert [row.id for row in box.due("r", 1.0, 5)] == ["n2"]
    assert box.expire(now=50.0, max_age=100.0) == {}
    assert box.expire(now=101.0, max_age=100.0) == {"r": 1}
    assert box.counts() == {("r", "failed"): 1, ("r", "expired"): 1}
    assert box.prune(before=200.0) == 2 and box.counts() == {}


def test_duplicate_ids_are_refused_atomically(tmp_path: Path) -> None:
    import sqlite3

    box = Outbox(tmp_path / "a.sqlite")
    box.enqueue([("n1", "r", "g", doc(1))], now=0.0)
    with pytest.raises(sqlite3.IntegrityError):
        box.enqueue([("n2", "r", "g", doc(2)), ("n1", "r", "g", doc(1))], now=0.0)
    assert box.pending() == 1
    with pytest.raises(ValueError):
        box.mark(1, "lost", 0.0)
