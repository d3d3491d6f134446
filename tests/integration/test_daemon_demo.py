"""`monitor demo` end to end (real model, embedded broker), and `monitor run` against a
broker that is not there (clear message, retries, non-zero exit after the deadline)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemon_helpers import ROOT, free_port, write_config

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(400)
def test_demo_reports_the_injected_drift() -> None:
    proc = subprocess.run([sys.executable, "-m", "monitor", "demo", "--events", "5000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "injected drift at event 3,000: DETECTED" in out, out + proc.stderr[-2000:]
    assert "dead-lettered 10 of 10 malformed" in out, out
    assert out.count("injected fraud burst") == 3, out


@pytest.mark.timeout(60)
def test_unreachable_broker_exits_nonzero_after_deadline(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    cfg = write_config(tmp_path / "m.yaml", bootstrap, "events", "g", http_port=free_port(),
                       kafka={"start_deadline_s": 3, "start_backoff_max_s": 1})
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
                          cwd=ROOT, capture_output=True, text=True, timeout=45)
    assert proc.returncode != 0
    assert "cannot reach the Kafka broker" in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - start < 40


@pytest.mark.timeout(60)
def test_sigterm_while_waiting_for_the_broker_exits_promptly(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path / "m.yaml", bootstrap, "events", "g", http_port=free_port(),
                       kafka={"start_deadline_s": 60, "start_backoff_max_s": 2})
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    # Signal only once the daemon is in its retry loop (start-up imports take seconds on a
    # loaded CI machine; a signal before the handler is installed would just kill it).
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 40
    while not any("broker unreachable" in line for line in list(lines)):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.1)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    reader.join(timeout=5)
    err = "".join(lines)
    assert proc.returncode == 1, err
    assert "stopped while waiting for the Kafka broker" in err
    assert time.monotonic() - start < 5
