"""HttpServer on 127.0.0.1:0 with real requests: routes, 404, 500, the `check` helper."""

from __future__ import annotations

import httpx
import pytest

from monitor.http import HttpServer, check


def _boom() -> tuple[int, str, bytes]:
    raise RuntimeError("handler bug")


def test_routes_404_500_and_check() -> None:
    state = {"ok": True}
    with HttpServer("127.0.0.1", 0) as srv:
        assert srv.port > 0
        srv.route("/hello", lambda: (200, "application/json", b'{"a": 1}'))
        srv.route("/readyz", check(lambda: (state["ok"], "ready" if state["ok"]
                                            else "partitions not restored")))
        srv.route("/boom", _boom)
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", timeout=5,
                          trust_env=False) as client:
            r = client.get("/hello")
            assert r.status_code == 200 and r.json() == {"a": 1}
            assert r.headers["content-type"] == "application/json"
            assert r.headers["content-length"] == "8"
            assert client.get("/hello?verbose=1").status_code == 200  # query ignored
            r = client.get("/nope")
            assert r.status_code == 404 and r.text == "not found\n"
            assert client.get("/hello/").status_code == 404  # exact paths only
            r = client.get("/readyz")
            assert (r.status_code, r.text) == (200, "ready\n")
            assert r.headers["content-type"].startswith("text/plain")
            state["ok"] = False
            r = client.get("/readyz")
            assert (r.status_code, r.text) == (503, "partitions not restored\n")
            r = client.get("/boom")
            assert (r.status_code, r.text) == (500, "internal error\n")
            # the server survives a failing handler
            assert client.get("/hello").status_code == 200


def test_a_route_added_before_start_is_served() -> None:
    srv = HttpServer("127.0.0.1", 0)
    srv.route("/healthz", check(lambda: (True, "ok")))
    with srv, httpx.Client(timeout=5, trust_env=False) as client:
        assert client.get(f"http://127.0.0.1:{srv.port}/healthz").text == "ok\n"


def test_check_handler_without_a_server() -> None:
    assert check(lambda: (True, "fine"))() == (200, "text/plain; charset=utf-8", b"fine\n")
    assert check(lambda: (False, "stale"))()[:1] == (503,)


def test_exit_stops_serving_and_frees_the_port() -> None:
    with HttpServer("127.0.0.1", 0) as srv:
        srv.route("/healthz", check(lambda: (True, "ok")))
        port = srv.port
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5,
                         trust_env=False).status_code == 200
    srv.thread.join(timeout=5)
    assert not srv.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, trust_env=False)
