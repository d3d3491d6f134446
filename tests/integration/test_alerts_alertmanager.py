"""Must-show 5: a real Alertmanager takes a drift alert, shows it, and shows it resolved.

Alertmanager (Debian package ``prometheus-alertmanager``) runs on a free loopback port
with a temporary storage dir, clustering off, and a webhook receiver (``send_resolved``)
pointing back at a loopback `Receiver`, so its own notifications prove what it believes.
Its API lists only unresolved alerts: "resolved" there means gone from
``GET /api/v2/alerts`` plus a ``"status": "resolved"`` notification from Alertmanager.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerts_helpers import Receiver, free_port

from monitor.events import DriftAlarm
from monitor.sinks.alerts import AlertsConfig, AlertSink, ReceiverConfig
from monitor.sinks.alerts.explain import drift_alert, drift_resolved
from tests.tools import require_tool

AM_CONFIG = """
route:
  receiver: echo
  group_by: [alertname, segment]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: echo
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    binary = require_tool("prometheus-alertmanager", "alertmanager",
                          hint="apt-get install -y prometheus-alertmanager; `make test` does")
    echo = Receiver().start()
    config = tmp_path / "alertmanager.yml"
    config.write_text(AM_CONFIG.format(url=echo.url))
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(
                f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}"
            )
        try:
            return httpx.get(f"{base}/-/ready", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 20.0, "alertmanager /-/ready")
        yield base, echo
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        echo.stop()


@pytest.mark.timeout(90)
def test_drift_alert_fires_and_resolves_in_alertmanager(
    alertmanager: tuple[str, Receiver], tmp_path: Path
) -> None:
    base, echo = alertmanager
    cfg = AlertsConfig(
        receivers=(
            ReceiverConfig(
                name="am", type="alertmanager", url=f"{base}/api/v2/alerts", kinds=("drift",)
            ),
        ),
        group_wait_seconds=0.0,
        poll_interval_seconds=0.05,
    )
    sink = AlertSink(cfg, tmp_path / "state")
    alarm = DriftAlarm(index=5000, segment="groceries", statistic=2.4e5, threshold=1e5,
                       detector="shiryaev_roberts", grown=(3, 7), shrunk=(1,),
                       examples=("tx-4998", "tx-4999"))
    firing = drift_alert("payments", alarm, time.time())  # the observer's own builders
    labels = firing.labels
    query = {"filter": 'alertname="MonitorDrift"'}

    def listed() -> list[dict[str, Any]]:
        answer = httpx.get(f"{base}/api/v2/alerts", params=query, timeout=5.0)
        answer.raise_for_status()
        return list(answer.json())

    try:
        sink.submit(firing)
        assert sink.flush(timeout=10.0)
        [shown] = wait_until(listed, 10.0, "the drift alert in GET /api/v2/alerts")
        assert shown["status"]["state"] == "active"
        assert shown["labels"] == {**labels, "alertname": "MonitorDrift", "kind": "drift"}
        assert shown["annotations"]["summary"] == "drift in payments segment groceries"
        assert "2.4e+05 >= 1e+05" in shown["annotations"]["description"]
        assert '"grown_clusters":[3,7]' in shown["annotations"]["details"]
        assert '"example_ids":["tx-4998","tx-4999"]' in shown["annotations"]["details"]

        def am_said(status: str) -> list[dict[str, Any]]:
            return [d for d in echo.accepted if d.get("status") == status]

        wait_until(lambda: am_said("firing"), 15.0, "Alertmanager's firing notification")

        time.sleep(1.0)  # the drift ends a moment later
        sink.submit(drift_resolved("payments", "groceries", time.time()))
        assert sink.flush(timeout=10.0)
        wait_until(lambda: listed() == [], 10.0, "the alert to leave the active list")
        [resolved] = wait_until(
            lambda: am_said("resolved"), 15.0, "Alertmanager's resolved notification"
        )
        [alert] = resolved["alerts"]
        assert alert["status"] == "resolved" and alert["labels"]["segment"] == "groceries"
        assert sink.counters["am"].sent == 2 and sink.counters["am"].failed == 0
    finally:
        sink.stop(timeout=2.0)
