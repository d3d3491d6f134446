"""Signals, in a real child process: the first asks for a clean stop, a second exits at
once, and a stop that overruns the shutdown timeout is cut short."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# a "daemon" whose shutdown never finishes: it sees `stop` but keeps working
CHILD = """
import sys, threading, time
from monitor.lifecycle import install_signals
stop = threading.Event()
install_signals(stop, float(sys.argv[1]))
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if stop.is_set():
        print("stopping", flush=True)
    time.sleep(0.05)
"""


def _start(timeout_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(timeout_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.timeout(60)
def test_second_signal_exits_at_once() -> None:
    proc = _start(timeout_s=30)
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "stopping"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=10)
    assert code == 128 + signal.SIGINT, proc.stderr.read() if proc.stderr else code
    assert time.monotonic() - start < 5
    assert proc.stderr is not None and "second signal" in proc.stderr.read()


@pytest.mark.timeout(60)
def test_a_shutdown_that_overruns_its_timeout_is_cut_short() -> None:
    proc = _start(timeout_s=1.0)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    assert code == 3
    assert 0.9 <= time.monotonic() - start < 15
    assert proc.stderr is not None and "shutdown took over 1s" in proc.stderr.read()
