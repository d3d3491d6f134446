"""`monitor bench`: end-to-end throughput through the embedded broker, against the model.

One run, one process, the same texts: produce N events of a shape to an embedded Tansu
broker, run the daemon on them (consume, decode, embed, score, detect, export metrics,
produce scored events, checkpoint and commit), then measure on those events' full texts
the raw model (`TextModel.embed`, batches of 32) and a naive consumer (one event at a
time: embed it alone, score it). Stage times are the daemon's own (`Daemon.stages`), read
after every batch through its `on_batch` hook; the daemon runs unchanged.

Latency is per event, from the moment a poll first returned records of its batch to the
moment its scored record was handed to the producer (events are produced before the
daemon starts, so time spent queued in the topic is not counted). The table and the
README numbers are printed by `monitor.tools.bench_report`.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any, TextIO

import numpy as np
import orjson
from prometheus_client import generate_latest

from monitor.app import Daemon
from monitor.config import MonitorConfig, parse_config
from monitor.decode import decode_json
from monitor.embed import TextModel
from monitor.errors import FatalError
from monitor.outcome import BatchResult, FeedbackResult, LoopReport
from monitor.pipeline import Pipeline
from monitor.score.engine import Engine
from monitor.sinks.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.tools.bench_data import (
    engine_cost,
    fields_config,
    full_text,
    generate_lines,
    rss_mb,
)
from monitor.tools.demo import Progress
from monitor.tools.produce import send_lines
from monitor.tools.stats import Stats
from monitor.wiring import open_daemon, text_model_for

TOPIC = "bench.events"


def bench_config(shape: str, segments: int, profile: str) -> MonitorConfig:
    """The daemon's config for a bench run; `MONITOR__...` variables override it as they
    override a deployed daemon's (e.g. MONITOR__KAFKA__MAX_BATCH_EVENTS=256)."""
    return parse_config({
        "fields": fields_config(shape, segments > 1),
        "embed": {"profile": profile},
        "kafka": {"bootstrap_servers": "embedded", "topics": [TOPIC], "group_id": "bench",
                  "scored_topic": "bench.scored", "dead_letter_topic": "bench.dead-letter",
                  "session_timeout_ms": 6000,
                  "fetch_max_wait_ms": 50, "max_batch_wait_ms": 100},
        "checkpoint": {"every_seconds": 5.0}, "http": {"enabled": False},
    }, dict(os.environ))


