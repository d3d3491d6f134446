"""`monitor demo` end to end (real model, embedded broker): a summary that says what was
caught and missed, and an output free of library noise; and `monitor run` against a
broker that is not there (clear message, retries, non-zero exit after the deadline)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemon_helpers import ROOT, free_port, write_config

from monitor.events import DriftAlarm
from monitor.tools.demo import summary_lines
from monitor.tools.stats import Stats
from monitor.tools.synthetic import Truth

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(400)
def test_demo_reports_the_injected_drift() -> None:
    proc = subprocess.run([sys.executable, "-m", "monitor", "demo", "--events", "5000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, everything = proc.stdout, proc.stdout + proc.stderr
    assert re.search(r"^drift: +injected at event 3,000, alarm at event 3,\d{3} ", out, re.M), \
        out + proc.stderr[-2000:]
    assert re.search(r"^fraud bursts: +3 of 3 flagged \(24 of 24 events\)$", out, re.M), out
    assert re.search(r"^malformed lines: +10 of 10 dead-lettered$", out, re.M), out
    assert re.search(r"^missed: +nothing$", out, re.M), out
    # nothing a new user would read as a failure
    for noise in ("blocking the event loop", "Traceback", "Loading weights", " ERROR "):
        assert noise not in everything, everything[-4000:]


def test_summary_names_what_was_missed() -> None:
    truth = Truth(events=5000, drift_at=3000, fraud_bursts=[(3419, 3426), (4759, 4766)],
                  malformed=[10, 20, 30])
    stats = Stats(events=5003, scored=4400, outliers=9, dead_letters=2)
    stats.outlier_ids.extend(f"tx-{i:07d}" for i in range(3419, 3427))
    stats.outlier_ids.extend(f"tx-{i:07d}" for i in range(4759, 4762))
    stats.alarms.append(DriftAlarm(index=1500, segment="default", statistic=2e6,
                                   threshold=1e6, detector="sr"))
    lines, detected = summary_lines(stats, truth, elapsed=5.0)
    text = "\n".join(lines)
    assert not detected
    assert "fraud bursts:    2 of 2 flagged (11 of 16 events)" in text, text
    assert "  at events 4,759-4,766: 3 of 8 flagged" in text, text
    assert "drift:           injected at event 3,000, no alarm" in text, text
    assert "false alarms:    1 drift alarm before the drift, first at event 1,500" in text, text
    assert "malformed lines: 2 of 3 dead-lettered" in text, text
    assert lines[-1] == ("missed:          5 of 8 fraud events at 4,759-4,766; the drift at "
                         "event 3,000; 1 of 3 malformed lines"), text


def test_summary_leaves_out_what_the_daemon_had_not_reached() -> None:
    truth = Truth(events=20_000, drift_at=12_000, fraud_bursts=[(13_000, 13_007)],
                  malformed=[500, 15_000])
    lines, _ = summary_lines(Stats(events=4000, scored=3500, dead_letters=1), truth, 2.0)
    assert not any(line.startswith(("fraud", "drift")) for line in lines), lines
    assert "malformed lines: 1 of 1 dead-lettered" in lines
    assert lines[-1] == "missed:          nothing"


KAFKA_NOISE = ("import logging, sys\n"
               "from monitor.cli import main\n"
               "main(sys.argv[1:])\n"
               "log = logging.getLogger('kafka.net.selector')\n"
               "log.warning('Task <t> ran for 0.277s (>0.100s threshold). It is blocking the "
               "event loop -- likely a tight sync loop')\n"
               "log.warning('Task <t> left RUNNING after step')\n")


@pytest.mark.parametrize("verbose", [[], ["-vv"]])
def test_demo_logging_drops_kafka_slow_task_warnings(tmp_path: Path, verbose: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", KAFKA_NOISE, *verbose, "demo",
                           "--write-example", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "left RUNNING after step" in proc.stderr  # other kafka warnings still show
    assert ("blocking the event loop" in proc.stderr) == bool(verbose), proc.stderr


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
