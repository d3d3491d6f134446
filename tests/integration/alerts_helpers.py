"""Real HTTP receivers on 127.0.0.1 for the alerts integration tests.

A `Receiver` runs `http.server` in a thread on a free loopback port. It can refuse
connections (not started yet), answer 503 until a deadline, verify HMAC signatures, and
records every accepted notification, so tests can check exactly-once and order.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.sinks.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A webhook endpoint; `down_until` is a `time.monotonic()` deadline for 503s."""

    def __init__(self, port: int | None = None, secret: bytes | None = None) -> None:
        self.port = port or free_port()
        self.secret = secret
        self.down_until = 0.0
        self.lock = threading.Lock()
        self.accepted: list[dict[str, Any]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        self.rejected_signatures = 0
        self.unavailable = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if time.monotonic() < receiver.down_until:
                    with receiver.lock:
                        receiver.unavailable += 1
                    self._answer(503, {"Retry-After": "1"})
                    return
                headers = {k: v for k, v in self.headers.items()}
                if receiver.secret is not None and not verify(
                    receiver.secret,
                    body,
                    self.headers.get(TIMESTAMP_HEADER),
                    self.headers.get(SIGNATURE_HEADER),
                ):
                    with receiver.lock:
                        receiver.rejected_signatures += 1
                    self._answer(401)
                    return
                with receiver.lock:
                    receiver.raw.append((headers, body))
                    receiver.accepted.append(json.loads(body))
                self._answer(200)

        return Handler

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def wait_for(self, n: int, timeout: float) -> bool:
        """Bounded wait until `n` notifications were accepted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.accepted) >= n:
                    return True
            time.sleep(0.05)
        return False
