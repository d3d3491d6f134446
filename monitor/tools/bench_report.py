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


RESTORE_ROWS = [  # (label, key, scale, format): median / max of the restores
    ("changelog read (ms)", "read_s", 1e3, "{:,.0f}"),
    ("  of which end-of-log polls", "end_wait_s", 1e3, "{:,.0f}"),
    ("decode (ms)", "decode_s", 1e3, "{:,.0f}"),
    ("load and the rest (ms)", "load_s", 1e3, "{:,.0f}"),
    ("total restore (ms)", "total_s", 1e3, "{:,.0f}"),
    ("decode once, no Kafka (ms)", "decode_once_s", 1e3, "{:,.0f}"),
    ("load once, no Kafka (ms)", "load_once_s", 1e3, "{:,.0f}"),
]


def restore_rows(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column names (the variants) and rows of `monitor bench --restore`'s report."""
    variants = r["variants"]
    names = list(variants)
    rows = [["segments live / ready"] + [f"{v['segments_live']} / {v['segments_ready']}"
                                         for v in variants.values()],
            ["snapshot bytes"] + [f"{v['snapshot_bytes']:,}" for v in variants.values()],
            ["  per segment"] + [f"{v['snapshot_bytes_per_segment'] / 1e3:,.1f} KB"
                                 for v in variants.values()],
            ["changelog records / decodes"] + [
                f"{v['changelog_records']} / {v['changelog_decodes']}"
                for v in variants.values()]]
    for label, key, scale, fmt in RESTORE_ROWS:
        rows.append([f"{label}, median / max"] + [
            f"{fmt.format(v[key]['median'] * scale)} / {fmt.format(v[key]['max'] * scale)}"
            for v in variants.values()])
    return names, rows


def print_restore_table(report: dict[str, Any], out: TextIO = sys.stdout) -> None:
    names, rows = restore_rows(report)
    title = (f"bench --restore: {report['segments']} segments x "
             f"{report['events_per_segment']:,} events, {report['repeats']} restores, "
             f"{report['snapshots']} snapshot(s)")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is optional
        print(title, file=out)
        width = max(len(r[0]) for r in rows)
        for r in [["", *names], *rows]:
            print(f"{r[0]:<{width}}  " + "  ".join(f"{c:>20}" for c in r[1:]), file=out)
        return
    table = Table(title=title)
    table.add_column("measure")
    for name in names:
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(*r)
    Console(file=out, width=120).print(table)
