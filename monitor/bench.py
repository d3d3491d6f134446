"""`monitor bench`: end-to-end throughput through the embedded broker, against the model.

One run, one process, the same texts: produce N events of a shape to an embedded Tansu
broker, run the daemon on them (consume, decode, embed, score, detect, export metrics,
produce scored events, checkpoint and commit), then measure on those events' full texts
the raw model (`TextModel.embed`, batches of 32) and a naive consumer (one event at a
time: embed it alone, score it). Stage times come from wrapping the daemon's parts
(`BenchDaemon`); `app.py` is not changed for the benchmark.

Latency is per event, from the moment a poll first returned records of its batch to the
moment its scored record was handed to the producer (events are produced before the
daemon starts, so time spent queued in the topic is not counted). The table and the
README numbers are printed by `monitor.bench_report`.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np
import orjson
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import generate_latest

from monitor.app import Daemon, load_text_model
from monitor.bench_data import (
    engine_cost,
    fields_config,
    full_text,
    generate_lines,
    rss_mb,
)
from monitor.config import MonitorConfig, parse_config
from monitor.decode import decode_json
from monitor.demo import Progress
from monitor.embed import TextModel
from monitor.errors import FatalError
from monitor.pipeline import Pipeline
from monitor.score.engine import Engine
from monitor.source.embedded import EmbeddedBroker, create_topics

TOPIC = "bench.events"
STAGES = ("consume", "decode", "embed", "score", "metrics", "produce", "commit")


def bench_config(shape: str, segments: int, profile: str) -> MonitorConfig:
    """The daemon's config for a bench run; `MONITOR__...` variables override it as they
    override a deployed daemon's (e.g. MONITOR__KAFKA__PRODUCER_THREAD=false)."""
    return parse_config({
        "fields": fields_config(shape, segments > 1),
        "embed": {"profile": profile},
        "kafka": {"bootstrap_servers": "embedded", "topics": [TOPIC], "group_id": "bench",
                  "scored_topic": "bench.scored", "dead_letter_topic": "bench.dead-letter",
                  "session_timeout_ms": 6000,
                  "fetch_max_wait_ms": 50, "max_batch_wait_ms": 100},
        "checkpoint": {"every_seconds": 5.0}, "http": {"enabled": False},
    }, dict(os.environ))


class _Timed:
    """Wraps a callable, adding its wall time to `times[stage]`."""

    def __init__(self, fn: Callable[..., Any], times: dict[str, float], stage: str) -> None:
        self.fn, self.times, self.stage = fn, times, stage

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times[self.stage] += time.perf_counter() - t


