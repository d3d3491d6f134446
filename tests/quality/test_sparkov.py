"""Mixed text + tabular card transactions (Sparkov, issue 11 must-show 1).

Reference = the legitimate rows among the first 1,500 by time; stream = rows 1,501-6,025
(4,525 events, 25 frauds); labels serve the metrics only (no feedback). The monitor must
rank the frauds at least as well as 0.90 AUROC, better than the amount alone and than
IsolationForest on the same rows, and the text fields may cost it at most 0.01.
"""

from __future__ import annotations

import csv
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.tools.evaluate import auroc
from monitor.tools.replay import replay
from tests.datasets import PrecomputedTextModel, embed_texts, need
from tests.quality.baselines import isolation_forest_scores

pytestmark = [pytest.mark.slow, pytest.mark.data]
FILE = ("sparkov_train", "fraudTrain_head_6025.csv")
NUMERIC = [{"name": "amt", "log": True}, {"name": "city_pop", "log": True}, {"name": "lat"},
           {"name": "long"}, {"name": "merch_lat"}, {"name": "merch_long"}]
FIELDS: dict[str, Any] = {
    "id": "trans_num", "label": "is_fraud", "positive": ["1"], "timestamp": "unix_time",
    "timestamp_format": "epoch_s", "numeric": NUMERIC,
    "categorical": ["category", "gender", "state"],
}
TEXT = ["merchant", "job"]


@cache
def rows() -> list[dict[str, str]]:
    with open(need(*FILE), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@cache
def text_model() -> PrecomputedTextModel:
    texts = sorted({r[f] for r in rows() for f in TEXT})
    return PrecomputedTextModel(texts, embed_texts(texts))


def _write(path: Path, part: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in part:
            fh.write(json.dumps(r) + "\n")
    return path


def run(tmp: Path, fields: dict[str, Any], **score: Any) -> dict[str, Any]:
    """The issue's protocol through `monitor replay`, without feedback."""
    data = rows()
    reference = [r for r in data[:1500] if r["is_fraud"] == "0"]
    ref, stream = _write(tmp / "ref.jsonl", reference), _write(tmp / "stream.jsonl", data[1500:])
    cfg = parse_config({"fields": fields, "score": score})
    model = text_model() if fields.get("text") else None
    return replay(cfg, str(stream), Pipeline.build(cfg, model), reference=str(ref),
                  progress=False, feedback=False)


def _features(part: list[dict[str, str]], categories: list[str]) -> np.ndarray:
    """16+ simple features for the baseline: the numerics (amount and population logged),
    the hour of day on the circle, and the category one-hot."""
    out = []
    for r in part:
        hour = (int(r["unix_time"]) % 86_400) / 3_600 * 2 * math.pi / 24
        out.append([math.log1p(float(r["amt"])), math.log1p(float(r["city_pop"])),
                    float(r["lat"]), float(r["long"]), float(r["merch_lat"]),
                    float(r["merch_long"]), math.sin(hour), math.cos(hour)]
                   + [float(r["category"] == c) for c in categories])
    return np.array(out)


def test_mixed_events_rank_fraud_above_the_amount_and_isolation_forest(tmp_path: Path) -> None:
    data = rows()
    reference = [r for r in data[:1500] if r["is_fraud"] == "0"]
    stream = data[1500:]
    labels = [r["is_fraud"] == "1" for r in stream]
    with_text = run(tmp_path, FIELDS | {"text": TEXT})
    per_field = run(tmp_path, FIELDS | {"text": TEXT}, text_evidence="per_field")
    without = run(tmp_path, FIELDS)  # per-field evidence then off by default (auto)
    without_fe = run(tmp_path, FIELDS, field_evidence=True)  # the like-for-like comparison
    categories = sorted({r["category"] for r in data})
    result = {
        "monitor": with_text["auroc"], "monitor_without_text": without["auroc"],
        "monitor_text_per_field": per_field["auroc"],
        "monitor_without_text_field_evidence": without_fe["auroc"],
        "log_amount": auroc(labels, [math.log1p(float(r["amt"])) for r in stream]),
        "isolation_forest": auroc(labels, isolation_forest_scores(
            _features(reference, categories), _features(stream, categories))),
        "auroc_by_group": with_text.get("auroc_by_group"),
        "auroc_by_group_text_per_field": per_field.get("auroc_by_group"),
        "recall_at_alpha": with_text["recall_at_alpha"],
        "outlier_rate": with_text["outlier_rate"],
    }
    print(json.dumps(result, indent=1))
    assert with_text["events"] == with_text["scored"] == 4525
    assert result["monitor"] >= 0.90, result
    assert result["monitor"] > result["log_amount"], result
    assert result["monitor"] > result["isolation_forest"], result
    assert result["monitor"] >= result["monitor_without_text"] - 0.01, result
    assert result["monitor"] >= result["monitor_without_text_field_evidence"] - 0.01, result
    # each text field against its own reference: the same bars
    assert result["monitor_text_per_field"] >= 0.90, result
    assert result["monitor_text_per_field"] >= (
        result["monitor_without_text_field_evidence"] - 0.01), result
