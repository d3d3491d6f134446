"""The table `monitor bench` prints: headline numbers of a report, then the stage shares."""

from __future__ import annotations

import sys
from typing import Any, TextIO

ROWS = [  # (label, key, format)
    ("events", "events", "{:,}"), ("profile / device", None, ""), ("shape", "shape", "{}"),
    ("end to end", "events_per_s", "{:,.1f} events/s"),
    ("raw encode (batch 32)", "raw_encode_per_s", "{:,.1f} texts/s"),
    ("naive per-event loop", "naive_loop_per_s", "{:,.1f} events/s"),
    ("ratio vs raw encode", "ratio_vs_raw_encode", "{:.2f}x"),
    ("ratio vs naive loop", "ratio_vs_naive_loop", "{:.2f}x"),
    ("latency p50 / p99", None, ""), ("RSS start / end", None, ""),
    ("text cache hit ratio", "text_cache_hit_ratio", "{:.3f}"),
    ("score+drift (64 seg x 32 c)", "score_us_per_event", "{:.1f} us/event"),
    ("  same, batch 2048", "score_us_per_event_batch2048", "{:.1f} us/event"),
    ("  same, per-field evidence", "score_us_per_event_field_evidence", "{:.1f} us/event"),
    ("metrics per event", "metrics_us_per_event", "{:.1f} us/event"),
    ("RSS at event 100k", "rss_mb_at_100k", "{:,.1f} MB"),
    ("RSS at event 1M", "rss_mb_at_1m", "{:,.1f} MB"),
    ("RSS growth 100k -> 1M", "rss_growth_mb_100k_to_1m", "{:+,.1f} MB"),
]


def table_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of the report's headline numbers, then the stage shares."""
    rows: list[tuple[str, str]] = []
    for label, key, fmt in ROWS:
        if key is None:
            if label.startswith("profile") and "profile" in r:
                rows.append((label, f"{r['profile']} / {r.get('device', '?')}"))
            elif label.startswith("latency") and "latency_p50_ms" in r:
                rows.append((label, f"{r['latency_p50_ms']:,.0f} / "
                                    f"{r['latency_p99_ms']:,.0f} ms"))
            elif label.startswith("RSS") and "rss_mb_start" in r:
                rows.append((label, f"{r['rss_mb_start']:,.0f} / {r['rss_mb_end']:,.0f} MB"))
        elif r.get(key) is not None:
            rows.append((label, fmt.format(r[key])))
    for stage, share in r.get("stage_share", {}).items():
        rows.append((f"  share: {stage}", f"{share:.1%}"))
    return rows


def print_table(report: dict[str, Any], out: TextIO = sys.stdout) -> None:
    rows = table_rows(report)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is optional
        width = max(len(a) for a, _ in rows)
        for a, b in rows:
            print(f"{a:<{width}}  {b}", file=out)
        return
    table = Table(title="monitor bench", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for a, b in rows:
        table.add_row(a, b)
    Console(file=out, width=80).print(table)
