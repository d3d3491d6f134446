"""`AlertSink`: the one entry point the daemon uses.

``submit()`` is cheap and in memory (grouping); ``pump()`` moves due groups into the
durable outbox, expires what is too old and makes one bounded round of deliveries. The
daemon calls ``start()`` for a background delivery thread, ``checkpoint()`` from its
checkpoint (so gathered-but-unsent alerts survive a restart) and ``stop()`` on shutdown.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from monitor.config import AlertsConfig
from monitor.events import Alert
from monitor.sinks.alerts.delivery import Sender, retry_delay
from monitor.sinks.alerts.outbox import Outbox
from monitor.sinks.alerts.payloads import document
from monitor.sinks.alerts.ratelimit import TokenBucket
from monitor.sinks.alerts.router import AlertRouter
from monitor.sinks.alerts.signing import load_secret

log = logging.getLogger(__name__)

CounterHook = Callable[[str, str, int], None]
"""Called as ``hook(receiver, counter, increment)`` for every counter change."""

KINDS = ("drift", "outlier", "operational")
STATUSES = ("firing", "resolved")
_PRUNE_EVERY = 3600.0


@dataclass(slots=True)
class ReceiverCounters:
    """Monotonic counts for one receiver (exported as ``monitor_alerts_<name>_total``)."""

    notifications: int = 0
    sent: int = 0
    failed: int = 0
    expired: int = 0
    retried: int = 0
    dropped: int = 0


class AlertSink:
    """Groups alerts, keeps them in a durable outbox and delivers them with retries."""

    def __init__(
        self,
        config: AlertsConfig,
        state_dir: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        env: Mapping[str, str] | None = None,
        transports: Mapping[str, httpx.BaseTransport] | None = None,
        on_count: CounterHook | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.config = config
        self.clock = clock
        self._rng = rng or random.Random()
        self._on_count = on_count
        self._new_id = new_id
        self.outbox = Outbox(Path(state_dir) / config.state_file)
        environment = env if env is not None else {}
        transports = transports or {}
        self.routers: dict[str, AlertRouter] = {}
        self.senders: dict[str, Sender] = {}
        self.counters: dict[str, ReceiverCounters] = {}
        saved = self.outbox.load_router_state()
        for rc in config.receivers:
            router = AlertRouter(
                rc.name, config, TokenBucket(rc.rate_limit, rc.rate_limit_window_seconds)
            )
            if rc.name in saved:
                router.load_state_dict(saved[rc.name])
            self.routers[rc.name] = router
            self.senders[rc.name] = Sender(
                rc, load_secret(rc, environment), config, transports.get(rc.name)
            )
            self.counters[rc.name] = ReceiverCounters()
        self._kinds = {rc.name: set(rc.kinds) for rc in config.receivers}
        self._route_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._closed = False
        self._deliver_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._not_before: dict[str, float] = {}  # per receiver, from Retry-After

    def _count(self, receiver: str, name: str, n: int = 1) -> None:
        if n <= 0:
            return
        counters = self.counters[receiver]
        with self._count_lock:
            setattr(counters, name, getattr(counters, name) + n)
        if self._on_count is not None:
            self._on_count(receiver, name, n)

    def submit(self, alert: Alert) -> None:
        """Hand one alert to every receiver that takes its kind; never blocks on I/O."""
        if alert.kind not in KINDS or alert.status not in STATUSES:
            raise ValueError(f"bad alert kind/status: {alert.kind!r}/{alert.status!r}")
        now = self.clock()
        with self._route_lock:
            for name, router in self.routers.items():
                if alert.kind in self._kinds[name]:
                    before = router.dropped
                    router.submit(alert, now)
                    self._count(name, "dropped", router.dropped - before)

    def firing(self, alert: Alert) -> bool:
        """Whether a receiver taking `alert`'s kind holds it as firing (survives restarts)."""
        with self._route_lock:
            return any(alert.kind in self._kinds[n] and r.status(alert) == "firing"
                       for n, r in self.routers.items())

    def drop(self, labels: dict[str, str]) -> None:
        """Forget alerts whose labels include `labels`, sending nothing."""
        with self._route_lock:
            for router in self.routers.values():
                router.drop(labels)

    def route(self, now: float, *, force: bool = False) -> int:
        """Write every due group notification to the outbox; returns how many."""
        with self._route_lock:
            items = []
            for name, router in self.routers.items():
                for note in router.due(now, force=force):
                    nid = self._new_id()
                    items.append((nid, name, note.group_key, document(note, nid)))
            if items:
                states = {n: r.state_dict() for n, r in self.routers.items()}
                self.outbox.enqueue(items, now, states)
        for _, name, _, _ in items:
            self._count(name, "notifications")
        return len(items)

    def checkpoint(self) -> None:
        """Persist what the routers gathered but have not sent (call before committing)."""
        now = self.clock()
        self.route(now)
        with self._route_lock:
            self.outbox.save_router_state({n: r.state_dict() for n, r in self.routers.items()})

    def deliver(self, now: float) -> int:
        """One bounded round: at most `batch` attempts per receiver; returns attempts.

        A ``Retry-After`` pauses the whole receiver, not only the notification that got it:
        until it has passed no request of any group goes there.
        """
        attempts = 0
        with self._deliver_lock:
            for name, sender in self.senders.items():
                for row in self.outbox.due(name, now, self.config.batch):
                    sent_at = self.clock()
                    if sent_at < self._not_before.get(name, sent_at):
                        break  # the receiver asked for a pause (Retry-After)
                    attempts += 1
                    outcome = sender.send(row.document, sent_at)
                    done = self.clock()
                    if outcome.result == "delivered":
                        self.outbox.mark(row.seq, "delivered", done)
                        self._count(name, "sent")
                    elif outcome.result == "failed":
                        self.outbox.mark(row.seq, "failed", done, error=outcome.error)
                        self._count(name, "failed")
                        log.error(
                            "alerts receiver %s rejected notification %s: %s (not retried)",
                            name,
                            row.id,
                            outcome.error,
                        )
                    else:
                        delay = retry_delay(
                            row.attempts + 1, outcome.retry_after, self.config, self._rng
                        )
                        self.outbox.mark(
                            row.seq,
                            "pending",
                            done,
                            error=outcome.error,
                            next_attempt_at=done + delay,
                        )
                        self._count(name, "retried")
                        log.warning(
                            "alerts receiver %s: %s; retry %d of %s in %.1fs",
                            name,
                            outcome.error,
                            row.attempts + 1,
                            row.id,
                            delay,
                        )
                        if outcome.retry_after is not None:
                            self._pause(name, done, outcome.retry_after)
                            break
        return attempts

    def _pause(self, name: str, now: float, retry_after: float) -> None:
        """Send nothing more to `name` before ``now + retry_after`` (capped by max age)."""
        until = now + min(retry_after, self.config.max_age_seconds)
        if until > self._not_before.get(name, now):
            self._not_before[name] = until
            log.warning(
                "alerts receiver %s asked to wait (Retry-After %.1fs): nothing is sent to it"
                " for that long",
                name,
                retry_after,
            )

    def expire(self, now: float) -> int:
        expired = self.outbox.expire(now, self.config.max_age_seconds)
        for name, n in expired.items():
            if name in self.counters:
                self._count(name, "expired", n)
            log.error("alerts receiver %s: %d notification(s) expired undelivered", name, n)
        return sum(expired.values())

    def pump(self, now: float | None = None) -> int:
        """Route, expire and deliver once; returns delivery attempts made."""
        t = self.clock() if now is None else now
        self.route(t)
        self.expire(t)
        if t - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = t
            self.outbox.prune(t - self.config.retention_seconds)
        return self.deliver(t)

    def pending(self) -> int:
        return self.outbox.pending()

    def flush(self, timeout: float) -> bool:
        """Send everything gathered and pending, waiting at most `timeout` real seconds.

        Group timers are skipped, the rate limit is not. True when nothing is left pending.
        """
        deadline = time.monotonic() + timeout
        self.route(self.clock(), force=True)
        while True:
            self.pump()
            if self.pending() == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.config.poll_interval_seconds, remaining))

    def _run(self) -> None:
        while not self._stop.wait(self.config.poll_interval_seconds):
            try:
                self.pump()
            except Exception:  # keep delivering; the next round retries from the outbox
                log.exception("alerts delivery round failed")

    def start(self) -> None:
        """Deliver in a background thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alerts-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread, try to send what is left within `timeout`, persist the rest.

        Returns True when nothing was left pending. Calling it again does nothing.
        """
        if self._closed:
            return True
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            done = self.flush(timeout)
        finally:
            self.checkpoint()
            for sender in self.senders.values():
                sender.close()
            self.outbox.close()
        return done

    def __enter__(self) -> AlertSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
