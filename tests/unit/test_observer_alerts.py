"""The observer's alert builders on a real tabular pipeline, and their way to the receivers.

One small pipeline (two numeric fields, one categorical, one segment) warms up on typical
transactions, then sees one odd transaction (an outlier) and a shifted batch (drift). The
alerts it yields are checked for their explanation (exemplar events with allow-listed
fields, drift examples from the grown clusters), for drift resolving per partition after
the hysteresis, then sent through a real `AlertSink`
to webhook, Slack and Alertmanager receivers (a fake transport), whose bodies must show the
real event ids and no event value that is not allow-listed.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from monitor.config import DriftConfig, FieldsConfig, MonitorConfig, NumericField, ScoreConfig
from monitor.decode import decode_record
from monitor.embed.tabular import signed_log
from monitor.events import Alert, DriftAlarm, Event, Score
from monitor.observer import Observer
from monitor.pipeline import Pipeline
from monitor.sinks.alerts import AlertsConfig, AlertSink, ReceiverConfig
from monitor.sinks.alerts.explain import deviating_features, drift_alert, outlier_alert
from monitor.sinks.alerts.ratelimit import TokenBucket
from monitor.sinks.alerts.router import AlertRouter, fingerprint
from monitor.sinks.status import status
from tests.fakes import RecordingAlerts

NOW = 1_700_000_000.0
ODD = {"id": "tx-odd", "shop": "web", "amount": 98765.4321, "age": 93.5, "merchant": "zzz",
       "card": "4111-1111-1111-1111"}
SECRETS = ("98765", "93.5", "zzz", "4111-1111")  # ODD's values; none may reach a payload


def config(numeric: bool = True) -> MonitorConfig:
    nums = [NumericField(name="amount", log=True), NumericField(name="age")] if numeric else []
    return MonitorConfig(
        fields=FieldsConfig(id="id", segment="shop", numeric=nums, categorical=["merchant"]),
        score=ScoreConfig(warmup=200, k=2, alpha=0.05, exemplars=3),
        drift=DriftConfig(window=50, hysteresis=50, horizon=1000),
    )


def record(rng: random.Random, i: int, log_mean: float = 3.0, merchant: str = "") -> dict[str, Any]:
    return {"id": f"tx-{i}", "shop": "web", "amount": round(rng.lognormvariate(log_mean, 0.3), 2),
            "age": round(rng.gauss(40, 5), 1), "merchant": merchant or rng.choice(["acme", "bolt"]),
            "card": "4111-0000-0000-0000"}


def warm(cfg: MonitorConfig) -> tuple[Pipeline, random.Random]:
    pipeline = Pipeline.build(cfg)
    rng = random.Random(0)
    pipeline.process([decode_record(record(rng, i), cfg.fields, "") for i in range(400)])
    return pipeline, rng


@pytest.fixture
def scored_odd() -> tuple[MonitorConfig, Pipeline, Event, Score]:
    cfg = config()
    pipeline, _ = warm(cfg)
    event = decode_record(ODD, cfg.fields, "")
    [score], _ = pipeline.process([event])
    assert score.outlier and score.p_value is not None and score.centroid >= 0
    return cfg, pipeline, event, score


def test_outlier_alert_explains_segment_score_centroid_and_features(
    scored_odd: tuple[MonitorConfig, Pipeline, Event, Score],
) -> None:
    _, pipeline, event, s = scored_odd
    alert = outlier_alert("payments", event, s, pipeline, NOW)
    assert (alert.kind, alert.status, alert.starts_at) == ("outlier", "firing", NOW)
    assert alert.labels == {"topic": "payments", "segment": "web"}
    assert "web" in alert.annotations["summary"]
    d = alert.details
    assert d["event_id"] == "tx-odd"
    assert (d["score"], d["p_value"], d["risk"]) == (s.score, s.p_value, s.risk)
    assert d["fraud_similarity"] == s.fraud_similarity == 0.0  # no confirmed fraud yet
    assert d["nearest_centroid"] == s.centroid
    reference = pipeline.engine.segments["web"].reference
    assert reference is not None
    assert d["centroid_exemplars"] == list(reference.exemplars[s.centroid])
    assert 0 < len(d["centroid_exemplars"]) <= 3
    assert all(e.startswith("tx-") for e in d["centroid_exemplars"])
    features = d["deviating_features"]
    assert [f["field"] for f in features] == ["amount", "age"]  # largest |z| first
    assert features[0]["z"] > 5 and abs(features[0]["z"]) >= abs(features[1]["z"])
    assert all(set(f) == {"field", "z"} for f in features)  # no value without allow-list
    assert d["fields"] == {}
    assert not any(secret in json.dumps(d) for secret in SECRETS)


def test_deviating_features_are_robust_z_scores_with_values_only_when_allowed(
    scored_odd: tuple[MonitorConfig, Pipeline, Event, Score],
) -> None:
    _, pipeline, event, _ = scored_odd
    tab = pipeline.encoder.tabular
    assert tab is not None
    expected = {
        "amount": (float(signed_log(np.array(98765.4321))) - tab.scaler.center[0])
        / tab.scaler.spread[0],
        "age": (93.5 - tab.scaler.center[1]) / tab.scaler.spread[1],
    }
    features = deviating_features(event, pipeline, allow=("age",))
    for f in features:
        assert f["z"] == pytest.approx(expected[f["field"]], abs=0.006)
    assert {f["field"]: f.get("value") for f in features} == {"amount": None, "age": 93.5}
    assert [f["field"] for f in deviating_features(event, pipeline, top=1)] == ["amount"]
    missing = Event(id="m", segment="web", numeric={"amount": math.nan, "age": 41.0})
    assert [f["field"] for f in deviating_features(missing, pipeline)] == ["age"]


def test_allow_listed_fields_reach_the_outlier_alert(
    scored_odd: tuple[MonitorConfig, Pipeline, Event, Score],
) -> None:
    _, pipeline, event, s = scored_odd
    alert = outlier_alert("payments", event, s, pipeline, NOW, allow=("amount", "merchant"))
    assert alert.details["fields"] == {"amount": 98765.4321, "merchant": "zzz"}
    values = {f["field"]: f.get("value") for f in alert.details["deviating_features"]}
    assert values == {"amount": 98765.4321, "age": None}


def test_no_numeric_fields_no_deviating_features() -> None:
    cfg = config(numeric=False)
    pipeline, _ = warm(cfg)
    event = decode_record(ODD, cfg.fields, "")
    assert deviating_features(event, pipeline) == []


def drifted() -> tuple[MonitorConfig, Pipeline, list[Event], list[Score], list[DriftAlarm]]:
    cfg = config()
    pipeline, rng = warm(cfg)
    # 100 shifted events, then the old traffic again: a drift that comes and goes
    events = [decode_record(record(rng, 1000 + i, log_mean=7.0, merchant="new") if i < 100
                            else record(rng, 1000 + i), cfg.fields, "") for i in range(300)]
    scores, alarms = pipeline.process(events)
    assert alarms, "the shifted batch should alarm"
    return cfg, pipeline, events, scores, alarms


def test_drift_alert_explains_statistic_clusters_and_examples() -> None:
    _, _, _, scores, alarms = drifted()
    alarm = alarms[0]
    alert = drift_alert("payments", alarm, NOW)
    assert (alert.kind, alert.status) == ("drift", "firing")
    assert alert.labels == {"topic": "payments", "segment": "web"}
    assert f"{alarm.statistic:.3g}" in alert.annotations["description"]
    d = alert.details
    assert d["statistic"] == alarm.statistic and d["statistic"] >= d["threshold"] > 1
    assert d["detector"] == alarm.detector and d["index"] == alarm.index
    assert d["grown_clusters"] == list(alarm.grown) and d["grown_clusters"]
    assert d["shrunk_clusters"] == list(alarm.shrunk)
    assert set(d["grown_clusters"]).isdisjoint(d["shrunk_clusters"])
    assert d["example_ids"] == list(alarm.examples)
    # newest first: the alarm comes within a few shifted events (their p-values reach
    # below the calibration's range), so older events may fill the rest
    assert d["example_ids"] and d["example_ids"][0].startswith("tx-1")
    centroid = {s.event_id: s.centroid for s in scores}  # examples come from grown clusters
    assert centroid[d["example_ids"][0]] in alarm.grown
    assert d["example_events"] == [{"event_id": e} for e in d["example_ids"]]  # no memory
    for key in ("centroid_shift", "occupancy_divergence", "outlier_rate"):
        assert d[key] == getattr(alarm, key)


def deliver(alerts: list[Alert], tmp_path: Path, **kw: Any) -> dict[str, list[bytes]]:
    """Send `alerts` through a real sink to one receiver of each type; bodies per type."""
    bodies: dict[str, list[bytes]] = {"webhook": [], "slack": [], "alertmanager": []}

    def keep(kind: str) -> httpx.MockTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            bodies[kind].append(request.content)
            return httpx.Response(200)

        return httpx.MockTransport(answer)

    receivers = tuple(
        ReceiverConfig(name=t, type=t, url=f"http://127.0.0.1:9/{t}")
        for t in bodies
    )
    transports = {t: keep(t) for t in bodies}
    cfg = AlertsConfig(receivers=receivers, group_wait_seconds=0.0, **kw)
    sink = AlertSink(cfg, tmp_path, clock=lambda: NOW, transports=transports)
    for alert in alerts:
        sink.submit(alert)
    assert sink.flush(timeout=5.0)
    sink.stop()
    return bodies


def test_outliers_through_the_observer_show_real_ids_and_no_values(
    scored_odd: tuple[MonitorConfig, Pipeline, Event, Score], tmp_path: Path,
) -> None:
    cfg, pipeline, event, s = scored_odd
    submitted: list[Alert] = []
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted))
    observer.scored("payments", 0, pipeline, [event], [s], [])
    assert [a.kind for a in submitted] == ["outlier"]
    bodies = deliver(submitted, tmp_path)
    [slack] = bodies["slack"]
    assert "worst: tx-odd" in json.loads(slack)["blocks"][1]["text"]["text"]
    [hook] = bodies["webhook"]
    [a] = json.loads(hook)["alerts"]
    assert a["details"]["event_id"] == "tx-odd" and a["examples"][0]["event_id"] == "tx-odd"
    assert [f["field"] for f in a["details"]["deviating_features"]] == ["amount", "age"]
    [am] = bodies["alertmanager"]
    assert "tx-odd" in json.loads(am)[0]["annotations"]["examples"]
    for body in (slack, hook, am):
        assert not any(secret in body.decode() for secret in SECRETS)


def test_drift_through_the_observer_reaches_every_receiver(tmp_path: Path) -> None:
    cfg, pipeline, events, scores, alarms = drifted()
    submitted: list[Alert] = []
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted))
    observer.scored("payments", 0, pipeline, events, scores, alarms)
    drift = [a for a in submitted if a.kind == "drift" and a.status == "firing"]
    assert len(drift) == len(alarms) and drift[0].details["example_ids"]
    bodies = deliver(drift, tmp_path)
    [hook] = bodies["webhook"]
    doc = json.loads(hook)
    assert doc["alerts"][0]["details"]["example_ids"] == list(alarms[0].examples)
    assert "statistic=" in json.loads(bodies["slack"][0])["blocks"][1]["text"]["text"]


def feed(observer: Observer, pipeline: Pipeline, cfg: MonitorConfig, rng: random.Random,
         start: int, n: int, partition: int = 0, batch: int = 50, **kw: Any) -> None:
    """`n` events through the pipeline and the observer in daemon-sized batches."""
    for a in range(start, start + n, batch):
        events = [decode_record(record(rng, i, **kw), cfg.fields, "")
                  for i in range(a, min(a + batch, start + n))]
        scores, alarms = pipeline.process(events)
        observer.scored("payments", partition, pipeline, events, scores, alarms)


def test_drift_resolves_after_the_hysteresis_with_the_firing_fingerprint() -> None:
    cfg = config()
    pipeline, rng = warm(cfg)
    submitted: list[Alert] = []
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted))
    observer.assigned("payments", 0, pipeline, 0)
    feed(observer, pipeline, cfg, rng, 1000, 100, log_mean=7.0, merchant="new")
    firing = [a for a in submitted if a.kind == "drift"]
    assert firing and {a.status for a in firing} == {"firing"}
    assert firing[0].labels == {"topic": "payments", "segment": "web", "partition": "0"}
    assert pipeline.engine.segments["web"].drifting  # still inside the hysteresis
    assert status(observer, {})["partitions"][0]["drifting"] == ["web"]
    feed(observer, pipeline, cfg, rng, 2000, cfg.drift.hysteresis + 100)  # quiet again
    assert not pipeline.engine.segments["web"].drifting
    drift = [a for a in submitted if a.kind == "drift"]
    [resolved] = [a for a in drift if a.status == "resolved"]
    assert drift[-1] is resolved and resolved.ends_at == NOW
    assert fingerprint(resolved) == fingerprint(firing[0])
    assert {fingerprint(a) for a in drift} == {fingerprint(firing[0])}


def test_an_episode_that_ends_within_its_batch_still_resolves() -> None:
    cfg, pipeline, events, scores, alarms = drifted()  # 200 quiet events > hysteresis 50
    assert not pipeline.engine.segments["web"].drifting
    submitted: list[Alert] = []
    Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted)).scored(
        "payments", 3, pipeline, events, scores, alarms)
    drift = [a for a in submitted if a.kind == "drift"]
    assert [a.status for a in drift] == ["firing"] * len(alarms) + ["resolved"]
    assert len({fingerprint(a) for a in drift}) == 1
    assert drift[-1].labels["partition"] == "3"


def test_one_partition_going_quiet_does_not_resolve_another_partition() -> None:
    cfg = config()
    (p0, rng0), (p1, rng1) = warm(cfg), warm(cfg)  # segment "web" lives in both
    submitted: list[Alert] = []
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted))
    router = AlertRouter("ops", AlertsConfig(group_wait_seconds=0.0), TokenBucket(100, 60.0))
    for partition, pipeline, rng in ((0, p0, rng0), (1, p1, rng1)):
        feed(observer, pipeline, cfg, rng, 1000, 100, partition, log_mean=7.0, merchant="new")
    firing = {a.labels["partition"]: a for a in submitted if a.kind == "drift"}
    assert set(firing) == {"0", "1"}
    assert fingerprint(firing["0"]) != fingerprint(firing["1"])
    for a in submitted:
        router.submit(a, NOW)
    router.due(NOW)
    submitted.clear()
    feed(observer, p0, cfg, rng0, 2000, cfg.drift.hysteresis + 100, 0)  # only p0 goes quiet
    assert p1.engine.segments["web"].drifting and not p0.engine.segments["web"].drifting
    resolved = [a for a in submitted if a.kind == "drift"]
    assert [(a.status, a.labels["partition"]) for a in resolved] == [("resolved", "0")]
    for a in resolved:
        router.submit(a, NOW + 1)
    assert router.status(firing["0"]) == "resolved"
    assert router.status(firing["1"]) == "firing"  # partition 1's drift still fires
    feed(observer, p1, cfg, rng1, 2000, cfg.drift.hysteresis + 100, 1)
    assert [a.labels["partition"] for a in submitted if a.status == "resolved"] == ["0", "1"]


def test_exemplars_and_drift_examples_carry_allow_listed_fields() -> None:
    cfg = config().model_copy(update={"alerts": AlertsConfig(allow_fields=("merchant",))})
    pipeline = Pipeline.build(cfg)
    rng = random.Random(0)
    submitted: list[Alert] = []
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted))
    feed(observer, pipeline, cfg, rng, 0, 400)  # warm up through the observer
    assert len(observer.memory) == 400
    event = decode_record(ODD, cfg.fields, "")
    [s], _ = pipeline.process([event])
    observer.scored("payments", 0, pipeline, [event], [s], [])
    alert = submitted[-1]
    d = alert.details
    assert (alert.kind, d["event_id"]) == ("outlier", "tx-odd")
    assert d["exemplar_events"] and [e["event_id"] for e in d["exemplar_events"]] == (
        d["centroid_exemplars"])
    for e in d["exemplar_events"]:
        assert e["fields"]["merchant"] in ("acme", "bolt") and set(e["fields"]) == {"merchant"}
    assert d["fields"] == {"merchant": "zzz"}
    feed(observer, pipeline, cfg, rng, 1000, 100, log_mean=7.0, merchant="new")
    drift = next(a for a in submitted if a.kind == "drift")
    examples = drift.details["example_events"]
    assert [e["event_id"] for e in examples] == drift.details["example_ids"]
    assert examples and examples[0]["fields"] == {"merchant": "new"}  # newest first
    assert all(set(e["fields"]) == {"merchant"} for e in examples)
    assert "4111-0000" not in json.dumps([a.details for a in submitted])  # card never allowed


def test_nothing_is_remembered_without_an_allow_list() -> None:
    cfg = config()
    pipeline = Pipeline.build(cfg)
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts([]))
    feed(observer, pipeline, cfg, random.Random(0), 0, 400)
    assert len(observer.memory) == 0


def test_a_drift_fired_without_a_partition_label_is_resolved_too() -> None:
    """Alerts fired by an earlier release (labels topic and segment only) must not fire
    forever: the sink still holds them, the last partition to go quiet resolves them."""
    cfg = config()
    (p0, rng0), (p1, rng1) = warm(cfg), warm(cfg)
    submitted: list[Alert] = []
    observer = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(submitted))
    observer.ops.firing = lambda alert: "partition" not in alert.labels  # the old one fires
    for partition, pipeline, rng in ((0, p0, rng0), (1, p1, rng1)):
        feed(observer, pipeline, cfg, rng, 1000, 100, partition, log_mean=7.0, merchant="new")
    submitted.clear()
    feed(observer, p0, cfg, rng0, 2000, cfg.drift.hysteresis + 100, 0)
    submitted[:] = [a for a in submitted if a.kind == "drift"]  # outliers come at alpha
    assert [a.labels.get("partition") for a in submitted] == ["0"]  # p1 still drifts
    feed(observer, p1, cfg, rng1, 2000, cfg.drift.hysteresis + 100, 1)
    submitted[:] = [a for a in submitted if a.kind == "drift"]
    assert [a.labels for a in submitted[1:]] == [
        {"topic": "payments", "segment": "web", "partition": "1"},
        {"topic": "payments", "segment": "web"}]
    assert all(a.status == "resolved" for a in submitted)


def test_a_partition_moved_while_drifting_is_resolved_by_its_new_owner_only() -> None:
    cfg = config()
    pipeline, rng = warm(cfg)
    old_sent: list[Alert] = []
    router = AlertRouter("ops", AlertsConfig(group_wait_seconds=0.0), TokenBucket(100, 60.0))
    old = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(old_sent, drop=router.drop))
    old.assigned("payments", 0, pipeline, 0)
    feed(old, pipeline, cfg, rng, 1000, 100, log_mean=7.0, merchant="new")
    [firing] = [a for a in old_sent if a.kind == "drift"][:1]
    for a in old_sent:
        router.submit(a, NOW)
    router.due(NOW)
    assert router.status(firing) == "firing"
    # rebalance: the old owner forgets the partition and drops its alert silently ...
    old.forget("payments", 0)
    assert router.status(firing) is None and not router.due(NOW + 10 * 3600)
    # ... and the new owner, restored mid-episode, resolves it when the segment calms down
    state = pipeline.state_dict()
    moved = Pipeline.build(cfg)
    moved.load_state_dict(state)
    assert moved.engine.view("web").drifting  # type: ignore[union-attr]
    new_sent: list[Alert] = []
    new = Observer(cfg, clock=lambda: NOW, alerts=RecordingAlerts(new_sent))
    new.assigned("payments", 0, moved, 0)
    feed(new, moved, cfg, rng, 2000, cfg.drift.hysteresis + 100)
    resolved = [a for a in new_sent if a.kind == "drift" and a.status == "resolved"]
    assert [fingerprint(a) for a in resolved] == [fingerprint(firing)]
