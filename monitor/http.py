"""The daemon's HTTP endpoints: /healthz (the loop ran recently), /readyz (assigned and
restored). Routes are a table so /metrics and /status can be added with `route()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

log = logging.getLogger(__name__)

# a handler returns (status, content type, body)
Handler = Callable[[], tuple[int, str, bytes]]


def check(ok: Callable[[], tuple[bool, str]]) -> Handler:
    """A handler answering 200 or 503 with a one-line text reason."""

    def handle() -> tuple[int, str, bytes]:
        good, why = ok()
        return (200 if good else 503), "text/plain; charset=utf-8", (why + "\n").encode()

    return handle


class HttpServer:
    """`ThreadingHTTPServer` in a daemon thread; port 0 picks a free port (see `.port`)."""

    def __init__(self, host: str, port: int) -> None:
        self.routes: dict[str, Handler] = {}
        routes = self.routes

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handler = routes.get(self.path.split("?", 1)[0])
                if handler is None:
                    status, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    try:
                        status, ctype, body = handler()
                    except Exception:
                        log.exception("handler for %s failed", self.path)
                        status, ctype, body = 500, "text/plain", b"internal error\n"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug(format, *args)

        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="http",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def __enter__(self) -> HttpServer:
        self.thread.start()
        log.info("http on %s:%d", self.server.server_address[0], self.port)
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
