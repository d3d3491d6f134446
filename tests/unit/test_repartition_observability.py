"""Repartition's outputs name the input, not the internal topic: drift alerts of a model
that covers the whole input, the router's own series and probes, and the refusal to place
segments by a partition count that changed."""

from __future__ import annotations

import random
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import AlertsConfig
from monitor.decode import decode_record
from monitor.errors import FatalError
from monitor.events import Alert
from monitor.observer import Observer
from monitor.outcome import BatchResult
from monitor.repartition.origin import Origin
from monitor.repartition.placement import check_restored, partition_of
from monitor.repartition.report import RouterReport
from monitor.repartition.roles import both
from monitor.sinks.metrics import Metrics
from tests.fakes import RecordingAlerts
from tests.unit.test_observer_alerts import NOW, config, record, warm

INTERNAL = "g.by-segment"


def _repartitioned_observer(submitted: list[Alert], dropped: list[dict[str, str]]
                            ) -> tuple[Observer, Any]:
    cfg = config()
    cfg = cfg.model_copy(update={
        "kafka": cfg.kafka.model_copy(update={"repartition": True}),
        "alerts": cfg.alerts.model_copy(update={"allow_fields": ["merchant"]})})
    obs = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted, dropped.append),
                   input_name="payments")
    return obs, cfg


def test_a_repartitioned_drift_alert_names_the_input_segment_and_source_record() -> None:
    submitted: list[Alert] = []
    dropped: list[dict[str, str]] = []
    observer, cfg = _repartitioned_observer(submitted, dropped)
    pipeline, rng = warm(cfg)
    observer.assigned(INTERNAL, 2, pipeline, 0)
    fired = False
    for a in range(1000, 1400, 50):  # shifted traffic, from three source partitions
        events = [decode_record(record(rng, i, log_mean=7.0, merchant="new"), cfg.fields, "")
                  for i in range(a, a + 50)]
        origins = [Origin("payments", i % 3, 10_000 + i) for i in range(a, a + 50)]
        scores, alarms = pipeline.process(events)
        result = BatchResult(INTERNAL, 2, len(events), events, scores, alarms,
                             [o.offset for o in origins], [None] * len(events), [],
                             a + 50, origins=origins)
        observer.batch(result, pipeline)
        if alarms:
            alarm, fired = alarms[0], True
            at = origins[alarm.index - (pipeline.engine.index - len(events))]
            break
    assert fired, "the shifted traffic should alarm"
    [alert] = [x for x in submitted if x.kind == "drift"]
    assert alert.labels == {"topic": "payments", "segment": "web"}
    assert alert.details["source"] == {"topic": "payments", "partition": at.partition,
                                       "offset": at.offset}
    assert alert.details["model"] == {"topic": INTERNAL, "partition": 2}
    examples = alert.details["example_events"]
    assert examples and any(e.get("fields") == {"merchant": "new"} for e in examples), examples
    assert observer.last_alarm is not None and observer.last_alarm["partition"] is None
    assert observer.last_alarm["source"]["offset"] == at.offset
    # the input's counts are the router's: the scorer counts no consumed record
    page = generate_latest(observer.metrics.registry).decode()
    assert "monitor_events_consumed_total{" not in page
    assert 'monitor_events_scored_total{partition="0",topic="payments"}' in page
    # revoked: the alert is dropped by its own labels, and the page forgets the alarm
    observer.forget(INTERNAL, 2)
    assert dropped == [{"topic": "payments", "segment": "web"}]
    assert list(observer.recent_alarms) == []


def test_the_router_reports_input_counts_lag_and_dead_letter_alerts() -> None:
    sent: list[Alert] = []
    metrics = Metrics(CollectorRegistry())
    report = RouterReport(metrics, AlertsConfig(dead_letter_rate=0.1,
                                                dead_letter_min_records=10),
                          RecordingAlerts(sent), clock=lambda: NOW)
    report.routed({("in", 0): 20, ("in", 1): 5}, {("in", 0): 15, ("in", 1): 5},
                  [("in", 0)] * 5, 0.01)
    report.lags({("in", 0): 7, ("in", 1): None})
    page = generate_latest(metrics.registry).decode()
    assert 'monitor_events_consumed_total{partition="0",topic="in"} 20.0' in page
    assert 'monitor_router_forwarded_total{partition="0",topic="in"} 15.0' in page
    assert 'monitor_events_dead_lettered_total{partition="0",topic="in"} 5.0' in page
    assert 'monitor_router_lag_records{partition="0",topic="in"} 7.0' in page
    assert 'monitor_router_lag_records{partition="1",topic="in"}' not in page
    assert "monitor_router_batch_seconds_count 1.0" in page
    assert [(a.kind, a.status) for a in sent] == [("operational", "firing")]
    report.lags({("in", 1): 0})  # partition 0 revoked: its series goes
    page = generate_latest(metrics.registry).decode()
    assert 'monitor_router_lag_records{partition="0",topic="in"}' not in page
    assert 'monitor_router_lag_records{partition="1",topic="in"} 0.0' in page


def test_one_probe_for_two_loops_fails_when_either_does() -> None:
    assert both(lambda: (True, "a"), lambda: (True, "b"))() == (True, "a; b")
    assert both(lambda: (False, "router failed: x"), lambda: (True, "b"))()[0] is False


def test_a_state_whose_segments_hash_elsewhere_is_refused_with_the_reason() -> None:
    names = [f"seg-{i}" for i in range(50)]
    here = [n for n in names if partition_of(n, 4) == 1]
    check_restored(INTERNAL, 1, here, 4)  # the count it was placed by: fine
    moved = [n for n in here if partition_of(n, 5) != 1]
    assert moved, "some of them move when a fifth partition is added"
    with pytest.raises(FatalError, match="has 5 partitions but the state of partition 1"):
        check_restored(INTERNAL, 1, here, 5)


def test_placement_spreads_segments_over_the_partitions() -> None:
    rng = random.Random(7)
    counts = [0] * 6
    for _ in range(3000):
        counts[partition_of(f"card-{rng.getrandbits(40)}", 6)] += 1
    assert min(counts) > 400, counts  # 500 each on average


class _Producer:
    def __init__(self) -> None:
        self.parts = {0, 1, 2}

    def partitions_for(self, topic: str) -> set[int]:
        return self.parts


def test_the_router_stops_when_the_internal_partition_count_changes() -> None:
    from monitor.repartition.router import Router

    cfg = config()
    producer = _Producer()
    router = Router(cfg.kafka, cfg.fields, consumer=None, producer=producer,  # type: ignore[arg-type]
                    dead_letters=None)  # type: ignore[arg-type]
    assert router.partition_of("s3") == partition_of("s3", 3)
    router._check_partitions()  # unchanged
    producer.parts = {0, 1, 2, 3}
    with pytest.raises(FatalError, match="has 4 partitions but the router started with 3"):
        router._check_partitions()
    assert router.healthy()[0] and not router.ready()[0]
