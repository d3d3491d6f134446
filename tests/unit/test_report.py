"""`monitor replay --html`: a self-contained page, small for 10,000 events, that shows no
event value outside `alerts.allow_fields` and no secret; the collector changes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from monitor.cli import main
from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.report import ReplayCollector, write_html
from monitor.tools.replay import replay
from monitor.tools.synthetic import CATEGORIES, DEMO_CONFIG, DRIFT_CATEGORIES, FRAUD, generate
from tests.fakes import HashingTextModel

SECRETS = {"receiver secret": "hunter2-secret-value", "header": "Bearer tok-999-header",
           "url path": "sekrit-path-77", "kafka password": "pw-12345-kafka"}
CONFIG: dict[str, Any] = {
    **DEMO_CONFIG,
    "alerts": {"allow_fields": ["category"],
               "receivers": [{"name": "ops",
                              "url": f"https://hooks.example/T0/{SECRETS['url path']}",
                              "secret": SECRETS["receiver secret"],
                              "headers": {"Authorization": SECRETS["header"]}}]},
    "kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
              "sasl_plain_username": "monitor", "sasl_plain_password": SECRETS["kafka password"]},
}
HEADINGS = ("Summary", "Outliers", "Segments", "Top outliers", "Drift alarms", "Embedding map",
            "Labels")


def _stream(tmp: Path, events: int, seed: int = 3) -> Path:
    lines, _ = generate(events, seed=seed)
    path = tmp / "stream.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_ten_thousand_events_make_a_small_self_contained_page_without_values(
        tmp_path: Path) -> None:
    stream = _stream(tmp_path, 10_000)
    cfg = parse_config(CONFIG)
    pipeline = Pipeline.build(cfg, HashingTextModel())
    collector = ReplayCollector(pipeline)
    report = replay(cfg, str(stream), pipeline, progress=False, collector=collector)
    assert report["outliers"] > 0 and report["alarms"] and "auroc" in report
    out = tmp_path / "report.html"
    size = write_html(out, report, collector, cfg, stream=str(stream))
    page = out.read_text()
    assert size == out.stat().st_size < 5_000_000, size
    # self-contained: nothing is loaded from anywhere, and the browser may load nothing
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b|\b(src|href)\s*=|url\(|@import",
                         page, re.I)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<svg") >= 6
    # event values: only the allow-listed field's (category "transfers" of the fraud bursts)
    assert "category=transfers" in page
    tables = [CATEGORIES, DRIFT_CATEGORIES, {"fraud": (FRAUD[0], FRAUD[1], 0.0)}]
    values = {v for table in tables for merchants, texts, _ in table.values()
              for v in (*merchants, *texts) if len(v) >= 4}  # "BP" may occur by chance
    leaked = sorted(v for v in values if v in page)
    assert not leaked, leaked
    top = re.findall(r"<td>(tx-\d{7})</td>", page)
    assert top  # the top outliers are listed by id
    rows = {r["id"]: r for r in map(_json, stream.read_bytes().splitlines()) if "amount" in r}
    amounts = [str(rows[i]["amount"]) for i in top]
    # where an outlier's fields would show (the whole page holds chart coordinates, and a
    # "979.0" among them is no leak)
    listed = page.split("<h2>Top outliers</h2>", 1)[1].split("<h2>", 1)[0]
    assert not [a for a in amounts if re.search(rf"(?<![\d.]){re.escape(a)}(?![\d])", listed)]
    # secrets of the config are redacted
    assert not [k for k, v in SECRETS.items() if v in page]
    assert "&lt;redacted&gt;" in page


def _json(line: bytes) -> dict[str, Any]:
    import orjson

    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def test_the_collector_changes_no_score(tmp_path: Path) -> None:
    stream = _stream(tmp_path, 2_500, seed=5)
    cfg = parse_config(DEMO_CONFIG)
    outs = []
    for collect in (False, True):
        pipeline = Pipeline.build(cfg, HashingTextModel())
        out = tmp_path / f"scored-{collect}.jsonl"
        report = replay(cfg, str(stream), pipeline, out=str(out), progress=False,
                        collector=ReplayCollector(pipeline) if collect else None)
        report.pop("events_per_s")
        outs.append((out.read_bytes(), report))
    assert outs[0] == outs[1]


def test_replay_cli_html_on_a_tabular_stream(tmp_path: Path, capfd) -> None:
    rng = np.random.default_rng(1)
    lines = ["id,amount,country,is_fraud"]
    for i in range(1_500):
        fraud = i > 900 and i % 60 == 0
        amount = 20_000 + 5_000 * rng.random() if fraud else rng.lognormal(3, 0.5)
        lines.append(f"t{i},{amount:.2f},{'NG' if fraud else 'GB'},{int(fraud)}")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.yaml").write_text(
        "fields:\n  id: id\n  numeric: [{name: amount, log: true}]\n  categorical: [country]\n"
        "score:\n  warmup: 300\n  alpha: 0.01\n")
    html = tmp_path / "r.html"
    assert main(["replay", str(tmp_path / "s.csv"), "--config", str(tmp_path / "c.yaml"),
                 "--label-field", "is_fraud", "--positive", "1", "--quiet",
                 "--html", str(html)]) == 0
    page = html.read_text()
    assert all(f"<h2>{h}</h2>" in page for h in HEADINGS)
    assert "ROC" in page and re.search(r"<td>t\d+</td>", page)  # labels; top outliers
    assert "HTML report written to" in capfd.readouterr().err
