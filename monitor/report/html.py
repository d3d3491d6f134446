"""`monitor replay --html`: one self-contained HTML page (inline CSS and SVG, no script).

A Content-Security-Policy of ``default-src 'none'`` makes the browser refuse any request
the page could make; nothing in it refers outside the file. Event values appear only for
fields in ``alerts.allow_fields`` (none by default), as in alert payloads; the config is
shown with secrets redacted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import yaml
from pydantic import SecretStr

from monitor import __version__
from monitor.config import MonitorConfig
from monitor.report import charts
from monitor.report.collect import ReplayCollector
from monitor.report.svg import fmt, hbars
from monitor.sinks.labels import bounded_label

SECRET_SUFFIXES = ("password", "secret", "token")
REDACTED = "<redacted>"
MAX_SEGMENT_ROWS, MAX_DRIFT_CHARTS, MAX_ALARM_ROWS = 50, 8, 100
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1160px;color:#222;
padding:0 16px}h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:30px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}table{border-collapse:collapse;margin:8px 0}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f6f8;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f9;padding:8px;overflow:auto;font-size:12px;max-height:420px}
.verdict{font-size:16px;margin:4px 0}.bad{color:#b3261e;font-weight:600}.ok{color:#1e7b34}
.muted{color:#666}.charts{display:flex;flex-wrap:wrap;gap:8px}svg{background:#fff}
svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}svg .tick{font-size:11px;fill:#444}
svg .title{font-size:13px;font-weight:600;fill:#222}svg .label{font-size:12px;fill:#444}
code{font-size:12px}.grow{flex:1;min-width:320px}h3{font-size:15px;margin:8px 0 4px}
table.wide{font-size:12px}
"""


def redact_config(value: Any, key: str = "") -> Any:
    """Plain data for display: secrets (keys ending in password/secret/token, SecretStr
    values, HTTP header values) are replaced, URLs keep only scheme and host.

    >>> redact_config({"kafka": {"sasl_plain_password": SecretStr("x"), "ssl_password": None},
    ...                "receivers": [{"url": "https://hooks.example/T1/B2/xyz", "secret": "s",
    ...                               "headers": {"Authorization": "Bearer t"}}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'kafka': {'sasl_plain_password': '<redacted>', 'ssl_password': None},
     'receivers': [{'url': 'https://hooks.example/…', 'secret': '<redacted>',
                    'headers': {'Authorization': '<redacted>'}}]}
    """
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = str(k)
            if v is not None and (name.lower().endswith(SECRET_SUFFIXES) or key == "headers"):
                out[name] = REDACTED
            else:
                out[name] = redact_config(v, name)
        return out
    if isinstance(value, (list, tuple)):
        return [redact_config(v, key) for v in value]
    if isinstance(value, str) and key.lower().endswith("url") and "://" in value:
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.hostname or ''}/…"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _yaml(cfg: MonitorConfig, set_only: bool) -> str:
    tree = redact_config(cfg.model_dump(mode="python", exclude_defaults=set_only))
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).strip() or "{}"


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
           cls: str = "") -> str:
    out = [f'<table class="{cls}">' if cls else "<table>"]
    if any(head):
        out += ["<tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>")
        for j, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, (int, float)):
                text = escape(str(cell))
            else:
                text = fmt(cell) if isinstance(cell, float) else f"{cell:,}"
            out.append(f'<td class="n">{text}</td>' if j in numeric else f"<td>{text}</td>")
        out.append("</tr>")
    return "".join(out) + "</table>"


def _verdicts(report: dict[str, Any], alpha: float) -> str:
    rate, n, k = report["outlier_rate"], report["scored"], report["outliers"]
    ratio = rate / alpha if alpha else math.nan
    # binomial z-score of the count against n·alpha: beyond 3 the excess is not chance
    z = (k - n * alpha) / math.sqrt(n * alpha * (1 - alpha)) if n and 0 < alpha < 1 else 0.0
    cls, word = ("bad", "significantly above") if z > 3 else ("ok", "consistent with")
    lines = [f'<p class="verdict {cls}">{k:,} outliers of {n:,} scored events at alpha '
             f"{fmt(alpha)}: rate {rate:.4f}, {ratio:.1f}× alpha ({word} the false-positive "
             "rate under no drift)</p>"]
    alarms = report["alarms"]
    if alarms:
        first = alarms[0]
        lines.append(f'<p class="verdict bad">{len(alarms)} drift alarm(s); the first at event '
                     f'{first["index"]:,} in segment {escape(first["segment"])}</p>')
    else:
        lines.append('<p class="verdict ok">No drift alarm</p>')
    if "auroc" in report:
        lines.append(f'<p class="verdict">With labels: AUROC {report["auroc"]:.4f}, AUROC of '
                     f'risk {report["auroc_risk"]:.4f}, at alpha precision '
                     f'{fmt(report["precision_at_alpha"])} recall '
                     f'{fmt(report["recall_at_alpha"])}</p>')
    return "".join(lines)


