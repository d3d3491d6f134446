"""The observer's read side: what `/status` (JSON) and the status page (`/`) show.

Everything is read under the observer's lock, so a request never sees a half-updated
partition state; segment names are bounded as in `/metrics`, and a segment `/metrics`
folds into "other" is not named here either.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from monitor.observer import Observer
from monitor.sinks.labels import bounded_label
from monitor.sinks.metrics import OTHER, PartitionView

SEGMENT_ROWS = 50  # segments on the status page: drifting first, then the busiest


def status(obs: Observer, extra: dict[str, Any]) -> dict[str, Any]:
    """What `/status` shows: `extra` (the daemon's readiness and health), totals, each
    partition and the last alarm."""
    with obs.lock:
        parts = []
        for (t, p), pl in sorted(obs.partitions.items()):
            eng = pl.engine
            parts.append({
                "topic": t, "partition": p, "lag": obs.lag(t, p), "events": eng.index,
                "segments": eng.segment_count, "evicted": eng.evicted,
                "warming_up": sum(1 for m in (v for _, v in eng.views()) if not m.ready),
                "drifting": sorted(bounded_label(n) for n, m in eng.views()
                                   if m.drifting),
            })
        alarm = obs.last_alarm
        if alarm is not None and "segment" in alarm:
            alarm = alarm | {"segment": bounded_label(str(alarm["segment"]))}
        n = obs.totals
        counts = {"events": n.events, "scored": n.scored, "outliers": n.outliers,
                  "dead_letters": n.dead_letters, "alarms": n.alarms,
                  "checkpoints": n.checkpoints, "feedback": n.feedback,
                  "flag_precision": obs.precision.precision}
        return {**extra, **counts, "partitions": parts, "last_alarm": alarm}


def status_json(obs: Observer, extra: Callable[[], dict[str, Any]]) -> tuple[int, str, bytes]:
    body = orjson.dumps(status(obs, extra()), option=orjson.OPT_INDENT_2)
    return 200, "application/json", body


def page(obs: Observer, extra: dict[str, Any], rows: int = SEGMENT_ROWS) -> dict[str, Any]:
    """What the status page shows: `status()` plus at most `rows` segments, the newest
    alarms and outliers. Only segments named elsewhere are listed: drifting ones (as in
    `/status`), then the busiest that keep their name in `/metrics`; names bounded."""
    with obs.lock:
        shown_status = status(obs, extra)
        named = obs.metrics.collector.named_segments(
            PartitionView(t, p, pl.engine) for (t, p), pl in obs.partitions.items())
        ranked = heapq.nsmallest(
            rows, ((not m.drifting, -m.seen, name, key)
                   for key, pl in obs.partitions.items()
                   for name, m in pl.engine.views()
                   if m.drifting or name in named))
        segments = []
        for _, _, name, (t, p) in ranked:
            eng = obs.partitions[(t, p)].engine
            m = eng.view(name)
            assert m is not None  # ranked from this engine's views just above
            state = "drifting" if m.drifting else "stable" if m.ready else "warming up"
            segments.append({
                "topic": t, "partition": p, "segment": bounded_label(name),
                "state": state, "events": m.seen, "outliers": m.outliers,
                "outlier_rate": m.window_outlier_rate,
                "statistic": m.statistic, "threshold": eng.threshold,
            })
        total = sum(pl.engine.segment_count for pl in obs.partitions.values())
        # the same rule for the rows of alarms and outliers: a segment /metrics folds
        # into "other" (and that is not drifting) is not named here either
        shown = {bounded_label(n) for n in named} | {
            bounded_label(n) for pl in obs.partitions.values()
            for n, m in pl.engine.views() if m.drifting}

        def fold(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r if r["segment"] in shown else r | {"segment": OTHER}
                    for r in reversed(list(rows))]

        return {"status": shown_status, "segments": segments, "segments_total": total,
                "alarms": fold(obs.recent_alarms), "outliers": fold(obs.recent_outliers)}
