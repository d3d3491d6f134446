"""Running totals of one daemon run, for `monitor demo`'s progress line and summary.

A `BatchSink` of the demo's own: the daemon hands it every result like any other sink,
so the production loop carries no demo state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.events import DriftAlarm
from monitor.feedback import FlagPrecision
from monitor.outcome import BatchResult, FeedbackResult, LoopReport

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

RECENT_IDS = 100_000
FRAUD_LIKE = 0.9  # fraud similarity at which the demo counts an event as known-fraud-like


@dataclass
class Stats:
    """Running totals; recent ids only (bounded), matched by the demo's summary against
    the fraud it injected."""

    events: int = 0
    scored: int = 0
    outliers: int = 0
    dead_letters: int = 0
    labels: int = 0  # feedback labels read
    checkpoints: int = 0
    alarms_total: int = 0
    alarms: deque[DriftAlarm] = field(default_factory=lambda: deque(maxlen=1000))  # recent
    outlier_ids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    fraud_like_ids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    precision: FlagPrecision = field(default_factory=FlagPrecision)
    last: LoopReport | None = None

    def batch(self, result: BatchResult, pipeline: Pipeline) -> None:
        self.events += result.received
        self.dead_letters += len(result.dead_letters)
        for score in result.scores:
            self.scored += score.p_value is not None
            if score.fraud_similarity >= FRAUD_LIKE:
                self.fraud_like_ids.append(score.event_id)
            if score.outlier:
                self.outliers += 1
                self.outlier_ids.append(score.event_id)
                self.precision.flagged(score.event_id)
        self.alarms.extend(result.alarms)
        self.alarms_total += len(result.alarms)

    def feedback(self, result: FeedbackResult) -> None:
        self.dead_letters += len(result.dead_letters)
        for event_id, is_fraud in result.labels:
            self.precision.feedback(event_id, is_fraud)
        self.labels += len(result.labels)

    def loop(self, report: LoopReport) -> None:
        self.last = report
        self.checkpoints = report.checkpoints
