"""Fast stand-ins for unit tests only; the real model is exercised in tests marked slow."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from monitor.embed import l2_normalise


class HashingTextModel:
    """Bag of words hashed into `dim` signed buckets: similar texts get similar vectors."""

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self._dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = zlib.crc32(w.encode())
                out[i, h % self._dim] += 1.0 if (h >> 20) & 1 else -1.0
        return l2_normalise(out)


class FakeFuture:
    """A delivery future: `get()` returns the record metadata, or raises `error`."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.timeouts: list[float | None] = []

    def get(self, timeout: float | None = None) -> object:
        self.timeouts.append(timeout)
        if self.error is not None:
            raise self.error
        return object()


class FakeProducer:
    """Records `send` calls (as dicts) and flushes; `fail_topics` get failing futures.

    `log` is shared with other fakes to check the order of steps across them.
    """

    def __init__(self, log: list[str] | None = None,
                 fail_topics: Sequence[str] = ()) -> None:
        self.log = log if log is not None else []
        self.fail_topics = set(fail_topics)
        self.sent: list[dict[str, object]] = []
        self.flushes = 0

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None,
             partition: int | None = None) -> FakeFuture:
        self.log.append(f"send:{topic}")
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers,
                          "partition": partition})
        if topic in self.fail_topics:
            return FakeFuture(RuntimeError(f"delivery to {topic} failed"))
        return FakeFuture()

    def flush(self, timeout: float | None = None) -> None:
        self.log.append("flush")
        self.flushes += 1


class ManualClock:
    """A clock tests move by hand: `clock()` reads `now`; `clock.now += 5` is five seconds."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingAlerts:
    """An alert sink (`monitor.observer.AlertPort`) that records what it is given."""

    def __init__(self, sent: list[Any], drop: Callable[[dict[str, str]], None] | None = None,
                 firing: Callable[[Any], bool] | None = None) -> None:
        self.sent = sent
        self._drop = drop
        self._firing = firing

    def submit(self, alert: Any) -> None:
        self.sent.append(alert)

    def firing(self, alert: Any) -> bool:
        return self._firing(alert) if self._firing is not None else False

    def drop(self, labels: dict[str, str]) -> None:
        if self._drop is not None:
            self._drop(labels)

    def checkpoint(self) -> None:
        """Nothing to make durable."""

    def pending(self) -> int:
        return 0
