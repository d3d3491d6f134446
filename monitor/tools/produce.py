"""A rate-limited producer of the synthetic transaction stream (the compose stack's demo feed).

    python -m monitor.tools.produce --bootstrap kafka:9092 --topic transactions \\
        --events 100000 --rate 50

The stream is `monitor.tools.synthetic.generate()` in chunks: each chunk warms up on five normal
categories, then drifts (half the traffic moves to new categories), with fraud bursts and a
few poison lines, so a long run shows drift alarms firing and resolving again. Ids are
made unique across chunks, timestamps are the send time (unless `--keep-timestamps`), and
records are keyed by `--key-field` so a segment stays on one partition (its state too).
Every delivery is checked; the exit code is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from kafka import KafkaProducer

from monitor.errors import FatalError
from monitor.kafka_clients import check_futures, make_producer, probe, with_backoff
from monitor.tools.synthetic import generate

log = logging.getLogger(__name__)


def stream(events: int, seed: int, chunk: int, drift_at: float | None,
           clock: Callable[[], float] | None = None,
           key_field: str | None = "category") -> Iterator[tuple[bytes | None, bytes]]:
    """`events` (key, value) records of the synthetic stream, generated `chunk` at a time.

    >>> recs = list(stream(30, seed=1, chunk=20, drift_at=None, clock=lambda: 5.0))
    >>> rows = [orjson.loads(v) for _, v in recs if b'"ts"' in v]
    >>> len(recs), len({r["id"] for r in rows}) == len(rows), {r["ts"] for r in rows}
    (30, True, {5.0})
    """
    done = 0
    part = 0
    while done < events:
        n = min(chunk, events - done)
        lines, _ = generate(n, seed=seed + part, drift_at=drift_at, malformed=max(1, n // 1000))
        for line in lines[: events - done]:
            yield _restamp(line, part, clock, key_field)
        done += min(len(lines), events - done)
        part += 1


def _restamp(line: bytes, part: int, clock: Callable[[], float] | None,
             key_field: str | None) -> tuple[bytes | None, bytes]:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, line  # poison stays poison: the monitor must dead-letter it
    if not isinstance(row, dict) or "ts" not in row:
        return None, line
    if isinstance(row.get("id"), str):
        row["id"] = f"c{part}-{row['id']}"
    if clock is not None:
        row["ts"] = round(clock(), 3)
    key = row.get(key_field) if key_field else None
    return (str(key).encode() if key is not None else None), orjson.dumps(row)


class Pacer:
    """Sleeps so that the n-th call happens no earlier than n / rate seconds after the first."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.start: float | None = None
        self.sent = 0

    def wait(self) -> None:
        now = self.clock()
        if self.start is None:
            self.start = now
        if self.rate > 0:
            due = self.start + self.sent / self.rate
            if due > now:
                self.sleep(due - now)
        self.sent += 1


def connect(bootstrap: str, deadline_s: float) -> KafkaProducer:
    """A producer, retried with capped backoff until `deadline_s` has passed. A TCP probe
    goes first: kafka-python's own bootstrap would wait about half a minute."""
    def attempt() -> KafkaProducer:
        probe(bootstrap)
        return make_producer({"bootstrap_servers": bootstrap})

    try:
        return with_backoff(attempt, f"producer for {bootstrap}", deadline_s,
                            backoff_max_s=5.0, first_delay_s=0.5)
    except FatalError as err:
        raise SystemExit(f"produce: no broker at {bootstrap}: {err}") from None


def send_lines(bootstrap: str, topic: str, lines: Sequence[bytes],
               batch_bytes: int | None = None) -> None:
    """Send `lines` in order to partition 0 of `topic` and wait until the broker holds
    every one (a failed delivery raises `FatalError`). The demo's and the bench's feed."""
    producer = make_producer({"bootstrap_servers": bootstrap}, batch_bytes=batch_bytes)
    try:
        futures = [producer.send(topic, value=line, partition=0) for line in lines]
        producer.flush()
        check_futures(futures, 30.0, "input")
    finally:
        producer.close()


def produce(args: argparse.Namespace) -> int:
    producer = connect(args.bootstrap, args.connect_timeout)
    pacer = Pacer(args.rate)
    clock = None if args.keep_timestamps else time.time
    futures = []
    failed = 0
    started = time.monotonic()
    for key, value in stream(args.events, args.seed, args.chunk, args.drift_at, clock,
                             args.key_field or None):
        pacer.wait()
        futures.append(producer.send(args.topic, key=key, value=value))
        if len(futures) >= 1000:
            failed += _settle(futures)
        if args.progress and pacer.sent % args.progress == 0:
            print(f"produce: {pacer.sent:,} records to {args.topic}", file=sys.stderr,
                  flush=True)
    producer.flush(timeout=60)
    failed += _settle(futures)
    producer.close(timeout=10)
    took = time.monotonic() - started
    print(f"produce: {pacer.sent - failed:,} of {pacer.sent:,} records delivered to "
          f"{args.topic} in {took:.1f}s", file=sys.stderr, flush=True)
    return 1 if failed else 0


def _settle(futures: list[Any]) -> int:
    failed = 0
    for f in futures:
        try:
            f.get(timeout=30)
        except Exception as err:  # a KafkaError or a timeout: count it, report at the end
            failed += 1
            log.error("delivery failed: %r", err)
    futures.clear()
    return failed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitor.tools.produce",
                                description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--bootstrap", required=True, help="HOST:PORT[,HOST:PORT]")
    p.add_argument("--topic", required=True)
    p.add_argument("--events", type=int, required=True, help="records to send (> 0)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="records per second; 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--chunk", type=int, default=20_000,
                   help="events per generated chunk (each drifts once)")
    p.add_argument("--drift-at", type=float, default=0.6,
                   help="share of each chunk after which the drift starts")
    p.add_argument("--key-field", default="category", help="record key ('' for none)")
    p.add_argument("--keep-timestamps", action="store_true",
                   help="keep the generator's event times instead of the send time")
    p.add_argument("--connect-timeout", type=float, default=120.0,
                   help="seconds to wait for the broker")
    p.add_argument("--progress", type=int, default=5000, help="report every N records; 0 off")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.events <= 0 or args.rate < 0 or args.chunk <= 0:
        build_parser().error("--events and --chunk must be > 0, --rate >= 0")
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    return produce(args)


if __name__ == "__main__":
    raise SystemExit(main())
