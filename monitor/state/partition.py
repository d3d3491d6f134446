"""What the daemon holds per assigned input partition."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.outcome import BatchResult
from monitor.pipeline import Pipeline
from monitor.state.snapshot import Snapshot


@dataclass(slots=True)
class PartitionState:
    """The pipeline of one input partition and `offset`, the next input offset to process.

    `dirty` is set by processing and cleared by a checkpoint; `restored` is False until
    the state matches the committed offset (the partition is paused until then).
    `feedback` maps each feedback-topic partition to the next offset this state has yet to
    apply; it is saved in the snapshot, so feedback is applied once per state, durably.
    """

    topic: str
    partition: int
    pipeline: Pipeline
    offset: int = 0
    dirty: bool = False
    restored: bool = False
    events: int = 0
    feedback: dict[int, int] = field(default_factory=dict)

    def apply(self, result: BatchResult) -> None:
        """A processed batch moves the partition on: its pipeline already holds it."""
        self.offset = result.next_offset
        self.dirty = True
        self.events += result.received

    def snapshot(self) -> Snapshot:
        state = self.pipeline.state_dict()
        state["feedback"] = sorted(self.feedback.items())  # pairs: keys stay ints
        return Snapshot(self.topic, self.partition, self.offset, state)

    def load(self, snap: Snapshot) -> None:
        """Take the pipeline state and feedback positions of `snap`."""
        self.pipeline.load_state_dict(snap.state)
        self.feedback = {int(p): int(o) for p, o in snap.state.get("feedback", [])}
        self.offset = snap.offset
