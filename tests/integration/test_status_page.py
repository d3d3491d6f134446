"""The daemon's HTML status page (`GET /`) on a real daemon fed by the embedded broker.

Every event carries a card number; only `merchant` is in `alerts.allow_fields`. After the
stream (drifting at 60 %), the page shows partitions with their lag, segments with drift
state and outlier rate, the alarms and the newest outliers with their merchant, links to
the other endpoints, and no card number anywhere. It accepts nothing but GET.
"""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from daemon_helpers import (
    TABULAR_FIELDS,
    DaemonProcess,
    free_port,
    new_topic,
    produce,
    stream,
    unique,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
EVENTS = 3_000


def _fetch(port: int, path: str = "/") -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.headers["Content-Type"], r.read().decode()


def _outlier_rows(page: str) -> list[list[str]]:
    table = re.search(r'<table class="outliers">.*?<tbody>(.*?)</tbody>', page, re.S)
    if table is None:
        return []
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]


def test_status_page_shows_the_state_and_no_field_outside_the_allow_list(
        broker: Any, tmp_path: Path) -> None:
    lines, merchants = [], {}
    for i, line in enumerate(stream(EVENTS, 0, seed=5)):
        row = orjson.loads(line)
        row["card_number"] = f"CARDSECRET-{i:06d}"
        merchants[row["id"]] = row["merchant"]
        lines.append(orjson.dumps(row))
    topic = new_topic(broker.bootstrap, 1)
    port = free_port()
    cfg = write_config(tmp_path / "monitor.yaml", broker.bootstrap, topic, unique("page"),
                       http_port=port, state_dir=tmp_path / "state",
                       fields={**TABULAR_FIELDS, "segment": "country"},
                       alerts={"allow_fields": ["merchant"]})
    produce(broker.bootstrap, topic, lines)
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", port).start()
    try:
        daemon.wait_ready(60)
        wait_until(lambda: json.loads(daemon.get("/status")[1] or "{}").get("events", 0)
                   >= EVENTS, 120, "the whole stream consumed")
        status = json.loads(daemon.get("/status")[1])
        assert status["outliers"] >= 1, status
        code, ctype, page = _fetch(port)
        assert (code, ctype) == (200, "text/html; charset=utf-8")
        assert _fetch(port, "/?refresh=1")[2].startswith("<!DOCTYPE html>")

        assert '<meta http-equiv="refresh" content="5">' in page
        for section in ("health", "partitions", "segments", "alarms", "outliers"):
            assert f'<section id="{section}">' in page, section
        for link in ("metrics", "status", "healthz"):
            assert f'href="{link}"' in page
            assert _fetch(port, "/" + link)[0] == 200
        assert html.escape(status["ready"]) in page
        # partitions with their lag (nothing left to read)
        assert re.search(rf"<td>{re.escape(topic)}</td><td class=\"n\">0</td>"
                         r"<td class=\"n\">0</td>", page), page
        # segments: GB carries the stream, the rarer countries are still warming up
        assert re.search(r"<td>GB</td><td>(<span class=\"drifting\">)?(stable|drifting)", page)
        assert "<td>warming up</td>" in page  # a segment row's state (not the header)
        if status["alarms"]:
            table = page.split('<table class="alarms">', 1)[1].split("</table>", 1)[0]
            assert f'<td>{html.escape(str(status["last_alarm"]["segment"]))}</td>' in table
        else:
            assert "no drift alarm since start" in page
        # outliers: ids and scores, the allow-listed merchant, never the card number
        rows = _outlier_rows(page)
        assert 0 < len(rows) <= 20, page
        for row in rows:
            event_id, fields = html.unescape(row[2]), html.unescape(row[-1])
            assert event_id in merchants, row
            assert fields == f"merchant: {merchants[event_id]}", row
            assert float(row[4]) <= 0.001  # the p-value of an outlier (alpha)
        assert "CARDSECRET" not in page and "card_number" not in page

        # read-only: no form, and nothing but GET is accepted
        assert "<form" not in page.lower() and "<script" not in page.lower()
        for method in ("POST", "PUT", "DELETE"):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"x=1",
                                         method=method)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 501, method
        assert daemon.stop() == 0
    finally:
        if not daemon.exited():
            daemon.stop()
