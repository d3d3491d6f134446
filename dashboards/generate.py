"""Generate the Grafana dashboards in this folder from code: `python dashboards/generate.py`.

Panels, queries and variables are built with Grafana's own builders (the
`grafana-foundation-sdk` package, `pip install -e '.[dev]'`); this file only says which
panels there are. The JSON files beside this script are outputs; never edit them by hand.
A test regenerates them and fails on any difference, and checks every panel's query
against the metrics the daemon exports.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos, VariableRefresh

HERE = Path(__file__).resolve().parent
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
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


def _panel(p: Panel, pid: int, x: int, y: int) -> timeseries.Panel | stat.Panel:
    builder: timeseries.Panel | stat.Panel
    if p.kind == "timeseries":
        builder = (timeseries.Panel()
                   .legend(common_b.VizLegendOptions().show_legend(True)
                           .display_mode(common.LegendDisplayMode.LIST)
                           .placement(common.LegendPlacement.BOTTOM))
                   .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE)
                            .sort(common.SortOrder.NONE)))
    elif p.kind == "stat":
        builder = stat.Panel().reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
    else:
        raise ValueError(f"panel kind {p.kind!r}")
    builder.id(pid).title(p.title).description(p.description).datasource(DS).unit(p.unit)
    builder.grid_pos(GridPos(h=p.height, w=p.width, x=x, y=y))
    for i, (expr, legend) in enumerate(p.targets):
        builder.with_target(prometheus.Dataquery().ref_id(chr(ord("A") + i)).datasource(DS)
                            .expr(expr).legend_format(legend))
    return builder


def _variables(segment: bool) -> list[Any]:
    out: list[Any] = [
        dash_b.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dash_b.QueryVariable("topic").label("Topic").datasource(DS)
        .query({"query": "label_values(monitor_events_consumed_total, topic)", "refId": "topic"})
        .include_all(True).multi(True).all_value(".*")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED),
    ]
    if segment:
        out.append(dash_b.QueryVariable("segment").label("Segment").datasource(DS)
                   .query({"query": "label_values(monitor_segment_events_total{" + SEL + "}, "
                                    "segment)", "refId": "segment"})
                   .include_all(False).multi(False)
                   .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
    return out


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              segment: bool = False) -> dash_b.Dashboard:
    board = (dash_b.Dashboard(title).uid(uid).description(description).readonly()
             .version(1).tags(["monitor"]).timezone("utc").time("now-1h", "now")
             .refresh("30s").variables(_variables(segment)))
    x = y = 0
    # explicit rows of 8: a panel that does not fit wraps (the SDK's own placement would
    # start a 12-wide panel at x=18)
    for i, p in enumerate(panels, start=1):
        if x + p.width > 24:
            x, y = 0, y + 8
        board.with_panel(_panel(p, i, x, y))
        x += p.width
    return board


def overview() -> dash_b.Dashboard:
    rate = "sum by (topic) (rate({m}{{" + SEL + "}}[5m]))"
    panels = [
        Panel("Throughput", "Records consumed and events scored per second.", "ops",
              ((rate.format(m="monitor_events_consumed_total"), "consumed {{topic}}"),
               (rate.format(m="monitor_events_scored_total"), "scored {{topic}}"))),
        Panel("Consumer lag", "Records behind the high watermark, per partition (with "
              "kafka.repartition: the router's input partitions, then the scorer's internal "
              "ones).", "short",
              (("max by (topic, partition) ({__name__=~\"monitor_consumer_lag_records|"
                "monitor_router_lag_records\", " + SEL + "})", "{{topic}}/{{partition}}"),)),
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


def segment_drilldown() -> dash_b.Dashboard:
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
    return {name: json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
            for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    for name, text in render().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
