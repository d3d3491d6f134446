"""The status page (`GET /`): the renderer on a fake observer state, and what the observer
keeps for it (bounded rings, bounded names, allow-listed fields only)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import numpy as np

from monitor.config import AlertsConfig, DriftConfig, FieldsConfig, MonitorConfig, ScoreConfig
from monitor.events import DriftAlarm, Event, Score
from monitor.observer import RECENT_ALARMS, RECENT_OUTLIERS, Observer
from monitor.score.engine import Engine
from monitor.sinks.labels import bounded_label
from monitor.sinks.status import page
from monitor.sinks.status_page import CONTENT_TYPE, REFRESH_S, render

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
EVIL = '<script>alert("x")</script>'


def fake_page() -> dict[str, Any]:
    return {
        "status": {"ready": "ready: 1 partition(s) assigned and restored",
                   "healthy": "loop alive (0.1s since last poll)", "events": 1234,
                   "scored": 1000, "outliers": 7, "dead_letters": 2, "alarms": 1,
                   "checkpoints": 3, "feedback": 0, "flag_precision": None,
                   "partitions": [{"topic": "tx", "partition": 0, "lag": 42, "events": 1234,
                                   "segments": 2, "evicted": 0, "warming_up": 1,
                                   "drifting": ["GB"]}],
                   "last_alarm": None},
        "segments": [
            {"topic": "tx", "partition": 0, "segment": "GB", "state": "drifting",
             "events": 1200, "outliers": 7, "outlier_rate": 0.0125, "statistic": 512.5,
             "threshold": 100.0},
            {"topic": "tx", "partition": 0, "segment": EVIL, "state": "warming up",
             "events": 34, "outliers": 0, "outlier_rate": 0.0, "statistic": 0.0,
             "threshold": 100.0},
        ],
        "segments_total": 60,
        "alarms": [{"time": NOW, "topic": "tx", "partition": 0, "segment": "GB",
                    "index": 900, "statistic": 150.25, "threshold": 100.0,
                    "outlier_rate": 0.02, "examples": ["tx-0000899", EVIL]}],
        "outliers": [{"time": NOW, "topic": "tx", "partition": 0, "id": "tx-0000901",
                      "segment": "GB", "score": 0.731, "p_value": 0.000123, "risk": 0.9,
                      "driver": "amount", "fields": {"merchant": "ACME & Sons"}},
                     {"time": NOW, "topic": "tx", "partition": 0, "id": EVIL,
                      "segment": "GB", "score": 0.5, "p_value": 0.0009, "risk": 0.4,
                      "driver": "", "fields": {}}],
    }


def test_renders_every_section_read_only_and_self_contained() -> None:
    page = render(fake_page(), now=NOW).decode()
    assert CONTENT_TYPE.startswith("text/html")
    assert page.startswith("<!DOCTYPE html>")
    assert f'<meta http-equiv="refresh" content="{REFRESH_S}">' in page
    for section in ("health", "partitions", "segments", "alarms", "outliers"):
        assert f'<section id="{section}">' in page
    for link in ("metrics", "status", "healthz"):
        assert f'href="{link}"' in page
    # nothing to submit, run or fetch: no form, script, external asset or absolute URL
    lowered = page.lower()
    for banned in ("<form", "<script", "<input", "<button", "<link", "<img", "<iframe",
                   "src=", "http://", "https://", "method="):
        assert banned not in lowered, banned
    assert "2026-01-01 00:00:00 UTC" in page
    assert "ready: 1 partition(s) assigned and restored" in page
    assert re.search(r'<td class="n">42</td>', page)  # the lag
    assert '<span class="drifting">drifting</span>' in page
    assert "0.0125" in page and "0.000123" in page and "tx-0000901" in page
    assert "merchant: ACME &amp; Sons" in page
    assert "2 of 60 segments" in page
    assert ">embedding<" in page  # an outlier without a driver column


def test_every_value_is_escaped() -> None:
    page = render(fake_page(), now=NOW).decode()
    assert EVIL not in page and "<script" not in page
    assert html_escaped(EVIL) in page
    assert page.count(html_escaped(EVIL)) == 3  # segment name, example id, outlier id


def html_escaped(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def test_empty_state_and_long_values() -> None:
    page = render({"status": {"partitions": []}}, now=NOW).decode()
    assert "no partition assigned" in page and "no drift alarm since start" in page
    assert "no outlier since start" in page and "no segment yet" in page
    long_id, long_value = "x" * 10_000, "y" * 10_000
    state = fake_page()
    state["outliers"][0] |= {"id": long_id, "fields": {"note": long_value}}
    page = render(state, now=NOW).decode()
    assert long_id[:200] not in page and long_value[:200] not in page
    assert bounded_label(long_id, 120) in page and bounded_label(long_value, 120) in page


def _engine() -> Engine:
    eng = Engine(ScoreConfig(warmup=20, k=2), DriftConfig(), segmented=True)
    x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    names = ["GB", "FR", "m" * 500]
    eng.process([Event(id=str(i), segment=names[i % 3]) for i in range(60)], x)
    return eng


def _score(i: int, segment: str, outlier: bool) -> Score:
    return Score(event_id=f"tx-{i}", segment=segment, score=0.5, p_value=0.001 if outlier else 0.5,
                 outlier=outlier, fraud_similarity=0.0, normal_similarity=0.0, risk=0.7,
                 centroid=0, driver="amount")


def test_observer_keeps_bounded_rings_with_allow_listed_fields_only() -> None:
    cfg = MonitorConfig(fields=FieldsConfig(id="id", numeric=[{"name": "amount"}]),
                        alerts=AlertsConfig(allow_fields=("merchant",)))
    obs = Observer(cfg, clock=lambda: NOW)
    pipeline: Any = SimpleNamespace(engine=_engine())
    obs.assigned("tx", 0, pipeline, 0)
    long_name = "seg-" * 100
    events = [Event(id=f"tx-{i}", segment=long_name,
                    fields={"merchant": f"shop-{i}", "card": f"4111-{i:04d}"}) for i in range(60)]
    scores = [_score(i, long_name, outlier=i % 2 == 0) for i in range(60)]
    alarms = [DriftAlarm(index=i, segment=long_name, statistic=200.0, threshold=100.0,
                         detector="shiryaev_roberts") for i in range(RECENT_ALARMS + 5)]
    obs.scored("tx", 0, pipeline, events, scores, alarms)

    shown = page(obs, {"ready": "ready", "healthy": "alive"})
    outliers, kept_alarms = shown["outliers"], shown["alarms"]
    assert len(outliers) == RECENT_OUTLIERS and len(kept_alarms) == RECENT_ALARMS
    assert outliers[0]["id"] == "tx-58"  # newest first, only outliers
    assert all(int(o["id"][3:]) % 2 == 0 for o in outliers)
    assert outliers[0]["fields"] == {"merchant": "shop-58"}
    # rows of a segment that /metrics does not name (and that is not drifting) say "other"
    assert {o["segment"] for o in outliers} == {"other"}
    assert kept_alarms[0]["index"] == RECENT_ALARMS + 4
    assert kept_alarms[0]["segment"] == "other"
    obs.scored("tx", 0, pipeline, [Event(id="tx-gb", segment="GB")],
               [_score(99, "GB", outlier=True)], [])
    assert page(obs, {})["outliers"][0]["segment"] == "GB"  # a named segment keeps its name
    assert bounded_label(long_name) not in render(page(obs, {})).decode()
    assert shown["segments_total"] == 3
    assert {s["segment"] for s in shown["segments"]} == {"GB", "FR", bounded_label("m" * 500)}
    assert all(s["threshold"] > 0 and s["events"] == 20 for s in shown["segments"])
    assert shown["status"]["ready"] == "ready"
    assert [s["segment"] for s in page(obs, {}, rows=1)["segments"]] == ["FR"]  # by events, name
    # a name folded into segment="other" on /metrics (and not drifting) is not listed
    obs.metrics.collector.segment_cap = 2
    assert [s["segment"] for s in page(obs, {})["segments"]] == ["FR"]

    html = render(shown).decode()
    assert "shop-58" in html and "4111-" not in html and long_name not in html
    obs.forget("tx", 0)  # a revoked partition leaves nothing behind on the page
    assert page(obs, {})["outliers"] == [] and page(obs, {})["alarms"] == []
