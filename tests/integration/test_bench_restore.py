"""`monitor bench --restore` runs end to end on the embedded broker at tiny sizes and writes
a complete JSON report. No speed is asserted: benchmarks are never timed tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import ROOT

pytestmark = [pytest.mark.slow]

TIMES = ["read_s", "end_wait_s", "decode_s", "load_s", "total_s", "decode_once_s",
         "load_once_s"]


@pytest.mark.timeout(180)
def test_bench_restore_writes_every_variant(tmp_path: Path) -> None:
    """4 segments, 2 checkpoints in the changelog, 2 restores: each variant restores the
    committed state through the changelog, and its report has every figure."""
    out = tmp_path / "restore.json"
    proc = subprocess.run([sys.executable, "-m", "monitor", "bench", "--restore",
                           "--segments", "4", "--segment-events", "40", "--repeats", "2",
                           "--snapshots", "2", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert (r["mode"], r["segments"], r["events_per_segment"], r["repeats"],
            r["snapshots"]) == ("restore", 4, 40, 2, 2)
    assert list(r["variants"]) == ["embedding", "mixed_joint", "mixed_per_field"]
    for name, v in r["variants"].items():
        assert v["text_evidence"] == ("per_field" if name == "mixed_per_field" else "joint")
        assert v["segments_live"] == 4
        assert v["snapshot_bytes"] > 0 and v["snapshot_bytes_per_segment"] > 0
        # both checkpoints are read; only the chosen one is decoded (the offset header)
        assert (v["changelog_records"], v["changelog_decodes"]) == (2, 1)
        assert v["changelog_value_bytes"] >= v["snapshot_bytes"]
        assert v["committed_offset"] == 4 * 40 + 256  # the second checkpoint's events
        for key in TIMES:
            assert len(v[key]["runs"]) == 2, key
            assert all(math.isfinite(x) and x >= 0 for x in v[key]["runs"]), key
            assert v[key]["median"] <= v[key]["max"], key
    assert "total restore" in proc.stdout  # the table
