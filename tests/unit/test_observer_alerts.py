"""The observer's alert builders on a real tabular pipeline, and their way to the receivers.

One small pipeline (two numeric fields, one categorical, one segment) warms up on typical
transactions, then sees one odd transaction (an outlier) and a shifted batch (drift). The
alerts it yields are checked for their explanation, then sent through a real `AlertSink`
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
from monitor.observer import Observer, deviating_features, drift_alert, outlier_alert
from monitor.pipeline import Pipeline
from monitor.sinks.alerts import AlertsConfig, AlertSink, ReceiverConfig

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
    events = [decode_record(record(rng, 1000 + i, log_mean=7.0, merchant="new"), cfg.fields, "")
              for i in range(300)]
    scores, alarms = pipeline.process(events)
    assert alarms, "the shifted batch should alarm"
    return cfg, pipeline, events, scores, alarms


def test_drift_alert_explains_statistic_clusters_and_examples() -> None:
    *_, alarms = drifted()
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
    assert d["example_ids"] and all(e.startswith("tx-1") for e in d["example_ids"])
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
    observer = Observer(cfg, clock=lambda: NOW, submit=submitted.append)
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
    observer = Observer(cfg, clock=lambda: NOW, submit=submitted.append)
    observer.scored("payments", 0, pipeline, events, scores, alarms)
    drift = [a for a in submitted if a.kind == "drift"]
    assert len(drift) == len(alarms) and drift[0].details["example_ids"]
    bodies = deliver(drift, tmp_path)
    [hook] = bodies["webhook"]
    doc = json.loads(hook)
    assert doc["alerts"][0]["details"]["example_ids"] == list(alarms[0].examples)
    assert "statistic=" in json.loads(bodies["slack"][0])["blocks"][1]["text"]["text"]
