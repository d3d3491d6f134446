"""`monitor demo`: the daemon on an embedded broker fed with the built-in synthetic stream.

No config, no network beyond 127.0.0.1: start Tansu, create the topics, produce the
stream, run the daemon with live progress, then say what of the injected fraud, drift and
malformed lines was caught and what was missed. `--write-example DIR` instead writes a
small labelled stream, a reference file and a config for `monitor replay` (the README's
quickstart).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import yaml

from monitor.config import MonitorConfig, parse_config
from monitor.errors import FatalError
from monitor.outcome import BatchResult, FeedbackResult, LoopReport
from monitor.pipeline import Pipeline
from monitor.sinks.admin import create_topics
from monitor.source.embedded import EmbeddedBroker
from monitor.tools.produce import send_lines
from monitor.tools.stats import Stats
from monitor.tools.synthetic import DEMO_CONFIG, Truth, generate
from monitor.wiring import open_daemon, text_model_for

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
            send_lines(self.bootstrap, TOPIC, lines)
            before = produced + len(self.truth.malformed)  # lines already in the topic
            produced += CHUNK
            self.truth.fraud_ids.extend(t.fraud_ids)
            self.truth.fraud_bursts.extend(t.fraud_bursts)
            self.truth.malformed.extend(before + k for k in t.malformed)
            self.truth.events = produced


class Progress:
    """Live progress line (events/s, outliers, drift alarms) from the run's `stats`; sets
    `stop` once `total` events are processed. A sink of the daemon's (`monitor.outcome`),
    after `stats` in the sink order."""

    def __init__(self, total: int | None, stats: Stats, stop: threading.Event,
                 out: TextIO = sys.stderr, every_s: float = 0.5) -> None:
        self.total = total
        self.stats = stats
        self.stop = stop
        self.out = out
        self.every_s = every_s
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = -1

    def batch(self, result: BatchResult, pipeline: Pipeline) -> None:
        """Nothing per batch: the line is drawn once per turn of the loop."""

    def feedback(self, result: FeedbackResult) -> None:
        """Feedback is not part of the line."""

    def loop(self, report: LoopReport) -> None:
        now = time.monotonic()
        s = self.stats
        done = self.total is not None and s.events >= self.total
        if done or (now - self.last >= self.every_s and s.events != self.shown):
            self.last, self.shown = now, s.events
            rate = s.events / max(now - self.start, 1e-9)
            of = f"/{self.total:,}" if self.total else ""
            end = "\r" if self.out.isatty() else "\n"
            print(f"events {s.events:,}{of}  {rate:,.0f}/s  outliers {s.outliers:,}  "
                  f"dead letters {s.dead_letters:,}  drift alarms {s.alarms_total}", end=end,
                  file=self.out, flush=True)
        if done:
            self.stop.set()


def _n(count: int, noun: str) -> str:
    """
    >>> _n(1, "burst"), _n(3, "burst")
    ('1 burst', '3 bursts')
    """
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def summary_lines(s: Stats, truth: Truth, elapsed: float) -> tuple[list[str], bool]:
    """The closing summary: totals, then each injected condition as caught or missed, and
    a `missed:` line that names everything missed (or says nothing was). Conditions the
    daemon had not reached when it stopped (Ctrl+C) are left out. Returns the lines and
    whether the injected drift was detected."""
    out = [f"events      {s.events:>10,}   (scored {s.scored:,})",
           f"outliers    {s.outliers:>10,}",
           f"throughput  {s.events / max(elapsed, 1e-9):>10,.1f} events/s",
           f"checkpoints {s.checkpoints:>10,}",
           ""]
    missed: list[str] = []
    # bursts are positions among events; the stream also holds the malformed lines, so a
    # burst (or the drift) was surely consumed once this many more records were
    slack = len(truth.malformed)
    flagged, similar = set(s.outlier_ids), set(s.fraud_like_ids)
    bursts = [(a, b) for a, b in truth.fraud_bursts if b + slack < s.events]
    if bursts:
        caught_bursts = hit_events = by_similarity = total = 0
        detail: list[str] = []
        short: list[str] = []  # bursts with events not flagged
        for first, last in bursts:
            ids = [f"tx-{i:07d}" for i in range(first, last + 1)]
            hit = sum(i in flagged or i in similar for i in ids)
            by_similarity += sum(i in similar and i not in flagged for i in ids)
            caught_bursts += hit > 0
            hit_events += hit
            total += len(ids)
            detail.append(f"  at events {first:,}-{last:,}: {hit} of {len(ids)} flagged")
            if hit < len(ids):
                short.append(f"{len(ids) - hit} of {len(ids)} fraud events at "
                             f"{first:,}-{last:,}")
        how = f"; {by_similarity} by similarity to confirmed fraud" if by_similarity else ""
        out.append(f"fraud bursts:    {caught_bursts} of {len(bursts)} flagged "
                   f"({hit_events} of {total} events{how})")
        if len(bursts) <= MAX_BURST_LINES:
            out.extend(detail)
        missed += short if len(short) <= MAX_BURST_LINES else [
            f"{total - hit_events} of {total} fraud events, in {len(short)} bursts"]
    detected = False
    if truth.drift_at is not None and truth.drift_at + slack < s.events:
        after = [a for a in s.alarms if a.index >= truth.drift_at]
        before = [a for a in s.alarms if a.index < truth.drift_at]
        detected = bool(after)
        if after:
            out.append(f"drift:           injected at event {truth.drift_at:,}, alarm at "
                       f"event {after[0].index:,} (segment {after[0].segment!r})")
        else:
            out.append(f"drift:           injected at event {truth.drift_at:,}, no alarm")
            missed.append(f"the drift at event {truth.drift_at:,}")
        if before:
            out.append(f"false alarms:    {_n(len(before), 'drift alarm')} before the "
                       f"drift, first at event {before[0].index:,}")
    malformed = sum(k < s.events for k in truth.malformed)
    if malformed:
        out.append(f"malformed lines: {min(s.dead_letters, malformed)} of {malformed} "
                   "dead-lettered")
        if s.dead_letters < malformed:
            missed.append(f"{malformed - s.dead_letters} of {malformed} malformed lines")
    out.append("missed:          " + ("; ".join(missed) if missed else "nothing"))
    return out, detected


def summary(stats: Stats, truth: Truth, elapsed: float, out: TextIO = sys.stdout) -> bool:
    """Print what was injected and what was caught; True when the drift was detected."""
    lines, detected = summary_lines(stats, truth, elapsed)
    print("\n" + "\n".join(lines), file=out, flush=True)
    return detected


EXAMPLE_REFERENCE, EXAMPLE_STREAM = 1_000, 1_200


def write_example(directory: str | Path, seed: int = 7) -> dict[str, Path]:
    """A small labelled example for `monitor replay` (the README's quickstart), from the
    demo's generator: `normal.jsonl` (normal traffic for the reference),
    `transactions.jsonl` (a day later: drift half-way, two fraud bursts of 8 labelled
    `is_fraud: 1`, two malformed lines) and `monitor.yaml` (the demo's fields and
    settings). Deterministic for a seed; existing files are replaced.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    start = 1_767_225_600.0
    reference, _ = generate(EXAMPLE_REFERENCE, seed=seed, drift_at=None, fraud_bursts=0,
                            malformed=0, start_ts=start)
    stream, truth = generate(EXAMPLE_STREAM, seed=seed + 1, drift_at=0.5, fraud_bursts=2,
                             malformed=2, start_ts=start + 86_400.0,
                             first_id=EXAMPLE_REFERENCE)
    paths = {"reference": folder / "normal.jsonl", "stream": folder / "transactions.jsonl",
             "config": folder / "monitor.yaml"}
    paths["reference"].write_bytes(b"\n".join(reference) + b"\n")
    paths["stream"].write_bytes(b"\n".join(stream) + b"\n")
    bursts = " and ".join(f"tx-{a:07d}..tx-{b:07d}" for a, b in truth.fraud_bursts)
    paths["config"].write_text(
        "# Written by `monitor demo --write-example` with transactions.jsonl and normal.jsonl:\n"
        "# the demo's fields and settings (README.md: Configuration reference).\n"
        f"# transactions.jsonl: {EXAMPLE_STREAM:,} events, new categories from its event "
        f"{truth.drift_at or 0:,} on (drift),\n"
        f"# fraud bursts {bursts} (is_fraud: 1), {len(truth.malformed)} malformed lines.\n"
        + yaml.safe_dump(DEMO_CONFIG, sort_keys=False))
    return paths


def run_demo(events: int | None, seed: int, stop: threading.Event, quiet: bool = False) -> bool:
    cfg = demo_config()
    lines, truth = generate(events or FIRST, seed=seed)
    text_model = text_model_for(cfg)
    with EmbeddedBroker() as broker, ExitStack() as stack:
        create_topics(broker.bootstrap, [(TOPIC, 1)])
        send_lines(broker.bootstrap, TOPIC, lines)
        print(f"embedded broker on {broker.bootstrap}; produced {len(lines):,} events to "
              f"{TOPIC!r} ({len(truth.fraud_ids)} fraud in {len(truth.fraud_bursts)} bursts, "
              f"drift at event {truth.drift_at:,}, {len(truth.malformed)} malformed)",
              file=sys.stderr)
        out = stack.enter_context(open(os.devnull, "w")) if quiet else sys.stderr
        stats = Stats()
        progress = Progress(len(lines) if events else None, stats, stop, out=out)
        daemon = open_daemon(cfg, broker.bootstrap, text_model, stack, stop,
                             sinks=(stats, progress))
        if daemon.http_port:
            print(f"metrics on http://127.0.0.1:{daemon.http_port}/metrics (also /status, "
                  "/healthz, /readyz)", file=out, flush=True)
        feeder = None
        if not events:  # until Ctrl+C
            feeder = Feeder(broker.bootstrap, truth, seed, stop, lambda: stats.events)
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
        return summary(stats, truth, time.monotonic() - start)
