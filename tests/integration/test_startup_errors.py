"""Start-up mistakes end in one line naming the key or resource, and exit code 2
(issue 15, must-show 3): a taken HTTP port, an unusable `checkpoint.state_dir`, a
malformed `kafka.bootstrap_servers`. Each in a real child process, with no broker: the
local checks come before any connection attempt."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.daemon_helpers import ROOT, free_port, write_config


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mistake", ["port", "state_dir", "bootstrap"])
def test_a_start_up_mistake_is_one_line_and_exit_code_2(tmp_path: Path, mistake: str) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there: never reached
    port, state_dir = free_port(), tmp_path / "state"
    with socket.socket() as taken:
        if mistake == "port":
            taken.bind(("127.0.0.1", port))
            taken.listen()
        elif mistake == "state_dir":
            state_dir = tmp_path / "a-file"
            state_dir.write_text("not a directory")
        else:
            bootstrap = "127.0.0.1:notaport"
        cfg = write_config(tmp_path / "m.yaml", bootstrap, "events", "g", http_port=port,
                           state_dir=state_dir, kafka={"start_deadline_s": 30})
        proc = subprocess.run([sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
                              cwd=ROOT, capture_output=True, text=True, timeout=80)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    expected = {"port": f"http.port {port}", "state_dir": "checkpoint.state_dir",
                "bootstrap": "kafka.bootstrap_servers"}[mistake]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("monitor: configuration error"), lines
    assert expected in lines[0], lines