class BenchDaemon(Daemon):
    """The daemon with per-stage timers around its parts.

    The daemon's own metrics hooks are timed as the "metrics" stage, and a scrape of its
    registry is timed every second, as Prometheus would scrape it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times = dict.fromkeys(STAGES, 0.0)
        self.latencies: list[tuple[float, int]] = []  # (seconds, events)
        setattr(self.observer, "scored",  # noqa: B010  # mypy: cannot assign to a method
                _Timed(self.observer.scored, self.times, "metrics"))
        self._got_at: float | None = None
        self._scraped = 0.0
        self.first_record: float | None = None  # the clock starts here, not at the join
        self.done_at: float | None = None

    def new_pipeline(self) -> Pipeline:
        pipe = super().new_pipeline()
        setattr(pipe.encoder, "encode",  # noqa: B010  # mypy: cannot assign to a method
                _Timed(pipe.encoder.encode, self.times, "embed"))
        setattr(pipe.engine, "process",  # noqa: B010
                _Timed(pipe.engine.process, self.times, "score"))
        return pipe

    def _poll_batch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        if not hasattr(self.consumer, "_bench"):  # note when a poll first returns records
            poll = self.consumer.poll

            def timed_poll(*args: Any, **kwargs: Any) -> Any:
                got = poll(*args, **kwargs)
                if got and self._got_at is None:
                    self._got_at = time.perf_counter()
                return got

            setattr(self.consumer, "poll", timed_poll)  # noqa: B010
            setattr(self.consumer, "_bench", True)  # noqa: B010
        self._got_at = None
        t = time.perf_counter()
        got = super()._poll_batch()
        if got and self.first_record is None:  # stage times start with the first record
            self.first_record = t
            self.times.update(dict.fromkeys(STAGES, 0.0))  # in place: the timers share it
        self.times["consume"] += time.perf_counter() - t
        return got

    def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> int:
        t = time.perf_counter()
        inner = sum(self.times[s] for s in ("embed", "score", "metrics"))
        n = super()._process(tp, records)
        now = time.perf_counter()
        inner = sum(self.times[s] for s in ("embed", "score", "metrics")) - inner
        self.times["decode"] += now - t - inner  # decode plus the loop's bookkeeping
        if n and self._got_at is not None:
            self.latencies.append((now - self._got_at, n))
        if now - self._scraped >= 1.0:  # Prometheus scrapes every few seconds
            self._scraped = now
            generate_latest(self.observer.metrics.registry)
            self.times["metrics"] += time.perf_counter() - now
        return n

    def _checkpoint(self) -> None:
        t = time.perf_counter()
        super()._checkpoint()
        self.times["commit"] += time.perf_counter() - t


def produce(bootstrap: str, lines: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all",
                             batch_size=256 * 1024)
    for line in lines:
        producer.send(TOPIC, value=line, partition=0)
    producer.flush()
    producer.close()


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
    model = load_text_model(cfg)
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
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, [(TOPIC, 1)])
        produce(broker.bootstrap, lines)
        progress = Progress(None, out=log, every_s=2.0)

        def on_batch(d: Daemon) -> None:
            if not quiet:
                progress(d)
            if d.stats.events >= events and daemon.done_at is None:
                d.sinks.producer.flush()  # the clock stops once every scored record is out
                daemon.done_at = time.perf_counter()
                d.stop.set()

        daemon = BenchDaemon(cfg, broker.bootstrap, model, stop, on_batch=on_batch)
        daemon.run()
    report["rss_mb_end"] = rss_mb()
    if daemon.done_at is None or daemon.first_record is None:
        raise FatalError(f"the daemon processed {daemon.stats.events} of {events} events")
    elapsed = daemon.done_at - daemon.first_record
    report["events_processed"] = daemon.stats.events
    report["elapsed_s"] = elapsed
    report["events_per_s"] = daemon.stats.events / elapsed
    report["latency_p50_ms"] = _weighted_percentile(daemon.latencies, 50) * 1000
    report["latency_p99_ms"] = _weighted_percentile(daemon.latencies, 99) * 1000
    text = daemon._text
    report["text_cache_hit_ratio"] = text.cache.hit_ratio if text else None
    report["texts_embedded"] = text.texts_embedded if text else 0
    daemon.times["produce"] = daemon.sinks.busy_seconds  # (inside _process: not decode)
    daemon.times["decode"] -= daemon.sinks.busy_seconds
    busy = sum(daemon.times.values())
    report["stage_seconds"] = {k: round(v, 4) for k, v in daemon.times.items()}
    report["stage_share"] = {k: round(v / busy, 4) for k, v in daemon.times.items()}
    report["not_embed_share"] = round(1 - daemon.times["embed"] / busy, 4)
    report["raw_encode_per_s_after"] = raw_encode_rate(model, raw_texts)
    report["raw_encode_per_s"] = (report["raw_encode_per_s_before"]
                                  + report["raw_encode_per_s_after"]) / 2
    embed_s = daemon.times["embed"]
    report["embed_in_daemon_per_s"] = report["texts_embedded"] / embed_s if embed_s else None
    naive_lines = lines[:naive_sample]
    report["naive_loop_per_s"] = naive_loop_rate(model, cfg, naive_lines)
    report["naive_loop_sample"] = len(naive_lines)
    report["ratio_vs_raw_encode"] = report["events_per_s"] / report["raw_encode_per_s"]
    report["ratio_vs_naive_loop"] = report["events_per_s"] / report["naive_loop_per_s"]
    report.update(engine_cost())
    return report

