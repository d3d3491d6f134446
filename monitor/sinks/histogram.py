"""A Prometheus histogram fed a whole batch of values at a time.

prometheus-client's `Histogram.observe` takes a lock and walks the buckets for every
value; with three per-event histograms that was the largest per-event cost left beside
the model. Here a batch costs one `searchsorted` and one `bincount`; the exposition is the
same `<name>_bucket{le=...}`, `_count` and `_sum` series a `Histogram` would produce.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    """Cumulative bucket counts and sums per label set, updated by `observe_many`.

    >>> r = CollectorRegistry()
    >>> h = BatchHistogram("demo_seconds", "Demo.", ["topic"], (0.1, 1.0), r)
    >>> h.observe_many(("t",), [0.05, 0.1, 0.5, 3.0])
    >>> r.get_sample_value("demo_seconds_bucket", {"topic": "t", "le": "0.1"})
    2.0
    >>> r.get_sample_value("demo_seconds_bucket", {"topic": "t", "le": "+Inf"})
    4.0
    >>> r.get_sample_value("demo_seconds_sum", {"topic": "t"})
    3.65
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.bounds = np.asarray(sorted(buckets), np.float64)
        self._series: dict[tuple[str, ...], tuple[npt.NDArray[np.int64], list[float]]] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, labels: tuple[str, ...], values: Sequence[float]) -> None:
        """Count each value in the first bucket whose upper bound is >= it (`le`)."""
        if not len(values):
            return
        v = np.asarray(values, np.float64)
        counts = np.bincount(self.bounds.searchsorted(v, side="left"),
                             minlength=len(self.bounds) + 1)
        total = float(v.sum())
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = (np.zeros(len(self.bounds) + 1, np.int64),
                                                 [0.0])
            series[0][:] += counts
            series[1][0] += total

    def remove(self, labels: tuple[str, ...]) -> None:
        with self._lock:
            self._series.pop(labels, None)

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            snapshot = [(k, c.cumsum().astype(np.float64).tolist(), s[0])
                        for k, (c, s) in self._series.items()]
        edges = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for labels, cumulative, total in snapshot:
            family.add_metric(list(labels), list(zip(edges, cumulative, strict=True)), total)
        yield family
