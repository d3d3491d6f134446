"""Command line: `monitor run` (the daemon), and `monitor replay`, `monitor fit`,
`monitor demo` and `monitor bench`, which dispatch to `monitor.tools`.

The CLI parses the config once and passes it down. It prints the commands' results; the
tools print their progress and summaries; the daemon core logs (only the signal handlers
in `monitor.lifecycle` print their last words).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import orjson

from monitor import __version__
from monitor.config import MonitorConfig, load_config
from monitor.errors import ConfigError, MonitorError
from monitor.tools.bench_cli import add_bench

log = logging.getLogger("monitor")


def _with_label(cfg: MonitorConfig, field: str | None, positive: str | None) -> MonitorConfig:
    if field is None and positive is None:
        return cfg
    update: dict[str, Any] = {}
    if field is not None:
        update["label"] = field
    if positive is not None:
        update["positive"] = [positive]
    return cfg.model_copy(update={"fields": cfg.fields.model_copy(update=update)})


def _print_summary(report: dict[str, Any], out: TextIO | None = None) -> None:
    stream = out if out is not None else sys.stdout

    def p(text: str) -> None:
        print(text, file=stream)

    p(f"events      {report['events']:>10,}   (scored {report['scored']:,}, "
      f"warming up {report['warming_up']:,})")
    p(f"rejected    {report['rejected']:>10,}")
    p(f"outliers    {report['outliers']:>10,}   rate {report['outlier_rate']:.4f}")
    p(f"throughput  {report['events_per_s']:>10,.1f} events/s")
    p(f"drift       {len(report['alarms']):>10,} alarm(s)")
    for a in report["alarms"][:10]:
        p(f"  at event {a['index']:,} segment {a['segment']!r}: statistic {a['statistic']:.3g}"
          f" >= {a['threshold']:.3g}; grown clusters {a['grown']}, shrunk {a['shrunk']}")
    if "auroc" in report:
        p(f"quality     AUROC {report['auroc']:.4f}  AUPRC {report['auprc']:.4f}  "
          f"FPR@95TPR {report['fpr_at_95_tpr']:.4f}")
        p(f"            at alpha: precision {report['precision_at_alpha']:.4f} "
          f"recall {report['recall_at_alpha']:.4f}; AUROC of risk {report['auroc_risk']:.4f}")


def cmd_replay(args: argparse.Namespace) -> int:
    from monitor.pipeline import Pipeline
    from monitor.tools.replay import replay

    cfg = _with_label(load_config(args.config), args.label_field, args.positive)
    seed = None
    if args.seed:
        from monitor.state.seed import read_seed

        seed = read_seed(args.seed, cfg, "--seed")
    pipeline = Pipeline.build(cfg, seed=seed)
    collector = None
    if args.html:
        from monitor.report import ReplayCollector

        collector = ReplayCollector(pipeline)
    report = replay(cfg, args.stream, pipeline, reference=args.reference, out=args.out,
                    rejects=args.rejects, progress=not args.quiet, feedback=not args.no_feedback,
                    collector=collector)
    if args.report:
        Path(args.report).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if collector is not None:
        from monitor.report import write_html

        size = write_html(args.html, report, collector, cfg, stream=args.stream,
                          reference=args.reference)
        print(f"HTML report written to {args.html} ({size / 1e6:.2f} MB)", file=sys.stderr)
    _print_summary(report)
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit per-segment references from vetted history into a seed file for the daemon."""
    from monitor.tools.fit import fit

    result = fit(load_config(args.config), args.history, args.out, rejects=args.rejects,
                 progress=not args.quiet)
    print(result.summary())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The daemon on an embedded broker with the built-in synthetic stream; or, with
    `--write-example DIR`, only write a small example for `monitor replay`."""
    if args.write_example is not None:
        from monitor.tools.demo import write_example

        paths = write_example(args.write_example, args.seed)
        for what, path in paths.items():
            print(f"wrote {path} ({what})")
        print(f"next: monitor replay {paths['stream']} --config {paths['config']} "
              f"--reference {paths['reference']}")
        return 0
    from monitor.lifecycle import install_signals
    from monitor.tools.demo import run_demo

    stop = threading.Event()
    install_signals(stop, 30.0)
    run_demo(args.events, args.seed, stop, quiet=args.quiet)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon (`kafka.bootstrap_servers: embedded` starts a local broker first)."""
    from monitor.lifecycle import install_signals
    from monitor.repartition.roles import check_role, run_roles
    from monitor.sinks.admin import create_topics
    from monitor.source.embedded import EmbeddedBroker
    from monitor.state.seed import load_seed
    from monitor.wiring import open_daemon, text_model_for

    cfg = load_config(args.config)
    check_role(cfg, args.role)
    seed = load_seed(cfg)  # once, before the broker: a bad file exits 2 at once
    if seed is not None:
        print(f"monitor: seeding from {cfg.checkpoint.seed_file} ({seed.describe()})",
              file=sys.stderr, flush=True)
    stop = threading.Event()
    install_signals(stop, cfg.checkpoint.shutdown_timeout_s)
    with ExitStack() as stack:
        bootstrap = cfg.kafka.bootstrap_servers
        if cfg.kafka.embedded:
            broker = stack.enter_context(EmbeddedBroker())
            bootstrap = broker.bootstrap
            create_topics(bootstrap, [(t, cfg.kafka.embedded_partitions) for t in cfg.kafka.topics])
            print(f"monitor: embedded broker on {bootstrap}", file=sys.stderr, flush=True)
        boot = bootstrap
        run_roles(cfg, bootstrap, args.role, stack, stop,
                  lambda: open_daemon(cfg, boot, text_model_for(cfg), stack, stop,
                                      seed=seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description=__doc__)
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    _add_replay(sub)
    fp = sub.add_parser("fit", help="fit per-segment references from vetted history into a "
                        "seed file (checkpoint.seed_file, replay --seed)")
    fp.add_argument("history", help="JSONL or CSV of vetted normal events")
    fp.add_argument("--config", required=True, help="YAML config file")
    fp.add_argument("--out", required=True, help="the seed file to write")
    fp.add_argument("--rejects", help="write undecodable lines (line, reason) here")
    fp.add_argument("--quiet", action="store_true", help="no progress bar")
    fp.set_defaults(func=cmd_fit)

    run = sub.add_parser("run", help="run the Kafka daemon")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument("--role", choices=["router", "scorer", "both"], default="both",
                     help="with kafka.repartition: the router (input -> internal topic by "
                     "segment), the scorer (the internal topic -> scores), or both in one "
                     "process (default)")
    run.set_defaults(func=cmd_run)

    dp = sub.add_parser("demo", help="the daemon on an embedded broker with a synthetic stream")
    dp.add_argument("--events", type=int, default=None,
                    help="stop after N events (default: run until Ctrl+C)")
    dp.add_argument("--seed", type=int, default=7)
    dp.add_argument("--quiet", action="store_true")
    dp.add_argument("--write-example", metavar="DIR",
                    help="write a small labelled example stream (transactions.jsonl), a "
                    "reference file (normal.jsonl) and a config (monitor.yaml) for `monitor "
                    "replay` into DIR, then exit")
    dp.set_defaults(func=cmd_demo)

    add_bench(sub)
    return parser


def _add_replay(sub: Any) -> None:
    rp = sub.add_parser("replay", help="score a JSONL/CSV stream offline")
    rp.add_argument("stream", help="JSONL or CSV file, or - for JSONL on stdin")
    rp.add_argument("--config", required=True, help="YAML config file")
    start = rp.add_mutually_exclusive_group()
    start.add_argument("--reference", help="JSONL/CSV of normal events to build the reference")
    start.add_argument("--seed", metavar="FILE", help="start from a seed file written by "
                       "`monitor fit` (as the daemon does with checkpoint.seed_file)")
    rp.add_argument("--label-field", help="field with confirmed labels (overrides config)")
    rp.add_argument("--positive", help="label value that means fraud (overrides config)")
    rp.add_argument("--out", help="write scored events (JSONL) here")
    rp.add_argument("--report", help="write the JSON report here")
    rp.add_argument("--rejects", help="write undecodable lines (line, reason) here")
    rp.add_argument("--html", metavar="PATH", help="write a self-contained HTML report here "
                    "(charts, top outliers, drift alarms; no network, no event values beyond "
                    "alerts.allow_fields)")
    rp.add_argument("--no-feedback", action="store_true",
                    help="use labels for the quality metrics only, not as fraud feedback")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.set_defaults(func=cmd_replay)


class LibraryNoise(logging.Filter):
    """Drops third-party warnings that tell an operator nothing to act on (shown with -vv).

    kafka-python warns "Task ... ran for 0.277s (>0.100s threshold). It is blocking the
    event loop" whenever its network task waits for the CPU, which the text model holds
    for most of each batch on a small machine. The deadlines that matter are seconds long
    (the demo's session timeout is 6 s), and missing one is logged as a rebalance.

    >>> import logging
    >>> def record(name: str, msg: str) -> logging.LogRecord:
    ...     return logging.LogRecord(name, logging.WARNING, "", 0, msg, None, None)
    >>> noise = LibraryNoise()
    >>> noise.filter(record("kafka.net.selector", "Task <x> ran for 0.277s (>0.100s "
    ...                     "threshold). It is blocking the event loop -- likely ..."))
    False
    >>> noise.filter(record("kafka.coordinator", "Heartbeat failed"))
    True
    >>> noise.filter(record("monitor.handler", "blocking the event loop"))
    True
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.split(".")[0] == "kafka"
                    and "blocking the event loop" in record.getMessage())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # transformers' "Loading weights" bar is noise beside the monitor's own progress
    # (HF_HUB_DISABLE_PROGRESS_BARS=0 brings it back)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.verbose < 3:  # kafka-python's INFO lines drown the monitor's own
        logging.getLogger("kafka").setLevel(logging.WARNING)
    if args.command in ("demo", "run") and args.verbose < 2:
        for handler in logging.getLogger().handlers:
            handler.addFilter(LibraryNoise())
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"monitor: configuration error: {err}", file=sys.stderr)
        return 2
    except MonitorError as err:
        print(f"monitor: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("monitor: interrupted", file=sys.stderr)
        return 130