def _header(report: dict[str, Any], cfg: MonitorConfig, stream: str, reference: str | None
            ) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ref = report.get("reference") or {}
    meta = [("data file", stream), ("reference file", reference or "none (stream warm-up)"),
            ("generated", f"{now} by monitor {__version__}")]
    counts = [("events", report["events"]), ("scored", report["scored"]),
              ("warming up", report["warming_up"]), ("rejected (undecodable)", report["rejected"]),
              ("outliers", report["outliers"]), ("drift alarms", len(report["alarms"])),
              ("segments", report["segments"]), ("reference events", ref.get("events", 0)),
              ("throughput (events/s)", round(report["events_per_s"], 1))]
    return ("<h1>monitor replay report</h1>" + _table(["", ""], meta)
            + "<h2>Summary</h2>" + _verdicts(report, cfg.score.alpha)
            + '<div class="charts"><div>' + _table(["count", ""], counts, numeric=[1])
            + '</div><div class="grow"><h3>Config (values that differ from the defaults; '
            "secrets redacted)</h3><pre>" + escape(_yaml(cfg, True))
            + "</pre><details><summary>full config</summary><pre>"
            + escape(_yaml(cfg, False)) + "</pre></details></div></div>")


def _segments(c: ReplayCollector, threshold: float) -> str:
    seg, outlier, p = c.array("segment"), c.array("outlier").astype(bool), c.array("p")
    names = list(c.segment_codes)
    n = max(len(names), 1)
    events = np.bincount(seg, minlength=n)
    scored = np.bincount(seg, weights=~np.isnan(p), minlength=n)
    flagged = np.bincount(seg, weights=outlier, minlength=n)
    alarms: dict[str, int] = {}
    for a in c.alarms:
        alarms[a.segment] = alarms.get(a.segment, 0) + 1
    order = np.argsort(-events, kind="stable")[: len(names)]
    rows = []
    for k in order[:MAX_SEGMENT_ROWS].tolist():
        rate = flagged[k] / scored[k] if scored[k] else math.nan
        rows.append((bounded_label(names[k]), int(events[k]), int(scored[k]), int(flagged[k]),
                     float(rate), float(rate / c.alpha), alarms.get(names[k], 0)))
    out = [f"<p>{len(names):,} segment(s); drift threshold {fmt(threshold)} for every segment "
           f"(the false-alarm budget). Outlier rate against alpha = {fmt(c.alpha)}: a "
           "calibrated segment without drift sits near 1×.</p>",
           _table(["segment", "events", "scored", "outliers", "outlier rate", "× alpha",
                   "alarms"], rows, numeric=[1, 2, 3, 4, 5, 6])]
    if len(names) > MAX_SEGMENT_ROWS:
        out.append(f'<p class="muted">{len(names) - MAX_SEGMENT_ROWS:,} smaller segments '
                   "not listed.</p>")
    shown = [names[k] for k in order[:MAX_DRIFT_CHARTS].tolist()]
    shown += [s for s in alarms if s not in shown][: MAX_DRIFT_CHARTS]
    out.append('<div class="charts">' + "".join(charts.drift_chart(c, s, threshold)
                                               for s in shown) + "</div>")
    return "".join(out)


def _evidence(ev: dict[str, float] | None, top: int = 3) -> str:
    """The `top` smallest column p-values, smallest first."""
    if not ev:
        return ""
    items = sorted(ev.items(), key=lambda kv: kv[1])
    more = f"; {len(items) - top} more" if len(items) > top else ""
    return "; ".join(f"{k} {v:.2g}" for k, v in items[:top]) + more


