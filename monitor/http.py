"""The daemon's HTTP endpoints: /healthz (the loop ran recently), /readyz (assigned and
restored). Routes are a table so /metrics and /status can be added with `route()`.

Hardened so that no scraper or probe can stall or kill the daemon:

* a socket timeout (`timeout_s`, 10 s) on each connection's reads and writes frees the
  thread of a client that sends nothing or stops reading, and bounds `__exit__`'s join;
  a whole connection gets at most twice that, so a client that trickles a byte at a time
  (each read on time) is cut off too;
* past `max_connections` (32) busy connections, the accept loop answers 503 and closes
  at once: no queue and no thread, and a probe learns the truth (saturated) quickly;
* a client that goes away (broken pipe, reset, timeout) is its own business: a DEBUG
  record, never a traceback on stderr;
* a bind failure is a one-line `ConfigError` naming the key (CLI: exit 2, no traceback).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from monitor.errors import ConfigError

log = logging.getLogger(__name__)

# a handler returns (status, content type, body)
Handler = Callable[[], tuple[int, str, bytes]]
# the errors that mean "the client went away", not "the daemon is broken"
GONE = (ConnectionError, TimeoutError)
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")


def check(ok: Callable[[], tuple[bool, str]]) -> Handler:
    """A handler answering 200 or 503 with a one-line text reason."""

    def handle() -> tuple[int, str, bytes]:
        good, why = ok()
        return (200 if good else 503), "text/plain; charset=utf-8", (why + "\n").encode()

    return handle


def _cut_off(request: socket.socket, client_address: Any) -> None:
    """The connection outlived its deadline: shut it so its reads and writes fail now."""
    log.debug("client %s over its deadline: cut off", client_address)
    with contextlib.suppress(OSError):  # closed in the meantime
        request.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    """Counts connections with a semaphore and keeps disconnects out of stderr."""

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_connections: int, deadline_s: float) -> None:
        self.slots = threading.BoundedSemaphore(max_connections)
        self.deadline_s = deadline_s
        super().__init__(addr, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()  # the thread never started, so it cannot release
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        cut = threading.Timer(self.deadline_s, _cut_off, (request, client_address))
        cut.daemon = True
        cut.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            cut.cancel()
            self.slots.release()

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        """503 without a thread: a fresh socket's send buffer takes it without blocking."""
        log.debug("refused %s: too many connections", client_address)
        try:
            request.settimeout(0.1)
            request.sendall(BUSY)
            request.setblocking(False)
            request.recv(65536)  # drain what already came, so close sends FIN, not RST
        except OSError:
            pass  # gone already, or nothing to drain
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, GONE):
            log.debug("client %s gone: %r", client_address, err)
        else:
            log.error("request from %s failed", client_address, exc_info=True)


class HttpServer:
    """`ThreadingHTTPServer` in a daemon thread; port 0 picks a free port (see `.port`)."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0,
                 max_connections: int = 32) -> None:
        self.routes: dict[str, Handler] = {}
        routes = self.routes

        class _Handler(BaseHTTPRequestHandler):
            timeout = timeout_s  # StreamRequestHandler.setup sets it on the socket

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
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except GONE as err:
                    log.debug("client %s gone during %s: %r", self.client_address,
                              self.path, err)
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                log.debug(format, *args)

        try:
            self.server = _Server((host, port), _Handler, max_connections, 2 * timeout_s)
        except OSError as err:
            why = (err.strerror or str(err)).lower()
            if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"http.host {host!r} (port {port}): {why}") from err
            raise ConfigError(f"http.port {port} on {host}: {why}") from err
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
