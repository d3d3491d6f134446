"""The demo's seeded stream through `Pipeline`, without feedback (issue 11 must-shows 2-3).

Fraud bursts come after the injected drift; each must still be flagged, the drift must be
caught soon after it starts and not before, and p-values on stationary traffic must stay
uniform (the calibration neither ratchets down nor drifts up). The burst test puts 30
near-identical anomalies in a row into a stationary stream.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from functools import cache

import numpy as np
import orjson
import pytest

from monitor.config import MonitorConfig, parse_config
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.events import DriftAlarm, Event, Score
from monitor.pipeline import Pipeline
from monitor.tools.synthetic import CATEGORIES, DEMO_CONFIG, DRIFT_CATEGORIES, FRAUD, generate
from tests.datasets import PrecomputedTextModel, embed_texts

pytestmark = [pytest.mark.slow]
CFG = parse_config(DEMO_CONFIG)


@cache
def text_model() -> PrecomputedTextModel:
    texts = sorted({t for table in (CATEGORIES, DRIFT_CATEGORIES)
                    for merchants, descriptions, _ in table.values()
                    for t in merchants + descriptions} | set(FRAUD[0]) | set(FRAUD[1]))
    return PrecomputedTextModel(texts, embed_texts(texts))


def decode(lines: list[bytes]) -> list[Event]:
    events = []
    for i, line in enumerate(lines):
        try:
            events.append(replace(decode_json(line, CFG.fields, str(i)), label=None))
        except DecodeError:
            continue  # the poison lines: the daemon dead-letters them
    return events


def run(events: list[Event], cfg: MonitorConfig = CFG) -> tuple[list[Score], list[DriftAlarm]]:
    pipeline = Pipeline.build(cfg, text_model())
    scores, alarms = [], []
    for start in range(0, len(events), 256):
        s, a = pipeline.process(events[start : start + 256])
        scores += s
        alarms += a
    return scores, alarms


def _uniform_blocks(scores: list[Score], block: int = 2_000) -> list[tuple[float, float]]:
    p = np.array([s.p_value for s in scores if s.p_value is not None])
    return [(float((p[i : i + block] < 0.1).mean()), float((p[i : i + block] < 0.01).mean()))
            for i in range(0, len(p) - block + 1, block)]


def test_demo_bursts_after_the_drift_are_flagged_and_the_drift_is_caught() -> None:
    lines, truth = generate(5_000)
    scores, alarms = run(decode(lines))
    by_id = {s.event_id: s for s in scores}
    flagged = [[by_id[f"tx-{i:07d}"].outlier for i in range(a, b + 1)]
               for a, b in truth.fraud_bursts]
    first = [a.index for a in alarms][:1]
    stationary = [s for s in scores[: truth.drift_at or 0]
                  if not s.warming_up and s.event_id not in set(truth.fraud_ids)]
    blocks = _uniform_blocks(stationary)
    print(json.dumps({"flagged_per_burst": [sum(f) for f in flagged], "bursts":
                      truth.fraud_bursts, "alarms": [a.index for a in alarms],
                      "stationary_blocks": blocks}))
    assert len(truth.fraud_ids) == 24 and len(flagged) == 3
    assert sum(map(sum, flagged)) >= 22 and all(sum(f) >= 6 for f in flagged), flagged
    assert truth.drift_at == 3_000 and first and 3_000 <= first[0] <= 3_050, first
    assert blocks and all(0.08 <= lo <= 0.12 and 0.005 <= vlo <= 0.02 for lo, vlo in blocks)


def test_stationary_demo_traffic_keeps_p_values_uniform_and_raises_no_alarm() -> None:
    lines, _ = generate(20_600, seed=11, drift_at=None, fraud_bursts=0, malformed=0)
    scores, alarms = run(decode(lines))
    blocks = _uniform_blocks([s for s in scores if not s.warming_up])
    print(json.dumps({"alarms": [a.index for a in alarms], "blocks": blocks}))
    assert len(blocks) == 10
    assert all(0.08 <= lo <= 0.12 and 0.005 <= vlo <= 0.02 for lo, vlo in blocks), blocks
    assert not alarms


def test_a_burst_of_30_near_identical_anomalies_is_flagged_throughout() -> None:
    lines, _ = generate(4_000, seed=5, drift_at=None, fraud_bursts=0, malformed=0)
    events = decode(lines)
    burst = [orjson.dumps({"id": f"burst-{j}", "ts": 1_767_300_000.0 + j,
                           "merchant": "QuickGiftz Online", "category": "transfers",
                           "description": "urgent gift card bulk purchase",
                           "amount": 2_500.0 + j, "country": "NG"}) for j in range(30)]
    events[2_000:2_000] = decode(burst)
    # learning blocks of 4: the calibration is refreshed seven times within the burst, so
    # a burst that could poison it would show (with the default 64 it would all fall in
    # one block and be scored before any of it was learned)
    tree = copy.deepcopy(DEMO_CONFIG)
    tree["score"] = dict(tree["score"], learn_block=4)
    scores, _ = run(events, parse_config(tree))
    flagged = [s.outlier for s in scores if s.event_id.startswith("burst-")]
    print(f"burst flagged: {sum(flagged)}/30: {flagged}")
    assert len(flagged) == 30 and sum(flagged) >= 28
