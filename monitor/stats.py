"""Running totals of the daemon (for `monitor demo`'s progress and summary, and metrics),
and where its time goes (for `monitor bench`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from monitor.events import DriftAlarm
from monitor.feedback import FlagPrecision

RECENT_IDS = 100_000
FRAUD_LIKE = 0.9  # fraud similarity at which the demo counts an event as known-fraud-like


@dataclass
class Stats:
    """Running totals, read by `monitor demo` for its progress line and summary."""

    events: int = 0
    scored: int = 0
    outliers: int = 0
    dead_letters: int = 0
    feedback: int = 0
    checkpoints: int = 0
    alarms_total: int = 0
    alarms: deque[DriftAlarm] = field(default_factory=lambda: deque(maxlen=1000))  # recent
    # recent ids only (bounded): the demo's summary matches them against the injected fraud
    outlier_ids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    fraud_like_ids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    precision: FlagPrecision = field(default_factory=FlagPrecision)


STAGES = ("consume", "decode", "embed", "score", "metrics", "produce", "commit")


class StageTimes:
    """Busy seconds per stage of the loop. `consume` counts polls that returned records;
    polls that returned none are `idle`, not work.

    >>> t = StageTimes(); t.add(embed=0.5, score=0.25); t.add(embed=0.5)
    >>> t.seconds["embed"], t.busy()
    (1.0, 1.25)
    """

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.idle = 0.0

    def add(self, **seconds: float) -> None:
        for stage, value in seconds.items():
            self.seconds[stage] += value

    def busy(self) -> float:
        return sum(self.seconds.values())
