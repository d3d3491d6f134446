"""`monitor replay`: score a JSONL/CSV stream offline and report quality and drift.

The same pipeline as the daemon, fed from a file: rejects go to a rejects file with line
number and reason (never silently dropped), scored events to JSONL, a JSON report at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from tqdm import tqdm

from monitor.config import MonitorConfig
from monitor.errors import DecodeError
from monitor.events import DriftAlarm, Event, Score
from monitor.pipeline import Pipeline
from monitor.source.files import count_lines, decode_raw, read_raw
from monitor.tools.evaluate import auroc, quality_report

if TYPE_CHECKING:
    from monitor.report.collect import ReplayCollector

log = logging.getLogger(__name__)


def decode_file(path: str, cfg: MonitorConfig, rejects: TextIO | None,
                counts: dict[str, int]) -> Iterator[Event]:
    """Decoded events of a file; failures are written to `rejects` and counted."""
    name = Path(path).name
    for line, raw in read_raw(path):
        try:
            yield decode_raw(raw, cfg.fields, f"{name}:{line}")
        except DecodeError as err:
            counts["rejected"] += 1
            if rejects is not None:
                rejects.write(orjson.dumps({"file": path, "line": line, "reason": err.reason})
                              .decode() + "\n")


def _batches(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for e in events:
        batch.append(e)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_reference(pipeline: Pipeline, path: str, cfg: MonitorConfig, rejects: TextIO | None,
                   progress: bool, collector: ReplayCollector | None = None,
                   desc: str = "reference") -> dict[str, int]:
    """Embed a reference file (with a progress bar) and fit every segment's reference.

    `monitor fit` runs this same function and saves the pipeline's state after it, so a
    seeded daemon and `replay --reference` start from the same state."""
    counts = {"rejected": 0}
    events = list(decode_file(path, cfg, rejects, counts))
    bar = tqdm(total=len(events), desc=desc, unit="ev", disable=not progress)
    import numpy as np

    parts, texts = [], []
    for batch in _batches(iter(events), 256):
        x, text = pipeline.encode(batch)
        parts.append(x)
        texts.append(text)
        bar.update(len(batch))
    bar.close()
    if not events:
        return {"rejected": counts["rejected"]}
    x = np.vstack(parts)
    if collector is not None:
        collector.reference(events, x)
    text = None if texts[0] is None else np.concatenate([t for t in texts if t is not None])
    used = pipeline.engine.fit_reference(events, x, text)
    return {"events": len(events), "rejected": counts["rejected"], "segments": len(used)}


@dataclass
class _Tally:
    """What a replay counts as it goes, and the labelled results the quality report needs."""

    events: int = 0
    scored: int = 0
    outliers: int = 0
    alarms: list[DriftAlarm] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    risks: list[float] = field(default_factory=list)
    fraud_sims: list[float] = field(default_factory=list)
    evidence: list[dict[str, float]] = field(default_factory=list)

    def add(self, event: Event, res: Score) -> None:
        self.events += 1
        self.outliers += res.outlier
        if res.p_value is None:
            return
        self.scored += 1
        if event.label is not None:
            self.flags.append(res.outlier)
            self.labels.append(event.label)
            self.scores.append(res.score)
            self.risks.append(res.risk)
            self.fraud_sims.append(res.fraud_similarity)
            if res.evidence is not None:
                self.evidence.append(res.evidence)

    def report(self, rejected: int, elapsed: float, segments: int,
               reference: dict[str, int]) -> dict[str, Any]:
        report: dict[str, Any] = {
            "events": self.events,
            "scored": self.scored,
            "warming_up": self.events - self.scored,
            "rejected": rejected,
            "outliers": self.outliers,
            "outlier_rate": self.outliers / self.scored if self.scored else 0.0,
            "events_per_s": self.events / elapsed,
            "alarms": [a.as_dict() for a in self.alarms],
            "segments": segments,
            "reference": reference,
        }
        labels = self.labels
        if labels and any(labels) and not all(labels):
            report.update(quality_report(labels, self.scores, self.flags))
            report["auroc_risk"] = auroc(labels, self.risks)
            report["auroc_fraud_similarity"] = auroc(labels, self.fraud_sims)
            report["auroc_by_group"] = auroc_by_group(labels, self.evidence)
        return report


def _process(pipeline: Pipeline, batch: list[Event], feedback: bool,
             collector: ReplayCollector | None) -> tuple[list[Score], list[DriftAlarm]]:
    seen = batch if feedback else [replace(e, label=None) for e in batch]
    if collector is None:
        return pipeline.process(seen)
    # the same two steps, keeping the embeddings for the report
    x, text = pipeline.encode(seen)
    results, alarms = pipeline.engine.process(seen, x, text)
    collector.batch(batch, x, results, alarms)
    return results, alarms


def _scored_row(event: Event, res: Score) -> bytes:
    row = res.as_dict()
    if event.label is not None:
        row["label"] = event.label
    return orjson.dumps(row) + b"\n"


def replay(
    cfg: MonitorConfig,
    stream: str,
    pipeline: Pipeline,
    *,
    reference: str | None = None,
    out: str | None = None,
    rejects: str | None = None,
    batch_size: int = 256,
    progress: bool = True,
    feedback: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    collector: ReplayCollector | None = None,
) -> dict[str, Any]:
    """Run a replay end to end and return the report (see README for its fields).

    With `feedback`, each label reaches the engine right after its event is scored (as an
    analyst's confirmation would): confirmed fraud builds prototypes and never updates the
    reference. Without it, labels are used for the quality metrics only. A `collector`
    (`monitor.report`) is shown the reference embeddings and every processed batch.
    """
    counts = {"rejected": 0}
    tally = _Tally()
    with ExitStack() as stack:
        rej = stack.enter_context(open(rejects, "w")) if rejects else None
        sink = stack.enter_context(open(out, "wb")) if out else None
        ref_info = (load_reference(pipeline, reference, cfg, rej, progress, collector)
                    if reference else {})
        bar = stack.enter_context(tqdm(total=count_lines(stream), desc="replay", unit="ev",
                                       disable=not progress))
        start = clock()
        for batch in _batches(decode_file(stream, cfg, rej, counts), batch_size):
            results, new_alarms = _process(pipeline, batch, feedback, collector)
            tally.alarms.extend(new_alarms)
            for event, res in zip(batch, results, strict=True):
                tally.add(event, res)
                if sink is not None:
                    sink.write(_scored_row(event, res))
            bar.update(len(batch))
            bar.set_postfix(outliers=tally.outliers, alarms=len(tally.alarms), refresh=False)
        elapsed = max(clock() - start, 1e-9)
    return tally.report(counts["rejected"], elapsed, pipeline.engine.segment_count, ref_info)


def auroc_by_group(labels: list[bool], evidence: list[dict[str, float]]) -> dict[str, float]:
    """How well each evidence column alone ranks the labelled events (smaller p-value =
    more suspicious): tells a user which fields carry signal. Empty without per-field
    evidence (the embedding's score is then the whole `auroc`).

    >>> auroc_by_group([True, False], [{"a": 0.01, "b": 0.5}, {"a": 0.4, "b": 0.2}])
    {'a': 1.0, 'b': 0.0}
    """
    if len(evidence) != len(labels):
        return {}
    return {name: auroc(labels, [-row[name] for row in evidence]) for name in evidence[0]}
