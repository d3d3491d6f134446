"""Tabular fraud detection against river and scikit-learn baselines (core issue 2 and 3).

Each dataset is scored by `monitor` and by the two baselines on the same rows in the same
run; labels serve the metrics only (no feedback), as the baselines see none either.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.tools.evaluate import auroc
from monitor.tools.replay import replay
from tests.datasets import need
from tests.quality.baselines import isolation_forest_scores, river_hst_scores

pytestmark = [pytest.mark.data]
CC_FEATURES = [f"V{i}" for i in range(1, 29)]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _matrix(rows: list[dict[str, str]], numeric: list[str], logged: list[str]) -> np.ndarray:
    cols = [[float(r[c]) for c in numeric] + [math.log1p(max(float(r[c]), 0.0)) for c in logged]
            for r in rows]
    return np.array(cols)


def _compare(tmp: Path, cfg: dict, ref_rows: list[dict[str, str]],
             stream_rows: list[dict[str, str]], columns: list[str], baseline_x: tuple) -> dict:
    ref = _write(tmp / "reference.csv", ref_rows, columns)
    src = _write(tmp / "stream.csv", stream_rows, columns)
    config = parse_config(cfg)
    report = replay(config, str(src), Pipeline.build(config), reference=str(ref),
                    progress=False, feedback=False)
    labels = [r[cfg["fields"]["label"]] in ("1", "1.0") for r in stream_rows]
    ref_x, stream_x = baseline_x
    result = {
        "monitor": report["auroc"],
        "river_hst": auroc(labels, river_hst_scores(ref_x, stream_x)),
        "isolation_forest": auroc(labels, isolation_forest_scores(ref_x, stream_x)),
        "events": report["events"], "scored": report["scored"],
    }
    print(json.dumps(result, indent=1))
    return result


def test_creditcard_within_0005_of_the_better_baseline(tmp_path: Path) -> None:
    reference = [r for r in _read(need("creditcard_ulb", "creditcard_random_5000.csv"))
                 if r["Class"] == "0"]
    stream = sorted(_read(need("creditcard_ulb", "creditcard_allfrauds_undersampled_1722.csv")),
                    key=lambda r: float(r["Time"]))
    cfg = {"fields": {"label": "Class", "positive": ["1"],
                      "numeric": [{"name": c} for c in CC_FEATURES]
                      + [{"name": "Amount", "log": True}]}}
    columns = ["Time", *CC_FEATURES, "Amount", "Class"]
    feats = (_matrix(reference, CC_FEATURES, ["Amount"]), _matrix(stream, CC_FEATURES, ["Amount"]))
    res = _compare(tmp_path, cfg, reference, stream, columns, feats)
    assert res["scored"] == len(stream) == 1722
    assert res["monitor"] >= max(res["river_hst"], res["isolation_forest"]) - 0.005, res


def test_creditcard_feedback_risk_ranks_at_least_as_well_as_either_evidence(
        tmp_path: Path) -> None:
    """With each label fed back after its event was scored, the risk that combines outlier
    and known-fraud evidence ranks at least as well as the better of the two alone."""
    reference = [r for r in _read(need("creditcard_ulb", "creditcard_random_5000.csv"))
                 if r["Class"] == "0"]
    stream = sorted(_read(need("creditcard_ulb", "creditcard_allfrauds_undersampled_1722.csv")),
                    key=lambda r: float(r["Time"]))
    cfg = parse_config({"fields": {"label": "Class", "positive": ["1"],
                                   "numeric": [{"name": c} for c in CC_FEATURES]
                                   + [{"name": "Amount", "log": True}]}})
    columns = ["Time", *CC_FEATURES, "Amount", "Class"]
    report = replay(cfg, str(_write(tmp_path / "s.csv", stream, columns)), Pipeline.build(cfg),
                    reference=str(_write(tmp_path / "r.csv", reference, columns)),
                    progress=False, feedback=True)
    got = {k: report[k] for k in ("auroc", "auroc_risk", "auroc_fraud_similarity")}
    print(json.dumps(got))
    assert got["auroc_risk"] >= max(got["auroc"], got["auroc_fraud_similarity"]), got


PAYSIM_NUMERIC = ["amount", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest",
                  "newbalanceDest"]


def test_paysim_at_least_092_and_above_the_baselines(tmp_path: Path) -> None:
    rows = sorted(_read(need("paysim", "paysim_sample_51392.csv")),
                  key=lambda r: float(r["step"]))
    # reference: the first 10,000 legitimate transactions by time; stream: the rest
    reference = [r for r in rows[:12_000] if r["isFraud"] == "0.0"][:10_000]
    used = {id(r) for r in reference}
    stream = [r for r in rows if id(r) not in used]
    cfg = {"fields": {"label": "isFraud", "positive": ["1.0"], "categorical": ["type"],
                      "numeric": [{"name": c, "log": True} for c in PAYSIM_NUMERIC]}}
    columns = ["step", "type", *PAYSIM_NUMERIC, "isFraud"]
    types = sorted({r["type"] for r in rows})

    def x(rs: list[dict[str, str]]) -> np.ndarray:
        onehot = np.array([[r["type"] == t for t in types] for r in rs], float)
        return np.hstack([_matrix(rs, [], PAYSIM_NUMERIC), onehot])

    res = _compare(tmp_path, cfg, reference, stream, columns, (x(reference), x(stream)))
    assert res["scored"] == len(stream)
    assert res["monitor"] >= 0.92, res
    assert res["monitor"] > max(res["river_hst"], res["isolation_forest"]), res
