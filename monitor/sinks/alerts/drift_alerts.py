"""Drift alarms into firing and resolved drift alerts, with the identity the model has.

Without repartition each input partition holds its own model of a segment, so the input
partition is part of the alert's identity: one partition going quiet never resolves what
another still fires. With repartition (`kafka.repartition`) a segment has one model for
the whole input, held by one internal partition: the alert is then named by the input
(`input_label`) and the segment, never by the internal topic, and its details say which
source record the detector alarmed at and which internal partition holds the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.events import Alert, DriftAlarm
from monitor.pipeline import Pipeline
from monitor.repartition.origin import Origin
from monitor.sinks.alerts.explain import drift_alert, drift_labels, drift_resolved

Key = tuple[str, int, str]  # the model's topic and partition, the segment


@dataclass(frozen=True, slots=True)
class Fired:
    """What the observer shows of one alarm: where (as the alert names it) and the
    source record it fired at (None without repartition)."""

    topic: str
    partition: int | None
    alarm: DriftAlarm
    source: Origin | None


class DriftAlerts:
    """`alarmed()` per batch, `assigned()`/`forget()` per rebalance. `submit` is None
    without an alert sink (the status page still lists alarms); `firing` says whether the
    receivers were last told an alert fires (resolves alerts fired before a restart)."""

    def __init__(self, submit: Callable[[Alert], None] | None,
                 firing: Callable[[Alert], bool], input_label: str | None = None) -> None:
        self.submit = submit
        self.firing = firing
        self.input_label = input_label
        self.drifting: set[Key] = set()

    def named(self, topic: str, partition: int) -> tuple[str, int | None]:
        """The topic and partition an alert of this model names."""
        if self.input_label is not None:
            return self.input_label, None
        return topic, partition

    def alarmed(self, topic: str, partition: int, pipeline: Pipeline,
                alarms: Sequence[DriftAlarm], origins: Sequence[Origin] | None, now: float,
                examples: Callable[[str, Sequence[str]], Sequence[Mapping[str, Any]]]
                ) -> list[Fired]:
        """Fire each alarm of a batch, then resolve the segments that calmed down.
        `origins` (aligned with the batch's events) name each alarm's source record;
        `examples(topic, ids)` describes example events remembered under the model's
        topic."""
        fired = []
        label_topic, label_part = self.named(topic, partition)
        start = pipeline.engine.index - (len(origins) if origins is not None else 0)
        for alarm in alarms:
            source = None
            if origins is not None and 0 <= alarm.index - start < len(origins):
                source = origins[alarm.index - start]
            fired.append(Fired(label_topic, label_part, alarm, source))
            # an episode may end within the batch that began it: it still resolves
            self.drifting.add((topic, partition, alarm.segment))
            if self.submit is not None:
                alert = drift_alert(label_topic, alarm, now, partition=label_part,
                                    examples=examples(topic, alarm.examples))
                if self.input_label is not None:
                    alert.details["model"] = {"topic": topic, "partition": partition}
                    if source is not None:
                        alert.details["source"] = source.where()
                self.submit(alert)
        self._resolve(topic, partition, pipeline, now)
        return fired

    def assigned(self, topic: str, partition: int, pipeline: Pipeline) -> None:
        """Segments still drifting in a restored state resolve here when they calm down."""
        self.drifting |= {(topic, partition, name)
                          for name, m in pipeline.engine.views() if m.drifting}

    def forget(self, topic: str, partition: int) -> list[dict[str, str]]:
        """A partition revoked: the label sets whose alerts this process must drop without
        a word (its new owner resolves them)."""
        gone = {d for d in self.drifting if d[:2] == (topic, partition)}
        self.drifting -= gone
        if self.input_label is None:
            return [{"topic": topic, "partition": str(partition)}]
        return [drift_labels(self.input_label, name, None) for _, _, name in sorted(gone)]

    def _resolve(self, topic: str, partition: int, pipeline: Pipeline, now: float) -> None:
        label_topic, label_part = self.named(topic, partition)
        for name, model in pipeline.engine.views():
            key = (topic, partition, name)
            if model.drifting:
                self.drifting.add(key)
            elif key in self.drifting:
                self.drifting.discard(key)
                if self.submit is not None:
                    self.submit(drift_resolved(label_topic, name, now, partition=label_part))
                    if self.input_label is None:
                        self._resolve_unpartitioned(topic, name, now)

    def _resolve_unpartitioned(self, topic: str, segment: str, now: float) -> None:
        """Drift alerts fired before their labels named the partition never resolve
        otherwise: resolve one still held as firing once no partition drifts there."""
        if any(t == topic and n == segment for t, _, n in self.drifting):
            return
        legacy = drift_resolved(topic, segment, now)
        if self.submit is not None and self.firing(legacy):
            self.submit(legacy)


def input_label(topics: Iterable[str], pattern: str | None) -> str:
    """How a repartitioned model's alerts name the input: its topics, or the pattern.

    >>> input_label(["payments", "cards"], None), input_label([], "events-.*")
    ('cards,payments', 'events-.*')
    """
    return pattern if pattern is not None else ",".join(sorted(topics))
