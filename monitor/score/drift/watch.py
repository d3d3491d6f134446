"""A segment's drift watch: the detector over its p-values, and the episode around alarms.

One crossing of the detector's threshold is an alarm; crossings within `hysteresis`
events of the previous one extend the same episode instead of raising another. The
window gauges describe the window as it stood at the alarm, so the explanation does
not depend on where a batch ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monitor.config import DriftConfig
from monitor.score.drift.gauges import WindowGauges
from monitor.score.drift.martingale import ShiryaevRoberts

Alarm = tuple[int, float, dict[str, Any]]  # (row, statistic, gauges at that row)


class DriftWatch:
    """Detector, gauges and the count of events since the last alarm."""

    def __init__(self, cfg: DriftConfig, threshold: float) -> None:
        self.cfg = cfg
        self.detector = ShiryaevRoberts(threshold)
        self.gauges = WindowGauges(cfg.window)
        self.since_alarm: int | None = None  # events since the last alarm; None = never

    @property
    def drifting(self) -> bool:
        """Firing from an alarm until `hysteresis` events pass without another."""
        return self.since_alarm is not None and self.since_alarm <= self.cfg.hysteresis

    def observe(self, smooth: Sequence[float], centroid: Sequence[int],
                outlier: Sequence[bool], ids: Sequence[str],
                snapshot: Callable[[], dict[str, Any]]) -> list[Alarm]:
        """Feed one run of rows in order; `snapshot` describes the window at an alarm."""
        alarms: list[Alarm] = []
        n = len(smooth)
        last = None  # row of the newest crossing in this run
        since = self.since_alarm
        seen = 0  # rows already in the gauges
        for i, stat in self.detector.update_many(list(smooth)):
            # events since the previous alarm, as seen at row i
            now = i - last if last is not None else (None if since is None else since + i + 1)
            # a crossing while already drifting extends the episode, not a new alarm
            if now is None or now > self.cfg.hysteresis:
                self.gauges.update(centroid[seen : i + 1], outlier[seen : i + 1],
                                   ids[seen : i + 1])
                seen = i + 1
                alarms.append((i, stat, snapshot()))
            last = i
        if last is not None:
            self.since_alarm = n - 1 - last
        elif since is not None:
            self.since_alarm = since + n
        self.gauges.update(centroid[seen:], outlier[seen:], ids[seen:])
        return alarms

    def state_dict(self) -> dict[str, Any]:
        return {"detector": self.detector.state_dict(), "gauges": self.gauges.state_dict(),
                "since_alarm": self.since_alarm}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.detector.load_state_dict(state["detector"])
        self.gauges.load_state_dict(state["gauges"])
        self.since_alarm = state["since_alarm"]
