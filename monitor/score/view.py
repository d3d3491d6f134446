"""What the rest of the daemon may know of the model: a read-only view of each segment.

Metrics, the status page, alerts, feedback, replay and the report read a segment only
through `SegmentView`: the scoring internals (reference, pools, detector) can change
without touching a sink, and no sink can change the model by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.score.segment import SegmentModel


class SegmentView:
    """One segment, read-only. Cheap to make: it reads the model when asked."""

    __slots__ = ("_m",)

    def __init__(self, model: SegmentModel) -> None:
        self._m = model

    @property
    def ready(self) -> bool:
        """Scoring (the warm-up is over, or a reference was fitted)."""
        return self._m.ready

    @property
    def seen(self) -> int:
        return self._m.seen

    @property
    def outliers(self) -> int:
        return self._m.outliers

    @property
    def drifting(self) -> bool:
        return self._m.drifting

    @property
    def detector(self) -> str:
        """The drift detector's name (a metric label)."""
        return self._m.watch.detector.name

    @property
    def statistic(self) -> float:
        return self._m.watch.detector.statistic

    @property
    def alarms(self) -> int:
        return self._m.watch.detector.alarms

    @property
    def window_outlier_rate(self) -> float:
        return self._m.watch.gauges.outlier_rate()

    def gauges(self) -> dict[str, Any]:
        """Centroid shift, occupancy divergence, outlier rate and grown/shrunk clusters of
        the recent window against the reference (`SegmentModel.gauge_snapshot`)."""
        return self._m.gauge_snapshot()

    @property
    def p_value_floor(self) -> float | None:
        """1/(n+1) of the calibration (None while warming up)."""
        return self._m.reservoir.floor if self._m.ready else None

    @property
    def reference(self) -> ReferenceSummary | None:
        ref = self._m.reference
        if ref is None:
            return None
        return ReferenceSummary(ref.k, float(ref.weights.sum()), ref.last_time)

    def exemplars(self, centroid: int) -> list[str]:
        """Example event ids of one reference centroid (none for -1 or while warming up)."""
        ref = self._m.reference
        if ref is None or not 0 <= centroid < ref.k:
            return []
        return list(ref.exemplars[centroid])


@dataclass(frozen=True, slots=True)
class ReferenceSummary:
    """Size and age of a segment's reference: centroids, decayed weight, newest event time
    it learned from (None for data without timestamps)."""

    centroids: int
    weight: float
    last_time: float | None
