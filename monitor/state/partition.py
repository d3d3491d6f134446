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
    `sources` (repartition only) maps each source (topic, partition) to the highest source
    offset this state has applied; saved in the snapshot too, so a record the router wrote
    twice is applied once, across restarts (`monitor.repartition.dedupe`).
    """

    topic: str
    partition: int
    pipeline: Pipeline
    offset: int = 0
    dirty: bool = False
    restored: bool = False
    events: int = 0
    feedback: dict[int, int] = field(default_factory=dict)
    sources: dict[tuple[str, int], int] = field(default_factory=dict)

    def apply(self, result: BatchResult) -> None:
        """A processed batch moves the partition on: its pipeline already holds it."""
        self.offset = result.next_offset
        self.dirty = True
        self.events += result.received
        for src, offset in result.sources.items():
            self.sources[src] = max(self.sources.get(src, -1), offset)

    def snapshot(self) -> Snapshot:
        state = self.pipeline.state_dict()
        state["feedback"] = sorted(self.feedback.items())  # pairs: keys stay ints
        if self.sources:  # absent without repartition: snapshots stay as they were
            state["sources"] = sorted([t, p, o] for (t, p), o in self.sources.items())
        return Snapshot(self.topic, self.partition, self.offset, state)

    def load(self, snap: Snapshot) -> None:
        """Take the pipeline state and feedback positions of `snap`."""
        self.pipeline.load_state_dict(snap.state)
        self.feedback = {int(p): int(o) for p, o in snap.state.get("feedback", [])}
        self.sources = {(str(t), int(p)): int(o) for t, p, o in snap.state.get("sources", [])}
        self.offset = snap.offset
