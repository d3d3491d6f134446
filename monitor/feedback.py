"""Analyst feedback: labelled events that update the known-fraud prototypes.

A confirmed-fraud event is embedded without teaching the encoder (its scaler state is put
back) and added to its segment's prototypes; it never touches the reference, the
calibration or the drift detectors, so nothing is counted twice when the event itself
was scored earlier. Outlier flags are matched to later feedback by event id for precision.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from monitor.events import Event
from monitor.pipeline import Pipeline


def add_fraud_prototypes(pipeline: Pipeline, events: Sequence[Event]) -> int:
    """Add the confirmed-fraud `events` to `pipeline`'s prototypes; returns how many."""
    return pipeline.confirm(events)


class FlagPrecision:
    """Precision of outlier flags against feedback, over the last `capacity` flagged ids.

    >>> fp = FlagPrecision(10)
    >>> fp.flagged("a"); fp.flagged("b")
    >>> fp.feedback("a", True); fp.feedback("b", False); fp.feedback("c", True)
    >>> fp.true_positives, fp.false_positives, fp.precision
    (1, 1, 0.5)
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.true_positives = 0
        self.false_positives = 0

    def flagged(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def feedback(self, event_id: str, is_fraud: bool) -> None:
        if self._ids.pop(event_id, 0) is None:
            if is_fraud:
                self.true_positives += 1
            else:
                self.false_positives += 1

    @property
    def precision(self) -> float | None:
        n = self.true_positives + self.false_positives
        return self.true_positives / n if n else None
