"""`monitor bench`: its flags and the dispatch to each mode (`monitor.tools.bench*`).

Speed and memory targets live here, not in timed tests: the machines are shared and
noisy, so each mode prints a table and writes a JSON report to compare across runs.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

import orjson


def cmd_bench(args: argparse.Namespace) -> int:
    """End-to-end throughput against the raw model and a naive loop; JSON report."""
    from monitor.lifecycle import install_signals
    from monitor.tools import bench, bench_data, bench_report

    stop = threading.Event()
    install_signals(stop, 30.0)
    profile = args.profile or ("static" if args.memory else "torch")
    report: dict[str, Any] = {}
    if args.repartition:
        from monitor.tools import bench_repartition

        report.update(bench_repartition.run(args.events, profile, args.shape,
                                            args.segments or 1, stop))
        Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        for key in ("plain_events_per_s", "repartition_events_per_s", "repartition_ratio",
                    "router_events_per_s"):
            value = report.get(key)
            print(f"{key:<26} {'-' if value is None else f'{value:,.3f}'}")
        print(f"report written to {args.out}", file=sys.stderr)
        return 0
    if args.restore:
        from monitor.tools import bench_restore

        report.update(bench_restore.run(args.segments or 64, args.segment_events,
                                        args.repeats, args.snapshots, stop))
        Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        bench_report.print_restore_table(report)
        print(f"report written to {args.out}", file=sys.stderr)
        return 0
    if args.engine_only:
        report.update(bench_data.engine_only())
    elif args.memory:
        report.update(bench_data.memory_run(profile, args.memory_events, args.segments or 10_000))
    else:
        report.update(bench.run_bench(args.events, profile, args.shape, args.segments or 1,
                                      args.raw_sample, args.naive_sample, stop,
                                      quiet=args.quiet))
    Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    bench_report.print_table(report)
    print(f"report written to {args.out}", file=sys.stderr)
    return 0


def add_bench(sub: Any) -> None:
    """The `monitor bench` subcommand and its flags."""
    bp = sub.add_parser("bench", help="end-to-end throughput through an embedded broker, "
                        "against the raw model and a naive per-event loop")
    bp.add_argument("--events", type=int, default=2000, help="events to stream (default 2000)")
    bp.add_argument("--profile", choices=["torch", "onnx-int8", "static"], default=None,
                    help="encoder profile (default torch; static with --memory)")
    bp.add_argument("--shape", choices=["unique", "repeating"], default="unique",
                    help="unique texts, or transactions whose text fields repeat")
    bp.add_argument("--segments", type=int, default=None,
                    help="distinct segment values (default 1; 10,000 with --memory)")
    bp.add_argument("--raw-sample", type=int, default=2000,
                    help="texts the raw-encode rate is measured on (the first ones)")
    bp.add_argument("--naive-sample", type=int, default=400,
                    help="events the naive per-event loop is measured on (the first ones)")
    bp.add_argument("--engine-only", action="store_true",
                    help="only the scoring+drift+metrics micro-benchmark (64 segments x 32 "
                    "centroids, random unit vectors)")
    bp.add_argument("--memory", action="store_true", help="only the bounded-memory check: RSS "
                    "at event 100,000 vs the last event, encoder and engine without Kafka")
    bp.add_argument("--memory-events", type=int, default=1_000_000)
    bp.add_argument("--repartition", action="store_true", help="the same stream without "
                    "and with kafka.repartition (router in the same process): end-to-end "
                    "rates, their ratio and the router's own rate")
    bp.add_argument("--restore", action="store_true", help="one partition's restore as the "
                    "daemon does it on assignment (changelog read to its end, decode, load) "
                    "on an embedded broker, for embedding-only and mixed (joint, per-field "
                    "text) states of --segments segments (default 64)")
    bp.add_argument("--segment-events", type=int, default=3000,
                    help="with --restore: events fed to each segment (default 3000)")
    bp.add_argument("--repeats", type=int, default=5,
                    help="with --restore: restores timed (default 5)")
    bp.add_argument("--snapshots", type=int, default=1, help="with --restore: checkpoints "
                    "of the partition in the changelog, as an uncompacted one holds them "
                    "(default 1)")
    bp.add_argument("--out", default="bench.json", help="JSON report (default bench.json)")
    bp.add_argument("--quiet", action="store_true", help="no progress lines")
    bp.set_defaults(func=cmd_bench)
