"""A real Prometheus scrapes a real daemon fed by the embedded broker (observability issue).

After the synthetic stream (with a drift at a known point), every PromQL expression of
every dashboard panel returns a non-empty result through Prometheus's HTTP API, the drift
alert rule fires, and the daemon's own drift alert reaches a real webhook receiver with
its explanation.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts_helpers import Receiver
from daemon_helpers import DaemonProcess, free_port, new_topic, produce, unique, wait_until

from monitor.tools.synthetic import DEMO_CONFIG, generate
from tests.tools import require_tool

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 4_000


def _query(port: int, expr: str) -> list[Any]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _panel_queries() -> Iterator[tuple[str, str, str]]:
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            for target in panel["targets"]:
                expr = (target["expr"].replace("$topic", ".*").replace("$segment", "default")
                        .replace("$__range", "10m"))
                yield path.name, panel["title"], expr


@pytest.fixture
def prometheus() -> Iterator[tuple[Path, int]]:
    binary = require_tool("prometheus", hint="apt-get install -y prometheus; `make test` does")
    yield Path(binary), free_port()


def test_dashboards_and_drift_alert_against_a_real_prometheus(
        broker: Any, prometheus: tuple[Path, int], tmp_path: Path) -> None:
    binary, prom_port = prometheus
    http_port = free_port()
    topic = new_topic(broker.bootstrap, 1)
    group = unique("prom")
    receiver = Receiver().start()
    cfg = {
        **DEMO_CONFIG,
        "kafka": {"bootstrap_servers": broker.bootstrap, "topics": [topic], "group_id": group,
                  "scored_topic": f"{topic}.scored", "dead_letter_topic": f"{topic}.dlq",
                  "session_timeout_ms": 6000, "fetch_max_wait_ms": 50,
                  "max_batch_events": 128, "max_batch_wait_ms": 50, "start_deadline_s": 20},
        "checkpoint": {"every_events": 500, "every_seconds": 2, "state_dir": str(tmp_path / "s")},
        "http": {"port": http_port},
        "drift": {**DEMO_CONFIG["drift"], "hysteresis": 1000},
        "alerts": {"receivers": [{"name": "hook", "url": receiver.url}],
                   "group_wait_seconds": 0.5, "group_interval_seconds": 1},
    }
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(cfg))
    rules = tmp_path / "rules.yml"
    rules.write_text((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "monitor",
                            "static_configs": [{"targets": [f"127.0.0.1:{http_port}"]}]}],
    }))
    prom = subprocess.Popen(
        [str(binary), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))  # noqa: SIM115
    lines, truth = generate(EVENTS, seed=11, drift_at=0.6, malformed=10)
    assert truth.drift_at is not None
    # stop shortly after the drift: with no newer events the segment stays drifting (the
    # hysteresis counts events), so the rule's `for:` can elapse in wall time
    lines = lines[: truth.drift_at + 200]
    produce(broker.bootstrap, topic, lines)
    daemon = DaemonProcess(tmp_path / "monitor.yaml", tmp_path / "daemon.log", http_port).start()
    try:
        daemon.wait_ready(90)
        wait_until(lambda: json.loads(daemon.get("/status")[1] or "{}").get("events", 0)
                   >= len(lines), 180, "the whole stream consumed")
        status = json.loads(daemon.get("/status")[1])
        assert status["alarms"] >= 1 and status["last_alarm"]["index"] >= truth.drift_at
        assert status["ready"].startswith("ready: 1 partition"), status
        assert status["healthy"].startswith("loop alive"), status
        [part] = status["partitions"]
        assert (part["topic"], part["partition"]) == (topic, 0), part
        assert part["segments"] == 1 and part["warming_up"] == 0, part
        assert part["drifting"] == ["default"], part  # still inside the hysteresis
        # rate() windows need a few scrapes after the stream
        wait_until(lambda: _query(prom_port, "up{job='monitor'} == 1"), 30, "a scrape")
        time.sleep(8)
        empty = [(d, t, e) for d, t, e in _panel_queries() if not _query(prom_port, e)]
        assert not empty, f"panels with no data: {empty}"
        firing = wait_until(lambda: _query(
            prom_port, 'ALERTS{alertname="MonitorDriftDetected", alertstate="firing"}'),
            90, "MonitorDriftDetected firing")
        assert firing[0]["metric"]["severity"] == "warning"
        assert receiver.wait_for(1, 30)
        drift = [a for doc in receiver.accepted for a in doc["alerts"] if a["kind"] == "drift"]
        assert drift, receiver.accepted
        details = drift[0]["details"]
        assert details["statistic"] >= details["threshold"] and details["example_ids"]
        assert daemon.stop() == 0
    finally:
        if not daemon.exited():
            daemon.stop()
        prom.terminate()
        prom.wait(10)
        receiver.stop()
