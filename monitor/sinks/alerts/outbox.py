"""The durable outbox: every notification is committed to SQLite before any send.

Rows move pending -> delivered | failed | expired and are never deleted while pending, so a
crash at any point loses nothing already enqueued (the WAL with ``synchronous=FULL``
survives kill -9 and power loss). Within a (receiver, group) only the oldest pending row is
ever handed out, which keeps notifications of one group in order (a resolve never
overtakes its firing).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATES = ("pending", "delivered", "failed", "expired")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    created_at REAL NOT NULL,
    document TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'expired')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, receiver, group_key, seq);
CREATE TABLE IF NOT EXISTS router_state (
    receiver TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Row:
    """One pending notification handed to delivery."""

    seq: int
    id: str
    receiver: str
    group_key: str
    created_at: float
    document: dict[str, Any]
    attempts: int


class Outbox:
    """SQLite outbox shared by the submitting thread and the delivery thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(
        self,
        items: list[tuple[str, str, str, dict[str, Any]]],
        now: float,
        router_states: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Commit (id, receiver, group_key, document) rows as pending, all or none.

        The routers' state goes in the same transaction, so after a crash the restored
        router never re-sends what the outbox already holds.
        """
        with self._tx() as db:
            if router_states:
                self._save_states(db, router_states)
            db.executemany(
                "INSERT INTO outbox (id, receiver, group_key, created_at, document, state,"
                " next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                [
                    (nid, rcv, gk, now, json.dumps(doc, default=str), now, now)
                    for nid, rcv, gk, doc in items
                ],
            )

    def due(self, receiver: str, now: float, limit: int) -> list[Row]:
        """The oldest pending row of each group of `receiver`, if its retry time has come."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.seq, o.id, o.receiver, o.group_key, o.created_at, o.document,"
                " o.attempts FROM outbox o JOIN (SELECT MIN(seq) AS seq FROM outbox"
                " WHERE state = 'pending' AND receiver = ? GROUP BY group_key) h"
                " ON o.seq = h.seq WHERE o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?",
                (receiver, now, limit),
            ).fetchall()
        return [Row(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def mark(
        self,
        seq: int,
        state: str,
        now: float,
        *,
        error: str | None = None,
        next_attempt_at: float | None = None,
    ) -> None:
        """Record an attempt: final `state`, or still pending with a next attempt time."""
        if state not in STATES:
            raise ValueError(f"unknown outbox state {state!r}")
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, updated_at = ?,"
                " last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at)"
                " WHERE seq = ?",
                (state, now, error, next_attempt_at, seq),
            )

    def expire(self, now: float, max_age: float) -> dict[str, int]:
        """Mark pending rows older than `max_age` expired; counts per receiver."""
        cutoff = now - max_age
        with self._tx() as db:
            counts = dict(
                db.execute(
                    "SELECT receiver, COUNT(*) FROM outbox WHERE state = 'pending'"
                    " AND created_at < ? GROUP BY receiver",
                    (cutoff,),
                ).fetchall()
            )
            db.execute(
                "UPDATE outbox SET state = 'expired', updated_at = ?,"
                " last_error = 'max age reached' WHERE state = 'pending' AND created_at < ?",
                (now, cutoff),
            )
        return {str(k): int(v) for k, v in counts.items()}

    def prune(self, before: float) -> int:
        """Delete finished rows last touched before `before`; pending rows are kept."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND updated_at < ?", (before,)
            )
        return cur.rowcount

    def counts(self) -> dict[tuple[str, str], int]:
        """Rows per (receiver, state), for gauges and tests."""
        with self._lock:
            rows = self._db.execute(
                "SELECT receiver, state, COUNT(*) FROM outbox GROUP BY receiver, state"
            ).fetchall()
        return {(str(r), str(s)): int(n) for r, s, n in rows}

    def pending(self, receiver: str | None = None) -> int:
        return sum(
            n
            for (r, s), n in self.counts().items()
            if s == "pending" and (receiver is None or r == receiver)
        )

    @staticmethod
    def _save_states(db: sqlite3.Connection, states: dict[str, dict[str, Any]]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO router_state (receiver, state) VALUES (?, ?)",
            [(name, json.dumps(state, default=str)) for name, state in states.items()],
        )

    def save_router_state(self, states: dict[str, dict[str, Any]]) -> None:
        with self._tx() as db:
            self._save_states(db, states)

    def load_router_state(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT receiver, state FROM router_state").fetchall()
        return {str(name): json.loads(state) for name, state in rows}
