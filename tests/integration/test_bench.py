"""`monitor bench --events 2000` runs end to end (real model, embedded broker) and writes a
complete JSON report. No speed is asserted: benchmarks are never timed tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import ROOT

pytestmark = [pytest.mark.slow]

KEYS = ["events", "events_per_s", "latency_p50_ms", "latency_p99_ms", "rss_mb_start",
        "rss_mb_end", "raw_encode_per_s", "naive_loop_per_s", "ratio_vs_raw_encode",
        "ratio_vs_naive_loop", "stage_share", "stage_seconds", "device", "profile", "shape",
        "score_us_per_event", "metrics_us_per_event"]


@pytest.mark.timeout(300)
def test_bench_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "monitor", "bench", "--events", "2000",
                           "--naive-sample", "200", "--quiet", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert [k for k in KEYS if k not in r] == []
    assert r["events"] == 2000 and r["events_processed"] >= 2000
    assert (r["profile"], r["shape"]) == ("torch", "unique")
    assert r["device"] in ("cpu", "cuda")
    for k in ("events_per_s", "raw_encode_per_s", "naive_loop_per_s", "ratio_vs_raw_encode",
              "ratio_vs_naive_loop", "score_us_per_event", "rss_mb_start", "rss_mb_end"):
        assert math.isfinite(r[k]) and r[k] > 0, (k, r[k])
    assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"]
    assert set(r["stage_share"]) >= {"consume", "decode", "embed", "score", "produce", "commit"}
    assert sum(r["stage_share"].values()) == pytest.approx(1.0, abs=0.01)
    assert r["stage_share"]["embed"] > 0
    assert "ratio vs raw encode" in proc.stdout  # the table


@pytest.mark.timeout(300)
def test_bench_repartition_reports_both_rates_and_the_router(tmp_path: Path) -> None:
    """`--repartition` (static profile to keep it short): both end-to-end rates, their
    ratio and the router's own rate, every record forwarded once."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "monitor", "bench", "--repartition",
                           "--profile", "static", "--events", "3000", "--segments", "6",
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    for k in ("plain_events_per_s", "repartition_events_per_s", "repartition_ratio",
              "router_events_per_s"):
        assert math.isfinite(r[k]) and r[k] > 0, (k, r[k])
    assert r["router_forwarded"] == 3000
    assert r["plain"]["events_processed"] == r["repartition"]["events_processed"] == 3000
    assert "repartition_ratio" in proc.stdout
