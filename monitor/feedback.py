"""How feedback judged the outlier flags: precision over recent flags, matched by event id.

(Applying feedback to the model is `Pipeline.confirm`: a confirmed-fraud event becomes a
prototype of its segment without teaching the encoder, the reference, the calibration or
the drift detector, so nothing is counted twice when the event itself was scored earlier.)
"""

from __future__ import annotations

from collections import OrderedDict


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
