"""A token bucket per receiver: bursts up to `capacity`, then `capacity` per window.

A denied send is not dropped: the group keeps accumulating and goes out, with all its
counts, when a token is free. That is what turns a storm into a bounded number of messages.
"""

from __future__ import annotations

from typing import Any


class TokenBucket:
    """Allow `capacity` takes per `window` seconds on average, starting full.

    >>> b = TokenBucket(2, 10.0)
    >>> [b.try_take(0.0), b.try_take(0.0), b.try_take(0.0), b.try_take(5.0)]
    [True, True, False, True]
    """

    def __init__(self, capacity: int, window: float) -> None:
        self.capacity = capacity
        self.window = window
        self._tokens = float(capacity)
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            rate = self.capacity / self.window
            self._tokens = min(float(self.capacity), self._tokens + (now - self._last) * rate)
        if self._last is None or now > self._last:
            self._last = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= 1.0

    def try_take(self, now: float) -> bool:
        if not self.available(now):
            return False
        self._tokens -= 1.0
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"tokens": self._tokens, "last": self._last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._tokens = min(float(self.capacity), float(state["tokens"]))
        last = state.get("last")
        self._last = None if last is None else float(last)
