"""`monitor bench --repartition`: the same stream scored without and with the router.

Both runs use one embedded broker each, one input partition, the same lines and the same
text model (loaded once). The end-to-end rate counts from the scorer's first records to
its last scored record; with repartition those records went through the router first,
which runs in a thread of the same process (`--role both`), so the two share the cores
as they would in one deployed process. The router's own rate is its forwarded records
over its busy time (routing and committing, polls excluded).
"""

from __future__ import annotations

import importlib
import sys
import threading
from contextlib import ExitStack
from typing import Any, TextIO

from monitor.config import MonitorConfig
from monitor.embed import TextModel
from monitor.repartition.wiring import open_router
from monitor.sinks.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.tools.bench import TOPIC, StreamClock, _daemon_figures, bench_config
from monitor.tools.bench_data import generate_lines
from monitor.tools.produce import send_lines
from monitor.tools.stats import Stats
from monitor.wiring import open_daemon, text_model_for


def _linked(outer: threading.Event) -> threading.Event:
    """A run's own stop (the clock sets it at the end), also set by a signal's `outer`."""
    own = threading.Event()

    def forward() -> None:
        outer.wait()
        own.set()

    threading.Thread(target=forward, daemon=True).start()
    return own


def stream(cfg: MonitorConfig, model: TextModel | None, lines: list[bytes],
           outer: threading.Event) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the daemon (and with `kafka.repartition` the router beside it) over `lines`;
    returns the daemon's figures and the router's (empty without repartition)."""
    stats, stop = Stats(), _linked(outer)
    router_figures: dict[str, Any] = {}
    with EmbeddedBroker() as broker, ExitStack() as stack:
        create_topics(broker.bootstrap, [(TOPIC, 1)])
        send_lines(broker.bootstrap, TOPIC, lines, batch_bytes=256 * 1024)
        clock = StreamClock(len(lines), stats)
        thread = None
        daemon = open_daemon(cfg, broker.bootstrap, model, stack, stop, sinks=(stats, clock))
        clock.watch(daemon)
        if cfg.kafka.repartition:  # as `--role both`: the router reports with the scorer
            router = open_router(cfg, broker.bootstrap, stack, stop, beside=daemon.observer)
            thread = threading.Thread(target=router.run, name="router", daemon=True)
        if thread is not None:
            thread.start()
        try:
            daemon.run()
        finally:
            stop.set()
            if thread is not None:
                thread.join(30)
        if cfg.kafka.repartition:
            router_figures = {"router_forwarded": router.forwarded,
                              "router_busy_s": router.busy_s,
                              "router_events_per_s": router.forwarded / router.busy_s
                              if router.busy_s else None}
    return _daemon_figures(stats, clock, len(lines)), router_figures


def run(events: int, profile: str, shape: str, segments: int, stop: threading.Event,
        log: TextIO = sys.stderr) -> dict[str, Any]:
    """Both runs; the report keeps each run's figures and the ratio of their rates."""
    plain_cfg = bench_config(shape, segments, profile)
    routed_cfg = plain_cfg.model_copy(update={"kafka": plain_cfg.kafka.model_copy(
        update={"repartition": True})})
    lines = generate_lines(shape, events, segments)
    model = text_model_for(plain_cfg)
    importlib.import_module("sklearn.cluster")  # a one-off start-up cost, before the clock
    report: dict[str, Any] = {"events": events, "profile": profile, "shape": shape,
                              "segments": segments}
    plain, _ = stream(plain_cfg, model, lines, stop)
    print(f"without repartition: {plain['events_per_s']:,.1f} events/s", file=log, flush=True)
    routed, router = stream(routed_cfg, model, lines, stop)
    print(f"with repartition: {routed['events_per_s']:,.1f} events/s end to end, router "
          f"{router['router_events_per_s'] or 0:,.1f} events/s", file=log, flush=True)
    report["plain_events_per_s"] = plain["events_per_s"]
    report["repartition_events_per_s"] = routed["events_per_s"]
    report["repartition_ratio"] = routed["events_per_s"] / plain["events_per_s"]
    report.update(router)
    report["plain"] = plain
    report["repartition"] = routed
    return report
