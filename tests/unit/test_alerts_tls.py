"""TLS verification is on by default: a real HTTPS receiver on 127.0.0.1, self-signed.

The certificate (made with the `openssl` command, for IP 127.0.0.1 only) is trusted by
nobody, so a default receiver must refuse to talk to it; `ca_file` trusts it, and
`verify_tls: false` (logged loudly) talks to anything.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.sinks.alerts import AlertsConfig, ReceiverConfig
from monitor.sinks.alerts.delivery import Sender, _tls
from tests.tools import require_tool

DOC = {"id": "n1", "schema": "monitor.alerts/v1", "alerts": []}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = require_tool("openssl", hint="apt-get install -y openssl")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=monitor",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return crt, key


@pytest.fixture
def https(cert: tuple[Path, Path]) -> Iterator[tuple[int, list[bytes]]]:
    """An HTTPS endpoint answering 200; yields its port and the bodies it received."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def send(url: str, **kw: Any) -> tuple[str, str | None]:
    sender = Sender(ReceiverConfig(name="r", url=url, timeout_seconds=5.0, **kw), None,
                    AlertsConfig())
    try:
        out = sender.send(DOC, 0.0)
    finally:
        sender.close()
    return out.result, out.error


def test_default_context_verifies_certificates_and_hostnames() -> None:
    rc = ReceiverConfig(name="r", url="https://example.invalid/")
    assert rc.verify_tls is True
    ctx = _tls(rc)
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname is True


@pytest.mark.timeout(30)
def test_untrusted_certificate_is_refused_by_default(https: tuple[int, list[bytes]]) -> None:
    port, received = https
    result, error = send(f"https://127.0.0.1:{port}/hook")
    assert result == "retry" and error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in error
    assert received == []  # nothing was sent over the unverified connection


@pytest.mark.timeout(30)
def test_ca_file_trusts_it_and_the_hostname_is_still_checked(
    https: tuple[int, list[bytes]], cert: tuple[Path, Path]
) -> None:
    port, received = https
    assert send(f"https://127.0.0.1:{port}/hook", ca_file=str(cert[0]))[0] == "delivered"
    assert len(received) == 1
    result, error = send(f"https://localhost:{port}/hook", ca_file=str(cert[0]))
    assert result == "retry" and error is not None  # the certificate names 127.0.0.1 only
    assert "Hostname mismatch" in error
    assert len(received) == 1


@pytest.mark.timeout(30)
def test_verify_tls_false_turns_it_off_and_says_so(
    https: tuple[int, list[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    port, received = https
    with caplog.at_level(logging.WARNING, logger="monitor.sinks.alerts.delivery"):
        assert send(f"https://127.0.0.1:{port}/hook", verify_tls=False)[0] == "delivered"
    assert len(received) == 1
    assert any("TLS verification is OFF" in r.getMessage() for r in caplog.records)
