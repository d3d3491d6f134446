"""`monitor replay` end to end on a tabular CSV (no model needed): rejects, report, output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.cli import main


def test_replay_writes_rejects_scores_and_report(tmp_path: Path, capfd) -> None:
    rng = np.random.default_rng(0)
    lines = ["id,amount,country,is_fraud"]
    for i in range(1_200):
        fraud = i > 900 and i % 50 == 0
        amount = 5_000 * rng.random() + 20_000 if fraud else rng.lognormal(3, 0.5)
        lines.append(f"t{i},{amount:.2f},{'NG' if fraud else 'GB'},{int(fraud)}")
    lines.insert(300, "t-bad,not-a-number,GB,0")
    lines.insert(600, "t-short,12.0")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.yaml").write_text(
        "fields:\n  id: id\n  numeric: [{name: amount, log: true}]\n  categorical: [country]\n"
        "score:\n  warmup: 300\n  alpha: 0.01\n")
    code = main(["replay", str(tmp_path / "s.csv"), "--config", str(tmp_path / "c.yaml"),
                 "--label-field", "is_fraud", "--positive", "1", "--quiet",
                 "--out", str(tmp_path / "o.jsonl"), "--report", str(tmp_path / "r.json"),
                 "--rejects", str(tmp_path / "rej.jsonl")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    for key in ("events", "rejected", "outliers", "outlier_rate", "events_per_s", "alarms",
                "auroc", "auprc", "fpr_at_95_tpr", "precision_at_alpha", "recall_at_alpha"):
        assert key in report
    assert report["events"] == 1_200 and report["rejected"] == 2
    rejects = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert {r["line"] for r in rejects} == {301, 601}
    assert any("expected a number" in r["reason"] for r in rejects)
    assert any("columns" in r["reason"] for r in rejects)
    scored = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(scored) == 1_200
    assert report["auroc"] > 0.9
    assert "AUROC" in capfd.readouterr().out


def test_unknown_config_key_exits_2_with_the_path(tmp_path: Path, capsys) -> None:
    (tmp_path / "c.yaml").write_text("fields:\n  numeric: [{name: a}]\nscore:\n  alhpa: 1\n")
    (tmp_path / "s.jsonl").write_text('{"a": 1}\n')
    assert main(["replay", str(tmp_path / "s.jsonl"), "--config", str(tmp_path / "c.yaml")]) == 2
    assert "score.alhpa" in capsys.readouterr().err
