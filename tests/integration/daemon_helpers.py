"""Helpers for the daemon integration tests: a real Tansu broker on 127.0.0.1, daemon
subprocesses, and readers that never trust `end_offsets()` (see DESIGN.md)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from monitor.sinks.admin import create_topics
from monitor.state.snapshot import Snapshot
from monitor.tools.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]

TABULAR_FIELDS: dict[str, Any] = {
    "id": "id", "timestamp": "ts", "label": "is_fraud",
    "numeric": [{"name": "amount", "log": True}],
    "categorical": ["country", "category"],
    "required": ["merchant"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(cond: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def stream(valid: int, malformed: int, seed: int = 3) -> list[bytes]:
    lines, _ = generate(valid, seed=seed, malformed=malformed, fraud_bursts=2)
    return lines


def produce(bootstrap: str, topic: str, lines: list[bytes], partitions: int = 1,
            start: int = 0) -> dict[int, list[bytes]]:
    """Round-robin over partitions (line i -> partition (start + i) % partitions); every
    delivery is checked. Returns what went to each partition, in order."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
    sent: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    futures = []
    for i, line in enumerate(lines):
        p = (start + i) % partitions
        futures.append(producer.send(topic, value=line, partition=p))
        sent[p].append(line)
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()
    return sent


def read_all(bootstrap: str, topic: str, partitions: int, quiet_polls: int = 3) -> list[Any]:
    """Every record of `topic`: read past the end offsets it had when asked, then until
    `quiet_polls` polls in a row come back empty."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=50)
    # a read before the daemon created the topic may have auto-created it with more
    # partitions than asked for: read whatever partitions it has
    found = consumer.partitions_for_topic(topic) or set(range(partitions))
    tps = [TopicPartition(topic, p) for p in sorted(found)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    # the end offsets are a lower bound (Tansu answers the last batch's base offset + 1):
    # read at least to them, so a slow first fetch on a loaded machine is not "the end"
    floor = consumer.end_offsets(tps)
    out: list[Any] = []
    empty = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
            empty < quiet_polls or any(consumer.position(tp) < floor[tp] for tp in tps)):
        batch = consumer.poll(timeout_ms=300)
        empty = 0 if batch else empty + 1
        for records in batch.values():
            out.extend(records)
    consumer.close()
    return out


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close(autocommit=False)


def write_config(path: Path, bootstrap: str, topic: str, group: str, *, http_port: int = 0,
                 state_dir: Path | None = None, kafka: dict[str, Any] | None = None,
                 checkpoint: dict[str, Any] | None = None, **sections: Any) -> Path:
    tree: dict[str, Any] = {
        "fields": TABULAR_FIELDS,
        "score": {"warmup": 200},
        "kafka": {"bootstrap_servers": bootstrap, "topics": [topic], "group_id": group,
                  "scored_topic": f"{topic}.scored", "dead_letter_topic": f"{topic}.dlq",
                  "changelog_topic": f"{group}.changelog", "session_timeout_ms": 6000,
                  "fetch_max_wait_ms": 50, "max_batch_events": 100, "max_batch_wait_ms": 50,
                  "start_deadline_s": 20, **(kafka or {})},
        "checkpoint": {"every_events": 500, "every_seconds": 60,
                       "state_dir": str(state_dir) if state_dir else None,
                       "shutdown_timeout_s": 20, **(checkpoint or {})},
        "http": {"port": http_port},
        **sections,
    }
    path.write_text(yaml.safe_dump(tree))
    return path


class DaemonProcess:
    """`python -m monitor run --config FILE` with its output in a log file."""

    def __init__(self, config: Path, log: Path, http_port: int, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env or {}  # more environment: MONITOR__* overrides the config
        self.log = log
        self.http_port = http_port
        self.args = args  # more `monitor run` arguments (--role router)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "-v", "run", "--config", str(self.config),
                 *self.args],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}",
                                        timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout_s: float = 60) -> None:
        wait_until(lambda: self.ready() or self.exited(), timeout_s, "daemon ready")
        assert not self.exited(), self.output()

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def local_snapshot(state_dir: Path, topic: str, partition: int) -> Snapshot:
    return Snapshot.decode((state_dir / f"{topic}-{partition}.snap").read_bytes())


def new_topic(bootstrap: str, partitions: int) -> str:
    topic = unique("events")
    create_topics(bootstrap, [(topic, partitions)])
    return topic
