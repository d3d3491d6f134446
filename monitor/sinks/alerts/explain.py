"""Alert builders: what an outlier or a drift alarm says about itself.

Pure functions of a score or alarm plus the pipeline that produced it; no I/O. Event field
values enter a payload only through `alerts.allow_fields` (the router redacts again
regardless): `RecentFields` remembers the allow-listed fields of the newest events so an
alert can show exemplar events, not only their ids.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from monitor.embed.tabular import signed_log
from monitor.events import Alert, DriftAlarm, Event, Score
from monitor.sinks.labels import bounded_label

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

EVENT_MEMORY = 10_000  # events whose allow-listed fields are remembered, per process


class RecentFields:
    """The allow-listed fields of the newest events by (topic, event id), least recently
    used dropped first. Stores nothing when the allow-list is empty.

    >>> mem = RecentFields(("merchant",), size=2)
    >>> mem.remember("tx", [Event("a", fields={"merchant": "ACME", "card": "4111"}),
    ...                     Event("b", fields={"merchant": "Bolt"}), Event("c")])
    >>> mem.describe("tx", ["b"])
    [{'event_id': 'b', 'fields': {'merchant': 'Bolt'}}]
    >>> [e.get("fields") for e in mem.describe("tx", ["a", "b", "c"])]  # "a" was dropped
    [None, {'merchant': 'Bolt'}, {}]
    """

    def __init__(self, allow: Collection[str], size: int = EVENT_MEMORY) -> None:
        self.allow = tuple(allow)
        self.size = size
        self._fields: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._fields)

    def remember(self, topic: str, events: Iterable[Event]) -> None:
        if not self.allow:
            return
        memory, allow = self._fields, self.allow
        for ev in events:
            key = (topic, ev.id)
            memory[key] = {k: ev.fields[k] for k in allow if k in ev.fields}
            memory.move_to_end(key)
        while len(memory) > self.size:
            memory.popitem(last=False)

    def describe(self, topic: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        """``{"event_id", "fields"}`` per id; ``fields`` is left out for an event not
        remembered (older than the memory, from before a restart, or no allow-list)."""
        out: list[dict[str, Any]] = []
        for eid in ids:
            fields = self._fields.get((topic, eid))
            if fields is None:
                out.append({"event_id": eid})
            else:
                self._fields.move_to_end((topic, eid))
                out.append({"event_id": eid, "fields": dict(fields)})
        return out


def deviating_features(event: Event, pipeline: Pipeline, top: int = 3,
                       allow: Collection[str] = ()) -> list[dict[str, Any]]:
    """The numeric fields furthest from their robust centre, as robust z-scores.

    Field names and z-scores say why without saying what: the event's own value is added
    only for fields in `allow` (``alerts.allow_fields``), so no value leaks by default.
    """
    out: list[dict[str, Any]] = []
    for f in pipeline.numeric_scales():
        x = event.numeric.get(f.name, math.nan)
        if math.isnan(x):
            continue
        v = float(signed_log(x)) if f.log else x  # type: ignore[arg-type]
        z = (v - f.center) / f.spread
        item: dict[str, Any] = {"field": f.name, "z": round(float(z), 2)}
        if f.name in allow:
            item["value"] = x
        out.append(item)
    return sorted(out, key=lambda d: -abs(d["z"]))[:top]


def outlier_alert(topic: str, event: Event, s: Score, pipeline: Pipeline, now: float,
                  allow: Collection[str] = (), memory: RecentFields | None = None) -> Alert:
    """One outlier; the sink groups a storm of them into counted notifications."""
    view = pipeline.engine.view(s.segment)
    exemplars = view.exemplars(s.centroid) if view is not None else []
    return explain_outlier(
        topic, s, now, exemplars=exemplars,
        exemplar_events=memory.describe(topic, exemplars) if memory is not None else None,
        features=deviating_features(event, pipeline, allow=allow),
        fields={k: v for k, v in event.fields.items() if k in allow})


def explain_outlier(topic: str, s: Score, now: float, *, exemplars: Sequence[str] = (),
                    exemplar_events: Sequence[Mapping[str, Any]] | None = None,
                    features: Sequence[dict[str, Any]] = (),
                    fields: Mapping[str, Any] | None = None) -> Alert:
    """The outlier alert for score `s`: the one shape every receiver and test sees.

    `details["event_id"]` names the event (the sink ranks and shows the worst ones);
    `centroid_exemplars` are the ids of events that formed its nearest centroid and
    `exemplar_events` the same events with their allow-listed fields when remembered;
    `fields` should already be allow-listed, the sink redacts them again regardless.
    """
    if exemplar_events is None:
        exemplar_events = [{"event_id": e} for e in exemplars]
    return Alert(
        kind="outlier", status="firing",
        labels={"topic": topic, "segment": bounded_label(s.segment)},
        annotations={"summary": f"outlier in {topic} segment {bounded_label(s.segment)}"},
        details={"event_id": s.event_id, "score": s.score, "p_value": s.p_value,
                 "fraud_similarity": s.fraud_similarity, "risk": s.risk,
                 "nearest_centroid": s.centroid, "centroid_exemplars": list(exemplars),
                 "exemplar_events": [dict(e) for e in exemplar_events],
                 "deviating_features": [dict(f) for f in features],
                 "fields": dict(fields or {}), "driver": s.driver,
                 "evidence": None if s.evidence is None else dict(s.evidence)},
        starts_at=now)


def drift_labels(topic: str, segment: str, partition: int | None) -> dict[str, str]:
    """A segment's model lives in one partition: the partition is part of the identity,
    so one partition going quiet never resolves the alert another partition still fires."""
    labels = {"topic": topic, "segment": bounded_label(segment)}
    if partition is not None:
        labels["partition"] = str(partition)
    return labels


def drift_resolved(topic: str, segment: str, now: float, *,
                   partition: int | None = None) -> Alert:
    """The segment stayed quiet for the hysteresis: same fingerprint as its firing alert."""
    where = f"{topic}" if partition is None else f"{topic}[{partition}]"
    return Alert(kind="drift", status="resolved",
                 labels=drift_labels(topic, segment, partition),
                 annotations={"summary": f"drift in {where} segment "
                                         f"{bounded_label(segment)} resolved"},
                 starts_at=now, ends_at=now)


def drift_alert(topic: str, alarm: DriftAlarm, now: float, *, partition: int | None = None,
                examples: Sequence[Mapping[str, Any]] | None = None) -> Alert:
    """A segment's detector alarmed: the statistic, what moved, and examples of the new
    events (`example_ids`, from the clusters that grew; `example_events` adds their
    allow-listed fields when remembered)."""
    if examples is None:
        examples = [{"event_id": e} for e in alarm.examples]
    where = f"{topic}" if partition is None else f"{topic}[{partition}]"
    return Alert(
        kind="drift", status="firing", labels=drift_labels(topic, alarm.segment, partition),
        annotations={"summary": f"drift in {where} segment {bounded_label(alarm.segment)}",
                     "description": f"Shiryaev-Roberts statistic {alarm.statistic:.3g} >= "
                                    f"{alarm.threshold:.3g} at event {alarm.index}"},
        details={"statistic": alarm.statistic, "threshold": alarm.threshold,
                 "detector": alarm.detector, "index": alarm.index,
                 "grown_clusters": list(alarm.grown), "shrunk_clusters": list(alarm.shrunk),
                 "centroid_shift": alarm.centroid_shift,
                 "occupancy_divergence": alarm.occupancy_divergence,
                 "outlier_rate": alarm.outlier_rate, "example_ids": list(alarm.examples),
                 "example_events": [dict(e) for e in examples]},
        starts_at=now)
