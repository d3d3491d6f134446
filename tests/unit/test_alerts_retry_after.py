"""Retry-After pauses the whole receiver: a real HTTP receiver on 127.0.0.1, a fake clock.

The receiver answers the first request with 429 and a Retry-After, then 200, and notes the
sink's (fake) clock at every request it gets. Three groups are pending at once, so a sink
that only delayed the refused notification would send the other two straight away.
"""

from __future__ import annotations

import json
import logging
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.events import Alert
from monitor.sinks.alerts import AlertsConfig, AlertSink, ReceiverConfig
from tests.fakes import ManualClock

T0 = 1_700_000_000.0


class Busy:
    """Loopback receiver: 429 + `retry_after` once, then 200; records (clock, segment)."""

    def __init__(self, clock: ManualClock, retry_after: str) -> None:
        self.calls: list[tuple[float, str, int]] = []
        busy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 429 if not busy.calls else 200
                busy.calls.append((clock.now, body["group_labels"]["segment"], status))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Busy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("header", "wait"), [("30", 30.0), (formatdate(T0 + 20.0, usegmt=True), 20.0)]
)
def test_no_request_reaches_the_receiver_before_retry_after(
    tmp_path: Path, header: str, wait: float, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(T0)
    with Busy(clock, header) as rx:
        cfg = AlertsConfig(
            receivers=(ReceiverConfig(name="hook", url=rx.url, timeout_seconds=5.0),),
            group_wait_seconds=0.0,
            backoff_initial_seconds=0.5,
            jitter=0.0,
        )
        sink = AlertSink(cfg, tmp_path, clock=clock)
        for segment in ("a", "b", "c"):
            sink.submit(Alert("drift", "firing", {"segment": segment}))
        with caplog.at_level(logging.WARNING, logger="monitor.sinks.alerts.sink"):
            for _ in range(200):  # 100 fake seconds at most
                sink.pump()
                if sink.pending() == 0:
                    break
                clock.now += 0.5
        sink.stop(timeout=1.0)

    first, *rest = rx.calls
    assert first[0] == T0 and first[2] == 429
    assert rest and all(t >= T0 + wait for t, _, _ in rest), rx.calls
    assert rest[0][0] < T0 + wait + 1.0  # and it resumed promptly afterwards
    assert sorted(seg for _, seg, status in rest if status == 200) == ["a", "b", "c"]
    assert sink.counters["hook"].sent == 3 and sink.counters["hook"].retried == 1
    assert any("Retry-After" in r.getMessage() and "hook" in r.getMessage()
               for r in caplog.records)
