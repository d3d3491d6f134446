"""HttpServer under hostile clients, on real sockets on 127.0.0.1: idle and vanishing
clients do not block /healthz, disconnects stay out of stderr, the connection bound
answers 503 and recovers, a taken port is a one-line ConfigError.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from monitor.errors import ConfigError
from monitor.http import HttpServer, check

pytestmark = pytest.mark.timeout(60)

BIG = b"x" * (5 * 1024 * 1024)
LOGGER = "monitor.http"


def _server(timeout_s: float = 10.0, max_connections: int = 32) -> HttpServer:
    srv = HttpServer("127.0.0.1", 0, timeout_s=timeout_s, max_connections=max_connections)
    srv.route("/healthz", check(lambda: (True, "ok")))
    srv.route("/big", lambda: (200, "application/octet-stream", BIG))
    return srv


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def _healthz(port: int) -> tuple[int, float]:
    """Status and seconds taken, on a fresh connection."""
    t0 = time.monotonic()
    r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5, trust_env=False)
    return r.status_code, time.monotonic() - t0


def _vanish(port: int) -> None:
    """Ask for the 5 MB route and hang up before reading a byte of it."""
    with _connect(port) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")


def _gone_records(caplog: pytest.LogCaptureFixture, what: str, wait_s: float = 5.0) -> list[
        logging.LogRecord]:
    """The DEBUG records of monitor.http mentioning `what`; waits (bounded) for one."""
    deadline = time.monotonic() + wait_s
    while True:
        found = [r for r in caplog.records if r.name == LOGGER
                 and r.levelno == logging.DEBUG and what in r.getMessage()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    yield caplog


def test_slow_and_vanishing_clients_do_not_delay_healthz(
        debug_log: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    with _server(timeout_s=5) as srv:
        idle = [_connect(srv.port) for _ in range(6)]  # connect, send nothing
        stalled = [_connect(srv.port) for _ in range(2)]  # ask for 5 MB, never read
        for s in stalled:
            s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            for _ in range(4):
                _vanish(srv.port)
                status, took = _healthz(srv.port)
                assert status == 200 and took < 1.0, took
        finally:
            for s in idle + stalled:
                s.close()
        assert _gone_records(debug_log, "gone")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def test_a_vanished_client_is_a_debug_record_not_a_traceback(
        debug_log: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    with _server(timeout_s=2) as srv:
        for _ in range(3):
            _vanish(srv.port)
        records = _gone_records(debug_log, "gone during /big")
        assert records, [r.getMessage() for r in debug_log.records]
        assert any(e in records[0].getMessage()
                   for e in ("BrokenPipeError", "ConnectionResetError"))
        assert _healthz(srv.port)[0] == 200  # and the server carries on
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "BrokenPipe" not in out + err, err
    assert not [r for r in debug_log.records if r.levelno >= logging.WARNING]


def test_a_client_that_stops_reading_is_cut_off_by_the_write_timeout(
        debug_log: pytest.LogCaptureFixture) -> None:
    with _server(timeout_s=0.5) as srv, _connect(srv.port) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        records = _gone_records(debug_log, "TimeoutError")
        assert records and "/big" in records[0].getMessage()


def test_past_max_connections_a_quick_503_then_recovery_after_timeout(
        debug_log: pytest.LogCaptureFixture) -> None:
    with _server(timeout_s=0.5, max_connections=3) as srv:
        idle = [_connect(srv.port) for _ in range(3)]
        extra = [_connect(srv.port) for _ in range(2)]
        try:
            for s in extra:  # refused at once, well before the idle ones time out
                t0 = time.monotonic()
                assert s.recv(4096).startswith(b"HTTP/1.0 503 "), "no 503"
                assert time.monotonic() - t0 < 1.0
            for s in idle:  # the server closes an idle connection after timeout_s
                t0 = time.monotonic()
                assert s.recv(4096) == b""
                assert time.monotonic() - t0 < 2.0
        finally:
            for s in idle + extra:
                s.close()
        assert _gone_records(debug_log, "refused")
        deadline = time.monotonic() + 3  # slots are released just after the close
        while (status := _healthz(srv.port))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status[0] == 200 and status[1] < 1.0
        for _ in range(5):  # every slot came back: sequential requests all succeed
            assert _healthz(srv.port)[0] == 200


def test_a_taken_port_is_a_one_line_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as info:
            HttpServer("127.0.0.1", port)
    msg = str(info.value)
    assert "http.port" in msg and str(port) in msg and "127.0.0.1" in msg
    assert "already in use" in msg and "\n" not in msg


def test_the_old_two_argument_constructor_still_works() -> None:
    srv = HttpServer("127.0.0.1", 0)
    srv.route("/healthz", check(lambda: (True, "ok")))
    with srv:
        assert _healthz(srv.port)[0] == 200


def test_a_client_trickling_its_request_is_cut_off_at_the_connection_deadline(
        debug_log: pytest.LogCaptureFixture) -> None:
    """Each read is on time (a byte every 0.3 s against a 0.5 s socket timeout), so only
    the whole-connection deadline (twice the timeout) ends it (found in review)."""
    with _server(timeout_s=0.5) as srv, _connect(srv.port) as s:
        t0 = time.monotonic()
        closed_at = None
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40:  # bounded: 60 bytes
            try:
                s.sendall(bytes([byte]))
                s.setblocking(False)
                if s.recv(4096) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except BlockingIOError:
                pass  # nothing to read yet: still open
            except OSError:
                closed_at = time.monotonic() - t0
                break
            finally:
                s.setblocking(True)
            time.sleep(0.3)
        assert closed_at is not None and closed_at < 3.0, closed_at
        assert _gone_records(debug_log, "deadline")
