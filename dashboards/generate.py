"""Generate the Grafana dashboards in this folder from code: `python dashboards/generate.py`.

The JSON files beside this script are outputs; never edit them by hand. A test regenerates
them and fails on any difference, and checks every panel's query against the metrics the
daemon exports.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'topic=~"$topic"'


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)
    kind: str = "timeseries"
    width: int = 12
    height: int = 8


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DS,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if p.kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr,
                     "legendFormat": legend} for i, (expr, legend) in enumerate(p.targets)],
    }


def _variables(segment: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "topic", "type": "query", "datasource": DS, "label": "Topic",
         "query": {"query": "label_values(monitor_events_consumed_total, topic)",
                   "refId": "topic"},
         "definition": "label_values(monitor_events_consumed_total, topic)",
         "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2},
    ]
    if segment:
        out.append({"name": "segment", "type": "query", "datasource": DS, "label": "Segment",
                    "query": {"query": "label_values(monitor_segment_events_total{" + SEL + "}, "
                                       "segment)", "refId": "segment"},
                    "definition": "label_values(monitor_segment_events_total, segment)",
                    "includeAll": False, "multi": False, "refresh": 2})
    return out


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              segment: bool = False) -> dict[str, Any]:
    laid: list[dict[str, Any]] = []
    x = y = 0
    for i, p in enumerate(panels, start=1):
        if x + p.width > 24:
            x, y = 0, y + 8
        laid.append(_panel(p, i, x, y))
        x += p.width
    return {
        "uid": uid, "title": title, "description": description, "editable": False,
        "schemaVersion": 39, "version": 1, "tags": ["monitor"], "timezone": "utc",
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
        "templating": {"list": _variables(segment)}, "panels": laid,
        "annotations": {"list": []},
    }


def overview() -> dict[str, Any]:
    rate = "sum by (topic) (rate({m}{{" + SEL + "}}[5m]))"
    panels = [
        Panel("Throughput", "Records consumed and events scored per second.", "ops",
              ((rate.format(m="monitor_events_consumed_total"), "consumed {{topic}}"),
               (rate.format(m="monitor_events_scored_total"), "scored {{topic}}"))),
        Panel("Consumer lag", "Records behind the high watermark, per partition.", "short",
              (("max by (topic, partition) (monitor_consumer_lag_records{" + SEL + "})",
                "{{topic}}/{{partition}}"),)),
        Panel("Processing latency", "Event time to scored: p50 and p99.", "s",
              (("histogram_quantile(0.5, sum by (le) (rate("
                "monitor_processing_latency_seconds_bucket{" + SEL + "}[5m])))", "p50"),
               ("histogram_quantile(0.99, sum by (le) (rate("
                "monitor_processing_latency_seconds_bucket{" + SEL + "}[5m])))", "p99"))),
        Panel("Outlier rate", "Share of scored events with p <= alpha (expected about alpha).",
              "percentunit",
              (("sum by (topic) (rate(monitor_outliers_total{" + SEL + "}[5m])) / "
                "sum by (topic) (rate(monitor_events_scored_total{" + SEL + "}[5m]))",
                "{{topic}}"),)),
        Panel("Drift statistic by segment", "Shiryaev-Roberts statistic per segment; the "
              "alarm threshold follows from the false-alarm budget.", "short",
              (("max by (segment) (monitor_drift_statistic{" + SEL + "})", "{{segment}}"),
               ("max(monitor_drift_threshold{" + SEL + "})", "threshold"))),
        Panel("Segments drifting", "Segments whose drift state is 1 (alarm plus hysteresis).",
              "short", (("sum(max by (segment) (monitor_drift_state{" + SEL + "}))",
                         "drifting"),), kind="stat", width=6),
        Panel("Drift alarms", "Alarms raised in the time range.", "short",
              (("sum(increase(monitor_drift_alarms_total{" + SEL + "}[$__range]))",
                "alarms"),), kind="stat", width=6),
        Panel("Dead-letter rate", "Undecodable or invalid records per second.", "ops",
              ((rate.format(m="monitor_events_dead_lettered_total"), "{{topic}}"),)),
        Panel("Alert notifications", "Notifications delivered and failed (rejected or expired) "
              "per second.", "ops",
              (("sum(rate(monitor_alerts_sent_total[5m]))", "sent"),
               ("sum(rate(monitor_alerts_failed_total[5m]))", "failed"))),
        Panel("Alerts pending", "Notifications waiting in the outbox (being retried).", "short",
              (("sum(monitor_alerts_pending)", "pending"),), kind="stat", width=6),
        Panel("Checkpoint health", "Seconds since the last successful checkpoint of the "
              "stalest replica, and the p99 checkpoint duration.", "s",
              (("max(time() - monitor_checkpoint_last_success_timestamp_seconds)",
                "since last"),
               ("histogram_quantile(0.99, sum by (le) (rate("
                "monitor_checkpoint_duration_seconds_bucket[15m])))", "p99 duration"))),
        Panel("Embed time", "p50 and p99 wall time to embed one batch.", "s",
              (("histogram_quantile(0.5, sum by (le) (rate(monitor_embed_batch_seconds_bucket"
                "[5m])))", "p50 batch"),
               ("histogram_quantile(0.99, sum by (le) (rate("
                "monitor_embed_batch_seconds_bucket[5m])))", "p99 batch"))),
        Panel("Embedding cache hit ratio", "Share of text lookups answered by the embedding "
              "cache (lowest replica).", "percentunit",
              (("min(monitor_embedding_cache_hit_ratio)", "hit ratio"),), kind="stat",
              width=6),
        Panel("Active segments", "Segments held in memory per partition.", "short",
              (("sum by (topic) (monitor_active_segments{" + SEL + "})", "{{topic}}"),)),
    ]
    return dashboard("monitor-overview", "monitor / overview",
                     "Throughput, lag, latency, outliers, drift, alerts and checkpoints.",
                     panels)


def segment_drilldown() -> dict[str, Any]:
    s = SEL + ', segment="$segment"'
    panels = [
        Panel("Drift statistic", "Shiryaev-Roberts statistic against its threshold.", "short",
              (("max(monitor_drift_statistic{" + s + "})", "statistic"),
               ("max(monitor_drift_threshold{" + SEL + "})", "threshold"))),
        Panel("Drift state", "1 while drifting (alarm plus hysteresis).", "short",
              (("max(monitor_drift_state{" + s + "})", "state"),)),
        Panel("Centroid shift", "1 - cosine of the recent window's mass centre against the "
              "reference's.", "short", (("max(monitor_centroid_shift{" + s + "})", "shift"),)),
        Panel("Occupancy divergence", "Jensen-Shannon divergence (bits) of cluster occupancy, "
              "window vs reference.", "short",
              (("max(monitor_occupancy_divergence_bits{" + s + "})", "JS divergence"),)),
        Panel("Outlier rate", "Window outlier rate and the long-run rate.", "percentunit",
              (("max(monitor_window_outlier_ratio{" + s + "})", "window"),
               ("sum(rate(monitor_outliers_total{" + s + "}[15m])) / "
                "sum(rate(monitor_segment_events_total{" + s + "}[15m]))", "15m"))),
        Panel("Events", "Events per second in the segment.", "ops",
              (("sum(rate(monitor_segment_events_total{" + s + "}[5m]))", "events/s"),)),
        Panel("Reference", "Centroids and decayed weight of the segment's reference.", "short",
              (("sum(monitor_reference_centroids{" + s + "})", "centroids"),
               ("sum(monitor_reference_weight{" + s + "})", "weight"))),
        Panel("Reference age", "Seconds since the reference last learned (event time).", "s",
              (("max(monitor_reference_age_seconds{" + s + "})", "age"),)),
    ]
    return dashboard("monitor-segment", "monitor / segment drill-down",
                     "Drift evidence and reference health of one segment.", panels,
                     segment=True)


DASHBOARDS = {"monitor-overview.json": overview, "monitor-segment.json": segment_drilldown}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=True) + "\n"
            for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    for name, text in render().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
