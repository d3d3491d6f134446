"""A webhook receiver for the compose stack: logs every request as one JSON line, answers 200.

Stands in for the fraud team's endpoint and for Alertmanager's webhook receiver, so
`docker compose logs -f webhook-echo` shows what the monitor and Alertmanager send
(payloads and signature headers). Standard library only; binds ECHO_HOST:ECHO_PORT
(default 0.0.0.0:8080). GET /healthz answers 200 for the container health check.
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


class Echo(BaseHTTPRequestHandler):
    server_version = "webhook-echo"

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/healthz" else 404, b'{"ok": true}\n')

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        raw = self.rfile.read(length)
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = {"time": round(time.time(), 3), "method": "POST", "path": self.path,
                  "headers": {k: v for k, v in self.headers.items()
                              if k.lower().startswith(("x-", "content-type", "user-agent"))},
                  "body": body}
        print(json.dumps(record, sort_keys=True), flush=True)
        self._answer(200, b'{"ok": true}\n')

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, file=sys.stderr, flush=True)


def main() -> None:
    host = os.environ.get("ECHO_HOST", "0.0.0.0")
    port = int(os.environ.get("ECHO_PORT", "8080"))
    server = ThreadingHTTPServer((host, port), Echo)
    print(f"webhook-echo listening on {host}:{server.server_address[1]}", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
