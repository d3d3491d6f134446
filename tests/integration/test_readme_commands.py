"""The README's commands run as written on a fresh clone.

Each fenced shell block right after a `<!-- readme-test ... -->` line needs no external
service: it runs here with bash -eu in an empty temporary directory that holds only
`.venv` (a link to the virtualenv running the tests), as a new user runs it from the
clone's root after `make install`. Blocks that need a cluster, Docker, systemd or root are
not marked. `EXPECTED` pins the commands that must stay marked, so removing a marker (or
changing a command) fails here rather than silently testing less.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from daemon_helpers import ROOT

README = (ROOT / "README.md").read_text()
MARKED = re.compile(r"^<!-- readme-test\b[^\n]*-->\n```(?:bash|sh)\n(.*?)^```", re.M | re.S)
EXPECTED = [
    ".venv/bin/monitor demo --write-example example",
    ".venv/bin/monitor replay example/transactions.jsonl --config example/monitor.yaml \\\n"
    "    --reference example/normal.jsonl --out scored.jsonl --report report.json "
    "--rejects rejects.jsonl \\\n    --html report.html",
    ".venv/bin/monitor fit example/normal.jsonl --config example/monitor.yaml --out seed.mon",
]


def marked_blocks(text: str) -> list[str]:
    return MARKED.findall(text)


def test_marker_finds_only_the_block_after_it() -> None:
    text = ("```bash\nnot this\n```\n<!-- readme-test: why -->\n```bash\nthis\nand this\n```\n"
            "<!-- readme-test -->\n```\nnot a shell block\n```\n")
    assert marked_blocks(text) == ["this\nand this\n"]


def test_the_quickstart_commands_are_marked() -> None:
    marked = "".join(marked_blocks(README))
    for command in EXPECTED:
        assert command in marked, f"README.md no longer has this marked command:\n{command}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_marked_readme_commands_run_as_written(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    assert (venv / "bin" / "monitor").exists(), f"no monitor script in {venv}: make install"
    (tmp_path / ".venv").symlink_to(venv, target_is_directory=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    blocks = marked_blocks(README)
    assert blocks
    for block in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, (f"README block failed ({proc.returncode}):\n{block}\n"
                                      f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # what the quickstart's prose says of its outcome
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Top outliers" in page
    assert report["events"] == 1200 and report["rejected"] == 2, report
    assert [600 <= a["index"] < 700 for a in report["alarms"]] == [True], report["alarms"]
    assert report["recall_at_alpha"] == 1.0 and report["auroc"] > 0.95, report
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 2
    assert len((tmp_path / "scored.jsonl").read_text().splitlines()) == 1200
    # a replay from the `monitor fit` seed is the `--reference` replay, event for event
    assert (tmp_path / "seeded.jsonl").read_bytes() == (tmp_path / "scored.jsonl").read_bytes()
