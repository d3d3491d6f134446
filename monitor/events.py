"""The values that flow between stages: immutable and typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

DEFAULT_SEGMENT = "default"


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded input event.

    `text` maps each configured text field (or the rendered template, under the key
    ``"template"``) to its string; `numeric` and `categorical` carry the tabular fields.
    `label` is True for confirmed fraud, False for confirmed legitimate, None if unknown.
    """

    id: str
    segment: str = DEFAULT_SEGMENT
    timestamp: float | None = None
    text: dict[str, str] = field(default_factory=dict)
    numeric: dict[str, float] = field(default_factory=dict)
    categorical: dict[str, str] = field(default_factory=dict)
    label: bool | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class Score(NamedTuple):
    """What scoring says about one event (before the event updated anything).

    `p_value` is None while the segment is still warming up; `outlier` is then False.
    `risk` combines outlier evidence and similarity to confirmed fraud, for ranking.
    A named tuple rather than a frozen dataclass: one is built per event, and a frozen
    dataclass's field-by-field `object.__setattr__` costs four times as much.
    """

    event_id: str
    segment: str
    score: float
    p_value: float | None
    outlier: bool
    fraud_similarity: float
    normal_similarity: float
    risk: float
    centroid: int
    warming_up: bool = False
    driver: str = ""  # the evidence column with the smallest p-value ("" = embedding only)
    evidence: dict[str, float] | None = None  # p-value of each evidence column

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "segment": self.segment,
            "score": self.score,
            "p_value": self.p_value,
            "outlier": self.outlier,
            "fraud_similarity": self.fraud_similarity,
            "normal_similarity": self.normal_similarity,
            "risk": self.risk,
            "centroid": self.centroid,
            "warming_up": self.warming_up,
            "driver": self.driver,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class DriftAlarm:
    """A drift detector crossed its threshold in one segment.

    `index` counts events of the whole stream (0-based) at which the alarm fired;
    `grown` and `shrunk` name the clusters whose occupancy in the recent window rose or
    fell most against the reference weights.
    """

    index: int
    segment: str
    statistic: float
    threshold: float
    detector: str
    grown: tuple[int, ...] = ()
    shrunk: tuple[int, ...] = ()
    centroid_shift: float = 0.0
    occupancy_divergence: float = 0.0
    outlier_rate: float = 0.0
    timestamp: float | None = None
    examples: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "segment": self.segment,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "detector": self.detector,
            "grown": list(self.grown),
            "shrunk": list(self.shrunk),
            "centroid_shift": self.centroid_shift,
            "occupancy_divergence": self.occupancy_divergence,
            "outlier_rate": self.outlier_rate,
            "timestamp": self.timestamp,
            "examples": list(self.examples),
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """A notification-worthy condition, before grouping and delivery.

    `kind` is "drift", "outlier" or "operational"; `status` is "firing" or "resolved".
    `labels` identify the alert (its fingerprint is derived from kind + labels);
    `annotations` carry human text; `details` carry the explanation (scores, p-values,
    nearest centroid, exemplar ids, deviating features, grown/shrunk clusters, examples).
    `count` is how many underlying events the alert stands for (outlier storms).
    """

    kind: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    starts_at: float = 0.0
    ends_at: float | None = None
    count: int = 1
