"""Tabular block: robust online scaling of numerics, hashed categoricals, cyclic time."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.config import NumericField
from monitor.embed import Matrix, l2_normalise
from monitor.events import Event

_FIRST_FIT = 32  # until this many values, each value is scaled by stats including itself
_REFRESH = 256  # statistics are recomputed every this many values (batch-invariant)
_CLIP = 8.0  # robust z-scores beyond this carry no extra information for distances


def signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x)·log1p(|x|): tames heavy-tailed amounts, keeps sign and zero.

    >>> signed_log(np.array([-9.0, 0.0, 9.0])).round(3).tolist()
    [-2.303, 0.0, 2.303]
    """
    out: np.ndarray = np.sign(x) * np.log1p(np.abs(x))
    return out


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's `hash` is salted).

    >>> stable_hash("country=FR") == stable_hash("country=FR")
    True
    """
    return zlib.crc32(text.encode("utf-8"))


def cyclic_time(ts: float) -> tuple[float, float, float, float]:
    """Hour of day and day of week on the unit circle (UTC), so 23:59 is near 00:00.

    >>> [round(v, 3) for v in cyclic_time(0.0)]  # Thursday 1970-01-01 00:00
    [0.0, 1.0, 0.434, -0.901]
    """
    hour = (ts % 86_400) / 3_600
    day = ((ts // 86_400) + 3) % 7  # 0 = Monday
    h, d = 2 * math.pi * hour / 24, 2 * math.pi * day / 7
    return (math.sin(h), math.cos(h), math.sin(d), math.cos(d))


class RobustScaler:
    """Median/IQR standardisation over a sliding window of recent values, per column.

    Statistics refresh at fixed value counts, never at batch edges, so the same stream
    scales the same however it is batched.
    """

    def __init__(self, columns: int, window: int) -> None:
        self.columns = columns
        self.window = window
        self.buffer = np.zeros((window, columns), np.float64)
        self.seen = 0
        self.center = np.zeros(columns)
        self.spread = np.ones(columns)

    def _refit(self) -> None:
        data = self.buffer[: min(self.seen, self.window)]
        self.center = np.nanmedian(data, axis=0) if len(data) else np.zeros(self.columns)
        q75, q25 = np.nanpercentile(data, [75, 25], axis=0)
        iqr = q75 - q25
        # fall back to the mean absolute deviation where the IQR collapses (many zeros)
        mad = np.nanmean(np.abs(data - self.center), axis=0)
        spread = np.where(iqr > 1e-12, iqr / 1.349, mad * 1.2533)
        self.center = np.nan_to_num(self.center)
        self.spread = np.where(np.isfinite(spread) & (spread > 1e-12), spread, 1.0)

    def _push(self, rows: np.ndarray) -> None:
        for row in rows:
            self.buffer[self.seen % self.window] = row
            self.seen += 1

    def transform_learn(self, x: np.ndarray) -> np.ndarray:
        """Scale rows with the statistics in force at each row, then learn them."""
        out = np.empty_like(x)
        i = 0
        while i < len(x):
            if self.seen < _FIRST_FIT:
                step = 1  # row by row, so the result does not depend on batch edges
                self._push(x[i : i + step])
                self._refit()
                out[i : i + step] = self._apply(x[i : i + step])
            else:
                step = min(len(x) - i, _REFRESH - (self.seen % _REFRESH))
                out[i : i + step] = self._apply(x[i : i + step])
                self._push(x[i : i + step])
                if self.seen % _REFRESH == 0:
                    self._refit()
            i += step
        return out

    def _apply(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.center) / self.spread
        return np.clip(np.nan_to_num(z, nan=0.0), -_CLIP, _CLIP)

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.copy(), "seen": self.seen,
                "center": self.center.copy(), "spread": self.spread.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer = np.array(state["buffer"], np.float64)
        self.seen = int(state["seen"])
        self.center = np.array(state["center"], np.float64)
        self.spread = np.array(state["spread"], np.float64)


@dataclass(frozen=True, slots=True)
class NumericScale:
    """A numeric field's robust centre and spread, on the scale it is encoded on (signed
    log when `log`): where a value sits, in spreads from the centre, is its robust z."""

    name: str
    log: bool
    center: float
    spread: float


class TabularEncoder:
    """Numerics (robust z, optional signed log), hashed categoricals, cyclic timestamp.

    A constant coordinate is appended before normalising: without it, unit length would
    erase how far an event lies from the median, which is most of the fraud signal.
    """

    def __init__(
        self,
        numeric: Sequence[NumericField],
        categorical: Sequence[str],
        hash_dim: int,
        use_time: bool,
        window: int,
    ) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.hash_dim = hash_dim
        self.use_time = use_time
        self.scaler = RobustScaler(len(self.numeric), window)
        self._log = np.array([f.log for f in self.numeric], bool)
        raw = len(self.numeric) + hash_dim * len(self.categorical) + (4 if use_time else 0)
        self._bias = 4.0 * math.sqrt(max(raw, 1))
        self._dim = raw + 1

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, events: Sequence[Event]) -> Matrix:
        n = len(events)
        parts: list[np.ndarray] = []
        if self.numeric:
            x = np.array([[e.numeric.get(f.name, math.nan) for f in self.numeric] for e in events],
                         np.float64).reshape(n, len(self.numeric))
            x[:, self._log] = signed_log(x[:, self._log])
            parts.append(self.scaler.transform_learn(x))
        if self.categorical:
            cats = np.zeros((n, self.hash_dim * len(self.categorical)))
            for i, e in enumerate(events):
                for j, name in enumerate(self.categorical):
                    h = stable_hash(f"{name}={e.categorical.get(name, '')}")
                    sign = 1.0 if (h >> 31) & 1 == 0 else -1.0
                    cats[i, j * self.hash_dim + h % self.hash_dim] += sign * 2.0
            parts.append(cats)
        if self.use_time:
            parts.append(np.array([cyclic_time(e.timestamp) if e.timestamp is not None
                                   else (0.0, 0.0, 0.0, 0.0) for e in events]).reshape(n, 4))
        parts.append(np.full((n, 1), self._bias))
        return l2_normalise(np.hstack(parts).astype(np.float32))

    def numeric_scales(self) -> list[NumericScale]:
        return [NumericScale(f.name, f.log, float(self.scaler.center[j]),
                             float(self.scaler.spread[j])) for j, f in enumerate(self.numeric)]

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scaler.load_state_dict(state["scaler"])
