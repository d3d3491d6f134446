"""The `--html` report of a labelled replay, rendered in headless Chromium: it draws, every
section is there, the page logs nothing to the console and requests nothing.

Requests are read off Chromium's net log: the page's own requests are the URL requests
made for the `file://` site (Chromium's background requests carry no site or their own).
A control page with one external image and one console error proves both checks see what
they look for.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.report import ReplayCollector, write_html
from monitor.tools.replay import replay
from monitor.tools.synthetic import DEMO_CONFIG, generate
from tests.fakes import HashingTextModel
from tests.tools import require_tool

HEADINGS = ("Summary", "Outliers", "Segments", "Top outliers", "Drift alarms", "Embedding map",
            "Labels")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    return require_tool("chromium", hint="apt-get install -y chromium; `make test` does")


def _run(binary: str, tmp: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{name}"
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def _page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked the network for (site `file://`)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params: dict[str, Any] = event.get("params") or {}
        site = f"{params.get('site_for_cookies', '')} {params.get('network_isolation_key', '')}"
        if event["type"] == start and "file://" in site:
            urls.append(str(params.get("url")))
    return urls


def _load(binary: str, tmp: Path, page: Path) -> tuple[str, list[str], list[str]]:
    """(DOM, console lines, URLs requested by the page) of one headless load."""
    net = tmp / f"{page.stem}-net.json"
    run = _run(binary, tmp, page.stem, "--enable-logging=stderr", "--v=0",
               f"--log-net-log={net}", "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return run.stdout, console, _page_requests(net)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _chromium()  # skip (or fail under `make test`) before replaying anything
    tmp = tmp_path_factory.mktemp("report")
    lines, _ = generate(3_000, seed=7)
    stream = tmp / "stream.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n")
    cfg = parse_config({**DEMO_CONFIG, "alerts": {"allow_fields": ["category"]}})
    pipeline = Pipeline.build(cfg, HashingTextModel())
    collector = ReplayCollector(pipeline)
    report = replay(cfg, str(stream), pipeline, progress=False, collector=collector)
    assert "auroc" in report and report["alarms"]
    out = tmp / "report.html"
    write_html(out, report, collector, cfg, stream=str(stream))
    return out


def test_the_page_renders_to_a_screenshot(report_page: Path, tmp_path: Path) -> None:
    binary = _chromium()
    png = tmp_path / "report.png"
    run = _run(binary, tmp_path, "shot", f"--screenshot={png}", "--window-size=1400,4000",
               report_page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_every_section_no_console_message_no_request(report_page: Path, tmp_path: Path) -> None:
    binary = _chromium()
    with socket.socket() as s:  # a closed local port: the control's request fails fast
        s.bind(("127.0.0.1", 0))
        pixel = f"http://127.0.0.1:{s.getsockname()[1]}/pixel.png"
    control = tmp_path / "control.html"
    control.write_text(f'<!DOCTYPE html><html><body><h2>control</h2><img src="{pixel}">'
                       '<script>console.error("control error")</script></body></html>')
    _, console, requests = _load(binary, tmp_path, control)
    assert any("control error" in line for line in console), console
    assert requests == [pixel], requests

    dom, console, requests = _load(binary, tmp_path, report_page)
    assert console == [] and requests == []
    headings = re.findall(r"<h2>([^<]+)</h2>", dom)
    assert list(HEADINGS) == headings, headings
    assert dom.count("<svg") >= 6
    static = report_page.read_text()
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", static, re.I)
