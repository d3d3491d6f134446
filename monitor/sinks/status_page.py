"""The daemon's status page (`GET /`): a small read-only HTML view of `monitor.sinks.status.page`.

One self-contained document: inline CSS, no script, no form, no external asset (a
Content-Security-Policy meta tag forbids loading any), a meta refresh every `REFRESH_S`
seconds. It shows what `/status` shows plus the busiest segments, the newest alarms and
outliers: ids, scores and segment names (already bounded by the observer), event fields
only as the observer kept them (those in `alerts.allow_fields`). Every value is escaped
with `html.escape`; long ids and field values are cut like labels.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from monitor.sinks.labels import bounded_label

__all__ = ["CONTENT_TYPE", "REFRESH_S", "render"]

CONTENT_TYPE = "text/html; charset=utf-8"
REFRESH_S = 5
VALUE_LIMIT = 120  # characters of one event field value on the page
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; "
       "base-uri 'none'")
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
nav a{margin-right:1em}table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.drifting{color:#a40000;font-weight:600}.muted{color:#777}
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dt{color:#555}dd{margin:0}
"""


def _e(value: Any) -> str:
    """Escaped text of one value: strings as they are, numbers compact, None as a dash."""
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    if isinstance(value, (str, int)):
        return html.escape(str(value))
    return html.escape(orjson.dumps(value, default=str).decode())


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "&ndash;"
    return html.escape(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)))


def _cut(value: Any) -> str:
    """An id or field value from the data, cut (with a hash) so no event sets the size."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=str).decode()
        except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate inside
            text = repr(value)
    return _e(bounded_label(text, VALUE_LIMIT))


class _Num(str):
    """An escaped cell shown right-aligned."""


def _n(value: Any) -> _Num:
    return _Num(_e(value))


def _table(cls: str, head: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """`rows` hold already escaped cells (`_Num` for numbers)."""
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{c}</td>' if isinstance(c, _Num) else f"<td>{c}</td>"
                        for c in row)
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return f'<p class="muted {cls}">{_e(empty)}</p>'
    ths = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (f'<table class="{cls}"><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _where(item: Mapping[str, Any]) -> str:
    """topic[partition]; a repartitioned segment's alarm names the input and the source
    record it fired at (its model is the whole input's, not one partition's)."""
    if item.get("partition") is None:
        src = item.get("source")
        at = f" at {src['topic']}[{src['partition']}]@{src['offset']}" if src else ""
        return _e(f"{item.get('topic')}{at}")
    return f"{_e(item.get('topic'))}[{_e(item.get('partition'))}]"


def _totals(status: Mapping[str, Any]) -> str:
    items = [(k, v) for k, v in status.items()
             if k not in ("partitions", "last_alarm", "ready", "healthy")
             and (v is None or isinstance(v, (str, int, float)))]
    rows = "".join(f"<dt>{_e(k.replace('_', ' '))}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f'<dl class="totals">{rows}</dl>'


def _partitions(parts: Sequence[Mapping[str, Any]]) -> str:
    rows = ([_e(p.get("topic")), _n(p.get("partition")), _n(p.get("lag")), _n(p.get("events")),
             _n(p.get("segments")), _n(p.get("warming_up")), _n(p.get("evicted")),
             _n(len(p.get("drifting") or ()))] for p in parts)
    return _table("partitions", ["topic", "partition", "lag (records)", "events", "segments",
                                 "warming up", "evicted", "drifting"], rows,
                  "no partition assigned")


def _segments(segs: Sequence[Mapping[str, Any]], total: int) -> str:
    def row(s: Mapping[str, Any]) -> list[str]:
        state = _e(s.get("state"))
        if s.get("state") == "drifting":
            state = f'<span class="drifting">{state}</span>'
        return [_where(s), _e(s.get("segment")), state, _n(s.get("events")),
                _n(s.get("outliers")), _n(s.get("outlier_rate")), _n(s.get("statistic")),
                _n(s.get("threshold"))]

    table = _table("segments", ["topic[partition]", "segment", "drift state", "events",
                                "outliers", "window outlier rate", "drift statistic",
                                "threshold"], (row(s) for s in segs), "no segment yet")
    note = ""
    if total > len(segs):
        note = (f'<p class="muted">{_e(len(segs))} of {_e(total)} segments: the drifting '
                "ones, then the busiest (those named in /metrics).</p>")
    return table + note


def _alarms(alarms: Sequence[Mapping[str, Any]]) -> str:
    rows = ([_when(a.get("time")), _where(a), _e(a.get("segment")), _n(a.get("index")),
             _n(a.get("statistic")), _n(a.get("threshold")), _n(a.get("outlier_rate")),
             ", ".join(_cut(x) for x in a.get("examples") or ())] for a in alarms)
    return _table("alarms", ["time", "topic[partition]", "segment", "event index",
                             "statistic", "threshold", "window outlier rate",
                             "example event ids"], rows, "no drift alarm since start")


def _outliers(outliers: Sequence[Mapping[str, Any]]) -> str:
    def fields(o: Mapping[str, Any]) -> str:
        found = o.get("fields") or {}
        return "<br>".join(f"{_e(k)}: {_cut(v)}" for k, v in found.items())

    rows = ([_when(o.get("time")), _where(o), _cut(o.get("id")), _e(o.get("segment")),
             _n(o.get("p_value")), _n(o.get("score")), _n(o.get("risk")),
             _e(o.get("driver") or "embedding"), fields(o)] for o in outliers)
    return _table("outliers", ["time", "topic[partition]", "event id", "segment", "p-value",
                               "score", "risk", "driver", "allow-listed fields"], rows,
                  "no outlier since start")


def render(page: Mapping[str, Any], now: float | None = None) -> bytes:
    """The HTML document for `page` (the shape of `monitor.sinks.status.page`)."""
    status: Mapping[str, Any] = page.get("status") or {}
    segs: Sequence[Mapping[str, Any]] = page.get("segments") or []
    total = int(page.get("segments_total") or len(segs))
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>monitor status</title><style>{STYLE}</style></head>
<body>
<header><h1>monitor status</h1>
<nav><a href="metrics">/metrics</a><a href="status">/status</a><a href="healthz">/healthz</a></nav>
<p class="muted">{_when(time.time() if now is None else now)}, refreshed every {REFRESH_S} s;
read-only.</p></header>
<section id="health"><h2>Health</h2>
<dl><dt>ready</dt><dd>{_e(status.get("ready"))}</dd>
<dt>healthy</dt><dd>{_e(status.get("healthy"))}</dd></dl>{_totals(status)}</section>
<section id="partitions"><h2>Partitions</h2>{_partitions(status.get("partitions") or [])}</section>
<section id="segments"><h2>Segments</h2>{_segments(segs, total)}</section>
<section id="alarms"><h2>Latest drift alarms</h2>{_alarms(page.get("alarms") or [])}</section>
<section id="outliers"><h2>Latest outliers</h2>{_outliers(page.get("outliers") or [])}</section>
</body></html>
"""
    return doc.encode("utf-8", "replace")
