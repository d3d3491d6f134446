"""What the daemon holds per assigned input partition."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.pipeline import Pipeline
from monitor.state.snapshot import Snapshot


@dataclass(slots=True)
class PartitionState:
    """The pipeline of one input partition and `offset`, the next input offset to process.

    `dirty` is set by processing and cleared by a checkpoint; `restored` is False until
    the state matches the committed offset (the partition is paused until then).
    """

    topic: str
    partition: int
    pipeline: Pipeline
    offset: int = 0
    dirty: bool = False
    restored: bool = False
    events: int = 0

    def snapshot(self) -> Snapshot:
        return Snapshot(self.topic, self.partition, self.offset, self.pipeline.state_dict())
