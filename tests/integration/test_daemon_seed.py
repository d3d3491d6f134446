"""Reference bootstrap on the real broker (issue 13, must-show 5): a daemon seeded with
`monitor fit` output scores from its first event, and its scores equal `monitor replay
--reference` with the same history on the same stream, event for event; a seed fitted
with other settings stops the daemon at start-up with exit 2 and one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from daemon_helpers import (
    ROOT,
    TABULAR_FIELDS,
    DaemonProcess,
    committed,
    free_port,
    new_topic,
    produce,
    read_all,
    unique,
    wait_until,
    write_config,
)

from monitor.source.embedded import EmbeddedBroker
from monitor.tools.synthetic import generate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FIELDS = {**TABULAR_FIELDS, "segment": "category"}  # five categories, all in the history


def _monitor(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_seeded_daemon_scores_from_the_first_event_as_replay_reference(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group, port = new_topic(bootstrap, 1), unique("g"), free_port()
    history_lines, _ = generate(3_000, seed=21, drift_at=None, fraud_bursts=0, malformed=5)
    lines, _ = generate(1_500, seed=22, drift_at=None, fraud_bursts=0, malformed=5,
                        start_ts=1_767_400_000.0, first_id=100_000)
    history = _write(tmp_path / "history.jsonl", history_lines)
    stream = _write(tmp_path / "stream.jsonl", lines)
    seed = tmp_path / "seed.mon"
    cfg = write_config(tmp_path / "m.yaml", bootstrap, topic, group, http_port=port,
                       checkpoint={"seed_file": str(seed)}, fields=FIELDS)

    fitted = _monitor("fit", str(history), "--config", str(cfg), "--out", str(seed), "--quiet")
    assert fitted.returncode == 0, fitted.stderr
    assert "fitted 3,000 events (5 rejected) into 5 segments (5 with a reference)" \
        in fitted.stdout

    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", port).start()
    try:
        daemon.wait_ready()
        produce(bootstrap, topic, lines)
        wait_until(lambda: committed(bootstrap, group, topic, 1)[0] == len(lines), 90,
                   "the daemon committed the whole stream")
        assert daemon.stop() == 0, daemon.output()
    finally:
        daemon.stop()
    assert "seeding from" in daemon.output()
    records = read_all(bootstrap, f"{topic}.scored", 1)
    scored = sorted((orjson.loads(r.value) for r in records), key=lambda row: row["offset"])

    out = tmp_path / "replay.jsonl"
    replayed = _monitor("replay", str(stream), "--config", str(cfg), "--reference",
                        str(history), "--out", str(out), "--quiet")
    assert replayed.returncode == 0, replayed.stderr
    expected = [orjson.loads(line) for line in out.read_bytes().splitlines()]

    valid = len(lines) - 5
    assert len(scored) == len(expected) == valid  # every decodable event, once
    assert all(row["p_value"] is not None and not row["warming_up"] for row in scored)
    keys = ("id", "segment", "p_value", "score", "outlier", "risk")
    assert [_pick(row, keys) for row in scored] == [_pick(row, keys) for row in expected]


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row[k] for k in keys)


def test_a_mismatched_seed_stops_the_daemon_at_start_up(tmp_path: Path) -> None:
    history, _ = generate(300, seed=23, drift_at=None, fraud_bursts=0, malformed=0)
    seed = tmp_path / "seed.mon"
    cfg = write_config(tmp_path / "fit.yaml", "127.0.0.1:1", "events", "g", fields=FIELDS)
    fitted = _monitor("fit", str(_write(tmp_path / "h.jsonl", history)), "--config", str(cfg),
                      "--out", str(seed), "--quiet")
    assert fitted.returncode == 0, fitted.stderr
    other = write_config(tmp_path / "run.yaml", "127.0.0.1:1", "events", "g",
                         checkpoint={"seed_file": str(seed)}, fields=FIELDS,
                         score={"warmup": 300})
    run = _monitor("run", "--config", str(other), timeout_s=60)
    assert run.returncode == 2
    err = run.stderr.strip()
    assert "\n" not in err and err.startswith("monitor: configuration error: checkpoint.")
    assert "score.warmup: 200 in the file, 300 here" in err
