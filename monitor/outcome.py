"""What one batch produced, as a value, and the interface of everything that consumes it.

The loop's data flows one way: records -> `BatchHandler` (decode, embed, score) ->
`BatchResult` -> the daemon hands it to each `BatchSink` it was built with (the output
topics, the observer's metrics and alerts, and in `monitor demo` and `monitor bench`
their own statistics). A sink never reaches back into the daemon or the model; what it
may know of the model it reads through `Pipeline`'s published views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from monitor.events import DriftAlarm, Event, Score
from monitor.repartition.origin import Origin

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be decoded, its bytes untouched, and why."""

    value: bytes | None
    key: bytes | None
    reason: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One polled batch of one input partition. `events`, `scores`, `offsets` and `keys`
    are aligned (the records that decoded); `received` counts every record read, and
    `next_offset` is the partition's next offset once this batch is applied.

    With repartition (`monitor.repartition`) the batch is of an internal partition:
    `origins`, aligned with `events`, say which source record each event is (outputs name
    it, not the internal one), and `sources` is the highest source offset per source
    partition this batch covers, dead letters included (what later duplicates are
    recognised by). Both are None and empty without repartition."""

    topic: str
    partition: int
    received: int
    events: list[Event]
    scores: list[Score]
    alarms: list[DriftAlarm]
    offsets: list[int]
    keys: list[bytes | None]
    dead_letters: list[DeadLetter]
    next_offset: int
    seconds: dict[str, float] = field(default_factory=dict)  # decode, embed, score
    origins: list[Origin] | None = None
    sources: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        """Events past their segment's warm-up."""
        return sum(s.p_value is not None for s in self.scores)


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """Labelled events read from the feedback topic, each counted on its first sighting in
    this process: records per feedback partition, labels by event id, dead letters."""

    received: dict[tuple[str, int], int]
    labels: list[tuple[str, bool]]
    dead_letters: list[DeadLetter]


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


@dataclass(frozen=True, slots=True)
class LoopReport:
    """Handed to every sink after each turn of the loop: where the time went so far,
    when the newest records arrived (perf_counter; None before any), the text cache's
    counters (None without text fields) and the checkpoints so far."""

    stages: StageTimes
    polled_at: float | None
    cache_hit_ratio: float | None
    texts_embedded: int
    checkpoints: int  # checkpoints that wrote something, since the start


class BatchSink(Protocol):
    """A consumer of the loop's outcome. `pipeline` is the scored partition's model, to
    be read through its published views only."""

    def batch(self, result: BatchResult, pipeline: Pipeline) -> None: ...

    def feedback(self, result: FeedbackResult) -> None: ...

    def loop(self, report: LoopReport) -> None: ...