def _top(c: ReplayCollector) -> str:
    tops = c.top_outliers()
    if not tops:
        return "<p>No event was flagged.</p>"
    rows = [(t["index"], t["id"], bounded_label(t["segment"]), float(t["p_value"]),
             f"{t['risk']:.4f}", float(t["fraud_similarity"]), t["driver"] or "embedding",
             _evidence(t["evidence"]) or "(embedding only)",
             "; ".join(f"{f['field']} z={f['z']}" + (f" ({f['value']})" if "value" in f else "")
                       for f in t["features"]),
             f"{t['centroid']}: {', '.join(t['exemplars'])}",
             ", ".join(f"{k}={v}" for k, v in t["fields"].items()),
             {None: "", True: "fraud", False: "normal"}[t["label"]]) for t in tops]
    return ("<p>The flagged events with the highest risk, with what their outlier alert "
            "carries: the driving evidence column, each column's p-value, the numeric fields "
            "furthest from their centre (robust z), the nearest centroid's exemplar ids, and "
            "the fields allowed by <code>alerts.allow_fields</code> "
            f"({escape(', '.join(c.allow)) or 'none'}).</p>"
            + _table(["index", "id", "segment", "p-value", "risk", "fraud sim.", "driver",
                      "evidence p-values", "deviating fields", "centroid: exemplars",
                      "allowed fields", "label"], rows, numeric=[0, 3, 4, 5], cls="wide"))


def _alarms(c: ReplayCollector) -> str:
    if not c.alarms:
        return "<p>No drift alarm.</p>"
    rows = []
    for a in c.alarms[:MAX_ALARM_ROWS]:
        when = f"event {a.index:,}"
        if a.timestamp is not None:
            when += dt.datetime.fromtimestamp(a.timestamp, dt.UTC).strftime(
                " (%Y-%m-%d %H:%M:%S UTC)")
        rows.append((when, bounded_label(a.segment), f"{fmt(a.statistic)} ≥ {fmt(a.threshold)}",
                     ", ".join(map(str, a.grown)), ", ".join(map(str, a.shrunk)),
                     float(a.centroid_shift), float(a.occupancy_divergence),
                     float(a.outlier_rate), ", ".join(a.examples)))
    more = len(c.alarms) - MAX_ALARM_ROWS
    return (_table(["when", "segment", "statistic", "grown clusters", "shrunk clusters",
                    "centroid shift", "occupancy divergence", "outlier rate", "example ids"],
                   rows, numeric=[5, 6, 7], cls="wide")
            + (f'<p class="muted">{more:,} more alarms not listed.</p>' if more > 0 else ""))


def _labels(c: ReplayCollector, report: dict[str, Any]) -> str:
    curves = charts.labelled(c, report)
    if curves is None or "auroc" not in report:
        return "<p>No labels with both classes in this replay (<code>--label-field</code>).</p>"
    keys = ("auroc", "auprc", "fpr_at_95_tpr", "precision_at_alpha", "recall_at_alpha",
            "auroc_risk", "auroc_fraud_similarity")
    out = [_table(["metric", "value"], [(k, float(report[k])) for k in keys], numeric=[1]),
           f'<div class="charts">{curves[0]}{curves[1]}</div>']
    groups = sorted(report.get("auroc_by_group", {}).items(), key=lambda kv: -kv[1])
    if groups:
        out.append(hbars(groups, title="AUROC of each evidence column alone", ref=0.5))
    else:
        out.append('<p class="muted">AUROC by field group: the embedding is the only '
                   "evidence (per-field evidence off).</p>")
    return "".join(out)


def render(report: dict[str, Any], c: ReplayCollector, cfg: MonitorConfig, *, stream: str,
           reference: str | None = None) -> str:
    threshold = c.pipeline.engine.threshold
    body = [
        _header(report, cfg, stream, reference),
        "<h2>Outliers</h2>", charts.outlier_story(c),
        f'<div class="charts">{charts.p_histogram(c)}</div>',
        "<h2>Segments</h2>", _segments(c, threshold),
        "<h2>Top outliers</h2>", _top(c),
        "<h2>Drift alarms</h2>", _alarms(c),
        "<h2>Embedding map</h2>", charts.embedding_map(c),
        "<h2>Labels</h2>", _labels(c, report),
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\"><title>monitor replay report</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_html(path: str | Path, report: dict[str, Any], c: ReplayCollector,
               cfg: MonitorConfig, *, stream: str, reference: str | None = None) -> int:
    """Write the page; returns its size in bytes."""
    data = render(report, c, cfg, stream=stream, reference=reference).encode()
    Path(path).write_bytes(data)
    return len(data)
