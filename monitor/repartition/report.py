"""What the router tells the outside world: its metrics, its input lag and dead-letter alerts.

With repartition the router is the part that reads the input topics, so the input's
series are its to report: `monitor_events_consumed` and `monitor_events_dead_lettered`
for the records it reads and rejects (the scorer then counts neither for the input; see
`Observer`), the lag of the input partitions, and the dead-letter-rate alert of each
input topic. In `--role both` it shares the scorer's registry and alert sink (both are
thread-safe); as `--role router` it has its own (`monitor.repartition.wiring`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram

from monitor.config import AlertsConfig
from monitor.events import Alert
from monitor.observer import AlertPort
from monitor.sinks.alerts.operational import OperationalWatch
from monitor.sinks.metrics import EMBED_BUCKETS, Metrics

Source = tuple[str, int]


class RouterReport:
    """The router's `routed(...)` after each committed batch, `lags(...)` after each poll."""

    def __init__(self, metrics: Metrics, alerts_cfg: AlertsConfig,
                 alerts: AlertPort | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        r = metrics.registry
        tp = ["topic", "partition"]
        self.metrics = metrics
        self.alerts = alerts
        self.forwarded = Counter("monitor_router_forwarded", "Input records the router "
                                 "forwarded, keyed by segment, to the internal topic.", tp,
                                 registry=r)
        self.lag = Gauge("monitor_router_lag_records", "Input records the router has not "
                         "yet read (the partition's end offset minus its position).", tp,
                         registry=r)
        self.batch_seconds = Histogram("monitor_router_batch_seconds", "Wall time to route "
                                       "one polled batch: decode, forward, wait for every "
                                       "acknowledgement, commit.", buckets=EMBED_BUCKETS,
                                       registry=r)
        self.ops = OperationalWatch(alerts_cfg, clock, **(
            {"firing": alerts.firing} if alerts is not None else {}))
        self._lagging: set[Source] = set()
        self._sent = 0  # alerts submitted so far

    def routed(self, read: Mapping[Source, int], forwarded: Mapping[Source, int],
               dead: Iterable[Source], seconds: float) -> None:
        """One committed batch: records read and forwarded per input partition, and the
        input partition of each dead letter."""
        m = self.metrics
        sent = self._sent
        for (t, p), n in read.items():
            m.consumed.labels(t, str(p)).inc(n)
            self._send(self.ops.records(t, n))
        for (t, p), n in forwarded.items():
            self.forwarded.labels(t, str(p)).inc(n)
        for t, p in dead:
            m.dead_lettered.labels(t, str(p)).inc()
            self._send(self.ops.dead_letter(t))
        self.batch_seconds.observe(seconds)
        if self.alerts is not None and self._sent > sent:
            self.alerts.checkpoint()  # durable before the commit, as a scorer's checkpoint

    def lags(self, lags: Mapping[Source, int | None]) -> None:
        """The assigned input partitions' lag; a partition no longer assigned loses its
        series (another router reports it now)."""
        for (t, p), lag in lags.items():
            if lag is not None:
                self.lag.labels(t, str(p)).set(max(0, lag))
        for gone in self._lagging - set(lags):
            with contextlib.suppress(KeyError):
                self.lag.remove(gone[0], str(gone[1]))
        self._lagging = {s for s, lag in lags.items() if lag is not None}

    def idle(self) -> None:
        """A poll without records: a topic gone quiet may resolve its dead-letter alert."""
        self._send(self.ops.tick())

    def _send(self, alerts: Iterable[Alert]) -> None:
        if self.alerts is not None:
            for alert in alerts:
                self.alerts.submit(alert)
                self._sent += 1
