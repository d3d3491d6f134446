"""`monitor demo`: the daemon on an embedded broker fed with the built-in synthetic stream.

No config, no network beyond 127.0.0.1: start Tansu, create the topics, produce the
stream, run the daemon with live progress, then say whether the injected fraud and drift
were caught.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from monitor.app import Daemon, load_text_model
from monitor.config import MonitorConfig, parse_config
from monitor.errors import FatalError
from monitor.source.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.synthetic import DEMO_CONFIG, Truth, generate

TOPIC = "demo.transactions"
FIRST = 20_000  # events produced up front when no --events bound is given
CHUNK = 5_000  # then this many at a time, staying at most two chunks ahead of the daemon
METRICS_PORT = 9108
MAX_BURST_LINES = 5  # the summary lists bursts one by one up to this many, then totals


def demo_config(state_dir: str | None = None) -> MonitorConfig:
    tree: dict[str, Any] = dict(DEMO_CONFIG)
    tree["kafka"] = {"bootstrap_servers": "embedded", "topics": [TOPIC], "group_id": "demo",
                     "scored_topic": "demo.scored", "dead_letter_topic": "demo.dead-letter",
                     "session_timeout_ms": 6000, "fetch_max_wait_ms": 50,
                     "max_batch_events": 256, "max_batch_wait_ms": 100}
    tree["checkpoint"] = {"every_seconds": 5.0, "state_dir": state_dir}
    tree["http"] = {"port": METRICS_PORT if _port_free(METRICS_PORT) else 0}
    return parse_config(tree)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def produce(bootstrap: str, lines: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    futures = [producer.send(TOPIC, value=line, partition=0) for line in lines]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()


class Feeder(threading.Thread):
    """Without --events: keep the stream going in the drifted regime (with a fraud burst
    and a malformed line per chunk) until stopped, never far ahead of the daemon."""

    def __init__(self, bootstrap: str, truth: Truth, seed: int, stop: threading.Event,
                 consumed: Callable[[], int]) -> None:
        super().__init__(name="demo-feeder", daemon=True)
        self.bootstrap, self.truth, self.seed = bootstrap, truth, seed
        self.stop, self.consumed = stop, consumed

    def run(self) -> None:
        produced, chunk = self.truth.events, 0
        while not self.stop.wait(0.5):
            if produced - self.consumed() > 2 * CHUNK:
                continue
            chunk += 1
            lines, t = generate(CHUNK, seed=self.seed + chunk, drift_at=0.0, fraud_bursts=1,
                                malformed=1, start_ts=1_767_225_600.0 + 20.0 * produced,
                                first_id=produced)
            produce(self.bootstrap, lines)
            produced += CHUNK
            self.truth.fraud_ids.extend(t.fraud_ids)
            self.truth.fraud_bursts.extend(t.fraud_bursts)
            self.truth.malformed.extend(t.malformed)
            self.truth.events = produced


class Progress:
    """Live progress line (events/s, outliers, drift alarms); stops the daemon at `total`."""

    def __init__(self, total: int | None, out: TextIO = sys.stderr, every_s: float = 0.5) -> None:
        self.total = total
        self.out = out
        self.every_s = every_s
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = -1

    def __call__(self, d: Daemon) -> None:
        now = time.monotonic()
        if self.shown < 0 and d.http_port:
            print(f"metrics on http://127.0.0.1:{d.http_port}/metrics (also /status, "
                  "/healthz, /readyz)", file=self.out, flush=True)
        done = self.total is not None and d.stats.events >= self.total
        if done or (now - self.last >= self.every_s and d.stats.events != self.shown):
            self.last, self.shown = now, d.stats.events
            s = d.stats
            rate = s.events / max(now - self.start, 1e-9)
            of = f"/{self.total:,}" if self.total else ""
            end = "\r" if self.out.isatty() else "\n"
            print(f"events {s.events:,}{of}  {rate:,.0f}/s  outliers {s.outliers:,}  "
                  f"dead letters {s.dead_letters:,}  drift alarms {s.alarms_total}", end=end,
                  file=self.out, flush=True)
        if done:
            d.stop.set()


def summary(d: Daemon, truth: Truth, elapsed: float, out: TextIO = sys.stdout) -> bool:
    """Print what was injected and what was caught; True when the drift was detected."""
    s = d.stats
    print(f"\nevents      {s.events:>10,}   (scored {s.scored:,}; dead-lettered "
          f"{s.dead_letters:,} of {len(truth.malformed)} malformed)", file=out)
    print(f"outliers    {s.outliers:>10,}", file=out)
    print(f"throughput  {s.events / max(elapsed, 1e-9):>10,.1f} events/s", file=out)
    print(f"checkpoints {s.checkpoints:>10,}", file=out)
    caught = [a for a in s.alarms if truth.drift_at is not None and a.index >= truth.drift_at]
    if truth.drift_at is not None:
        print(f"injected drift at event {truth.drift_at:,}: "
              + (f"DETECTED at event {caught[0].index:,} (segment {caught[0].segment!r})"
                 if caught else "not detected"), file=out)
    flagged, similar = set(s.outlier_ids), set(s.fraud_like_ids)
    # bursts are positions among events; the daemon also counted the malformed lines
    consumed = [(a, b) for a, b in truth.fraud_bursts
                if b + len(truth.malformed) < s.events]
    totals = [0, 0, 0]
    for first, last in consumed:
        ids = [f"tx-{i:07d}" for i in range(first, last + 1)]
        hit = sum(i in flagged for i in ids)
        known = sum(i in similar and i not in flagged for i in ids)
        totals = [totals[0] + hit, totals[1] + known, totals[2] + len(ids)]
        if len(consumed) <= MAX_BURST_LINES:
            print(f"injected fraud burst at events {first:,}-{last:,}: {hit} of {len(ids)} "
                  f"flagged as outliers, {known} more by similarity to confirmed fraud",
                  file=out)
    if len(consumed) > MAX_BURST_LINES:
        print(f"injected fraud: {len(consumed)} bursts, {totals[2]} events: {totals[0]} "
              f"flagged as outliers, {totals[1]} more by similarity to confirmed fraud",
              file=out)
    return bool(caught)


def run_demo(events: int | None, seed: int, stop: threading.Event, quiet: bool = False) -> bool:
    cfg = demo_config()
    lines, truth = generate(events or FIRST, seed=seed)
    text_model = load_text_model(cfg)
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, [(TOPIC, 1)])
        produce(broker.bootstrap, lines)
        print(f"embedded broker on {broker.bootstrap}; produced {len(lines):,} events to "
              f"{TOPIC!r} ({len(truth.fraud_ids)} fraud in {len(truth.fraud_bursts)} bursts, "
              f"drift at event {truth.drift_at:,}, {len(truth.malformed)} malformed)",
              file=sys.stderr)
        progress = Progress(len(lines) if events else None,
                            out=open("/dev/null", "w") if quiet else sys.stderr)  # noqa: SIM115
        daemon = Daemon(cfg, broker.bootstrap, text_model, stop, on_batch=progress)
        feeder = None
        if not events:  # until Ctrl+C
            feeder = Feeder(broker.bootstrap, truth, seed, stop, lambda: daemon.stats.events)
            feeder.start()
        start = time.monotonic()
        try:
            daemon.run()
        finally:
            stop.set()  # the feeder too, also when the daemon failed
            if feeder is not None:
                feeder.join(timeout=60)
        if feeder is not None and feeder.is_alive():
            raise FatalError("the demo feeder did not stop within 60 s")
        return summary(daemon, truth, time.monotonic() - start)