class StreamClock:
    """What `monitor bench` reads off the daemon, as one of its sinks: when the first
    records arrived, per-batch latency, the end; and a registry scrape every second, as
    Prometheus would scrape, counted in the metrics stage. Sinks run in order: `stats`
    before this."""

    def __init__(self, events: int, stats: Stats) -> None:
        self.events = events
        self.stats = stats
        self.daemon: Daemon | None = None  # the daemon watched (`watch`)
        self.first_record: float | None = None  # the clock starts here, not at the join
        self.done_at: float | None = None
        self.latencies: list[tuple[float, int]] = []  # (seconds, events)
        self.scrape_s = 0.0
        self._seen = 0
        self._scraped = 0.0

    def watch(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def batch(self, result: BatchResult, pipeline: Pipeline) -> None:
        """Counted by `stats`."""

    def feedback(self, result: FeedbackResult) -> None:
        """No feedback in the bench."""

    def loop(self, report: LoopReport) -> None:
        now = time.perf_counter()
        events = self.stats.events
        if events > self._seen and report.polled_at is not None:
            if self.first_record is None:  # consume holds just the first poll's time
                self.first_record = report.polled_at - report.stages.seconds["consume"]
            self.latencies.append((now - report.polled_at, events - self._seen))
            self._seen = events
        d = self.daemon
        if d is not None and now - self._scraped >= 1.0:
            self._scraped = now
            generate_latest(d.observer.metrics.registry)
            self.scrape_s += time.perf_counter() - now
        if d is not None and events >= self.events and self.done_at is None:
            d.flush()  # the clock stops once every scored record is out
            self.done_at = time.perf_counter()
            d.stop.set()


def raw_encode_rate(model: TextModel, texts: list[str], batch: int = 32) -> float:
    model.embed(texts[:batch])  # first calls allocate: not part of the rate
    t = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.embed(texts[i:i + batch])
    return len(texts) / (time.perf_counter() - t)


def naive_loop_rate(model: TextModel, cfg: MonitorConfig, lines: list[bytes]) -> float:
    """One event at a time: decode, embed its full text alone, score it."""
    engine = Engine(cfg.score, cfg.drift, segmented=cfg.fields.segment is not None)
    model.embed([full_text(orjson.loads(lines[0]))])
    t = time.perf_counter()
    for i, line in enumerate(lines):
        ev = decode_json(line, cfg.fields, str(i))
        engine.process([ev], model.embed([full_text(ev.fields)]))
    return len(lines) / (time.perf_counter() - t)


def _weighted_percentile(pairs: list[tuple[float, int]], q: float) -> float:
    if not pairs:
        return 0.0
    values = np.repeat([p[0] for p in pairs], [p[1] for p in pairs])
    return float(np.percentile(values, q))


def _stream(cfg: MonitorConfig, model: TextModel, lines: list[bytes], stop: threading.Event,
            log: TextIO, quiet: bool) -> tuple[Stats, StreamClock]:
    """Produce `lines` to an embedded broker and run the daemon on them to the end; the
    bench watches it through sinks of its own (`stats`, then the clock)."""
    stats = Stats()
    with EmbeddedBroker() as broker, ExitStack() as stack:
        create_topics(broker.bootstrap, [(TOPIC, 1)])
        send_lines(broker.bootstrap, TOPIC, lines, batch_bytes=256 * 1024)
        clock = StreamClock(len(lines), stats)
        sinks: tuple[Any, ...] = (stats, clock)
        if not quiet:
            sinks += (Progress(None, stats, stop, out=log, every_s=2.0),)
        daemon = open_daemon(cfg, broker.bootstrap, model, stack, stop, sinks=sinks)
        clock.watch(daemon)
        daemon.run()
    return stats, clock


def _daemon_figures(stats: Stats, clock: StreamClock, events: int) -> dict[str, Any]:
    """Throughput, latency, text cache and stage shares of a finished stream."""
    last = stats.last
    if clock.done_at is None or clock.first_record is None or last is None:
        raise FatalError(f"the daemon processed {stats.events} of {events} events")
    elapsed = clock.done_at - clock.first_record
    out: dict[str, Any] = {"events_processed": stats.events, "elapsed_s": elapsed,
                           "events_per_s": stats.events / elapsed}
    out["latency_p50_ms"] = _weighted_percentile(clock.latencies, 50) * 1000
    out["latency_p99_ms"] = _weighted_percentile(clock.latencies, 99) * 1000
    out["text_cache_hit_ratio"] = last.cache_hit_ratio
    out["texts_embedded"] = last.texts_embedded
    times = dict(last.stages.seconds)  # the stages as the run left them
    times["metrics"] += clock.scrape_s  # the bench's own scrapes, as Prometheus would
    busy = sum(times.values())
    out["stage_seconds"] = {k: round(v, 4) for k, v in times.items()}
    out["stage_share"] = {k: round(v / busy, 4) for k, v in times.items()}
    out["not_embed_share"] = round(1 - times["embed"] / busy, 4)
    return out


def run_bench(events: int, profile: str, shape: str, segments: int, raw_sample: int,
              naive_sample: int, stop: threading.Event, log: TextIO = sys.stderr,
              quiet: bool = False) -> dict[str, Any]:
    """The whole benchmark; returns the report (see the module docstring)."""
    report: dict[str, Any] = {"events": events, "profile": profile, "shape": shape,
                              "segments": segments, "rss_mb_process_start": rss_mb()}
    cfg = bench_config(shape, segments, profile)
    lines = generate_lines(shape, events, segments)
    texts = [full_text(orjson.loads(b)) for b in lines]
    t = time.perf_counter()
    model = text_model_for(cfg)
    assert model is not None  # every shape has text fields
    report["model_load_s"] = time.perf_counter() - t
    report["device"] = str(getattr(model, "device", "cpu"))
    # the raw rate is measured before and after the stream (half the sample each) and
    # averaged, so a neighbour's load on this machine weighs on both sides alike
    raw_texts = texts[:max(1, raw_sample // 2)]
    report["raw_encode_per_s_before"] = raw_encode_rate(model, raw_texts)
    report["raw_encode_sample"] = 2 * len(raw_texts)
    print(f"raw encode: {report['raw_encode_per_s_before']:,.1f} texts/s over "
          f"{len(raw_texts):,} texts", file=log, flush=True)
    # scikit-learn is imported lazily by the first warm-up fit (~2 s): a start-up cost that
    # a long-running daemon pays once, so pay it here, before the clock starts
    importlib.import_module("sklearn.cluster")
    report["rss_mb_start"] = rss_mb()
    stats, clock = _stream(cfg, model, lines, stop, log, quiet)
    report["rss_mb_end"] = rss_mb()
    report.update(_daemon_figures(stats, clock, events))
    report["raw_encode_per_s_after"] = raw_encode_rate(model, raw_texts)
    report["raw_encode_per_s"] = (report["raw_encode_per_s_before"]
                                  + report["raw_encode_per_s_after"]) / 2
    embed_s = report["stage_seconds"]["embed"]
    report["embed_in_daemon_per_s"] = report["texts_embedded"] / embed_s if embed_s else None
    naive_lines = lines[:naive_sample]
    report["naive_loop_per_s"] = naive_loop_rate(model, cfg, naive_lines)
    report["naive_loop_sample"] = len(naive_lines)
    report["ratio_vs_raw_encode"] = report["events_per_s"] / report["raw_encode_per_s"]
    report["ratio_vs_naive_loop"] = report["events_per_s"] / report["naive_loop_per_s"]
    report.update(engine_cost())
    return report
