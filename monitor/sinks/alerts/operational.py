"""Operational alerts about the daemon itself: failing checkpoints and dead-letter rate.

Pure state machines on an injected clock: the observer feeds them its hooks and submits
the alerts they return. Each condition fires once when it starts and resolves once when it
ends (the router deduplicates again, this keeps the hot path from re-submitting).

Dead-letter rate, per input topic: dead letters over records in the last
`dead_letter_window_seconds` (ten buckets), taken over at least `dead_letter_min_records`
records, so that a handful of poison records on a quiet topic (fewer than
rate x min_records, 5 by default) never fires. It fires at `dead_letter_rate` (1 %, as
the Prometheus rule MonitorDeadLetterRateHigh) and resolves below half of it: the gap keeps
a rate near the threshold from flapping. A window that empties (no traffic) resolves too.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.config import AlertsConfig
from monitor.events import Alert

BUCKETS = 10
RESOLVE_RATIO = 0.5  # resolved below this share of the firing threshold (hysteresis)
CHECKPOINT = {"condition": "checkpoint_failed"}


@dataclass(slots=True)
class RateWindow:
    """Records and dead letters in time buckets of `bucket` seconds, `BUCKETS` of them.

    >>> w = RateWindow(bucket=10.0)
    >>> w.add(0.0, records=100, dead=3); w.add(55.0, records=100)
    >>> w.totals(60.0)
    (200, 3)
    >>> w.totals(101.0)  # the first bucket [0, 10) left the window
    (100, 0)
    """

    bucket: float
    buckets: deque[list[int]] = field(default_factory=deque)  # [index, records, dead]
    records: int = 0
    dead: int = 0

    def _expire(self, now: float) -> int:
        index = math.floor(now / self.bucket)
        while self.buckets and self.buckets[0][0] <= index - BUCKETS:
            _, r, d = self.buckets.popleft()
            self.records -= r
            self.dead -= d
        return index

    def add(self, now: float, records: int = 0, dead: int = 0) -> None:
        index = self._expire(now)
        if not self.buckets or self.buckets[-1][0] < index:
            self.buckets.append([index, 0, 0])
        last = self.buckets[-1]  # a clock that steps back adds to the newest bucket
        last[1] += records
        last[2] += dead
        self.records += records
        self.dead += dead

    def totals(self, now: float) -> tuple[int, int]:
        self._expire(now)
        return self.records, self.dead


class OperationalWatch:
    """Turns checkpoint outcomes and dead letters into firing and resolved alerts.

    `firing(alert)` says whether the receivers were last told that alert fires (the
    sink's persisted router state): after a restart a condition that fired before it is
    still resolved, and one that never did is not resolved out of the blue.
    """

    def __init__(self, cfg: AlertsConfig, clock: Callable[[], float],
                 firing: Callable[[Alert], bool] = lambda a: False) -> None:
        self.cfg = cfg
        self.clock = clock
        self.firing = firing
        self.checkpoint_failing: bool | None = None  # None: not known yet (ask `firing`)
        self.checkpoint_failures = 0
        self.windows: dict[str, RateWindow] = {}
        self.dead_firing: dict[str, bool] = {}
        self.since: dict[str, float] = {}  # when this process started watching the topic

    # -- checkpoints ------------------------------------------------------------------------
    def checkpointed(self, ok: bool) -> list[Alert]:
        now = self.clock()
        if self.checkpoint_failing is None:
            self.checkpoint_failing = self.firing(checkpoint_alert("firing", now, 0))
        out: list[Alert] = []
        if ok:
            if self.checkpoint_failing:
                out.append(checkpoint_alert("resolved", now, self.checkpoint_failures))
            self.checkpoint_failing, self.checkpoint_failures = False, 0
        else:
            self.checkpoint_failures += 1
            if not self.checkpoint_failing:
                out.append(checkpoint_alert("firing", now, self.checkpoint_failures))
            self.checkpoint_failing = True
        return out + self.tick(now)

    # -- dead letters -----------------------------------------------------------------------
    def _window(self, topic: str, now: float) -> RateWindow:
        w = self.windows.get(topic)
        if w is None:
            w = self.windows[topic] = RateWindow(self.cfg.dead_letter_window_seconds / BUCKETS)
            self.since[topic] = now
            self.dead_firing[topic] = self.firing(dead_letter_alert(topic, "firing", now, {}))
        return w

    def records(self, topic: str, n: int) -> list[Alert]:
        now = self.clock()
        self._window(topic, now).add(now, records=n)
        return self._check(topic, now)

    def dead_letter(self, topic: str) -> list[Alert]:
        now = self.clock()
        self._window(topic, now).add(now, dead=1)
        return self._check(topic, now)

    def tick(self, now: float | None = None) -> list[Alert]:
        """Re-judge every topic (a topic gone quiet has no records to trigger it)."""
        t = self.clock() if now is None else now
        return [a for topic in list(self.windows) for a in self._check(topic, t)]

    def _check(self, topic: str, now: float) -> list[Alert]:
        records, dead = self.windows[topic].totals(now)
        cfg = self.cfg
        base = max(records, cfg.dead_letter_min_records)
        if not self.dead_firing[topic]:
            if dead < cfg.dead_letter_rate * base:
                return []
            self.dead_firing[topic] = True
            return [dead_letter_alert(topic, "firing", now, self._facts(records, dead))]
        # judge a resolve on enough records, or on a whole window watched by this process
        judged = records >= cfg.dead_letter_min_records or (
            now - self.since[topic] >= cfg.dead_letter_window_seconds)
        if not judged or dead >= RESOLVE_RATIO * cfg.dead_letter_rate * base:
            return []
        self.dead_firing[topic] = False
        return [dead_letter_alert(topic, "resolved", now, self._facts(records, dead))]

    def _facts(self, records: int, dead: int) -> dict[str, Any]:
        return {"dead_letters": dead, "records": records,
                "rate": round(dead / records, 6) if records else 0.0,
                "threshold": self.cfg.dead_letter_rate,
                "window_seconds": self.cfg.dead_letter_window_seconds}


def checkpoint_alert(status: str, now: float, failures: int) -> Alert:
    summary = ("checkpoint failed: offsets not committed; the daemon stops" if status == "firing"
               else "checkpoints succeed again")
    return Alert(kind="operational", status=status, labels=dict(CHECKPOINT),
                 annotations={"summary": summary},
                 details={"condition": CHECKPOINT["condition"], "failures": failures},
                 starts_at=now, ends_at=now if status == "resolved" else None)


def dead_letter_alert(topic: str, status: str, now: float, facts: dict[str, Any]) -> Alert:
    rate = facts.get("rate", 0.0)
    window = facts.get("window_seconds", 0.0)
    summary = (f"{rate:.1%} of {topic} records dead-lettered over the last {window:g}s"
               if status == "firing" else f"dead-letter rate of {topic} back to {rate:.1%}")
    return Alert(kind="operational", status=status,
                 labels={"condition": "dead_letter_rate", "topic": topic},
                 annotations={"summary": summary,
                              "description": "Records fail to decode or validate; they are in "
                                             "the dead-letter topic with their reason."},
                 details={"condition": "dead_letter_rate", "topic": topic, **facts},
                 starts_at=now, ends_at=now if status == "resolved" else None)
