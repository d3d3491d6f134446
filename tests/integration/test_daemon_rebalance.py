"""Scale-out: two daemons in one group split a 4-partition topic; when one stops, the other
takes over its partitions with their state restored from the changelog (no cold start)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from daemon_helpers import (
    DaemonProcess,
    committed,
    free_port,
    local_snapshot,
    new_topic,
    produce,
    stream,
    unique,
    wait_until,
    write_config,
)

from monitor.source.embedded import EmbeddedBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PARTS = 4


def _assigned(d: DaemonProcess) -> int:
    status, text = d.get("/readyz")
    m = re.search(r"ready: (\d+) partition", text)
    return int(m.group(1)) if status == 200 and m else -1


def _valid(lines: list[bytes]) -> int:
    return sum(line.startswith(b'{"id":"tx-') for line in lines)


def test_two_daemons_split_then_take_over_from_changelog(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    topic, group = new_topic(bootstrap, PARTS), unique("g")
    daemons = []
    for name in ("a", "b"):
        port = free_port()
        cfg = write_config(tmp_path / f"{name}.yaml", bootstrap, topic, group, http_port=port,
                           state_dir=tmp_path / f"state-{name}", kafka={"client_id": name})
        daemons.append(DaemonProcess(cfg, tmp_path / f"{name}.log", port))
    a, b = daemons
    try:
        a.start().wait_ready()
        b.start().wait_ready()
        wait_until(lambda: _assigned(a) == 2 and _assigned(b) == 2, 60,
                   "two daemons with two partitions each")
        lines = stream(2400, 8)
        first = produce(bootstrap, topic, lines[:1600], PARTS)
        wait_until(lambda: committed(bootstrap, group, topic, PARTS)
                   == {p: len(first[p]) for p in range(PARTS)}, 90, "phase 1 committed")
        owned_a = {p for p in range(PARTS) if (tmp_path / f"state-a/{topic}-{p}.snap").exists()}
        owned_b = {p for p in range(PARTS) if (tmp_path / f"state-b/{topic}-{p}.snap").exists()}
        assert len(owned_a) == len(owned_b) == 2 and not owned_a & owned_b, (owned_a, owned_b)
        # a held all four partitions until b joined: the revoked ones' series are gone
        series = set(re.findall(rf'monitor_active_segments{{partition="(\d)",topic="{topic}"}}',
                                a.get("/metrics")[1]))
        assert series == {str(p) for p in owned_a}, (series, owned_a)

        assert b.stop() == 0, b.output()
        wait_until(lambda: _assigned(a) == PARTS, 60, "a takes over all partitions")
        second = produce(bootstrap, topic, lines[1600:], PARTS, start=1600)
        wait_until(lambda: committed(bootstrap, group, topic, PARTS)
                   == {p: len(first[p]) + len(second[p]) for p in range(PARTS)}, 90,
                   "phase 2 committed")
        assert a.stop() == 0, a.output()
    finally:
        for d in daemons:
            if d.proc is not None:
                d.stop()

    log_a = a.output()
    for p in owned_b:
        assert re.search(rf"{topic}:{p} restored at offset {len(first[p])} \(changelog\)",
                         log_a), log_a[-3000:]
        snap = local_snapshot(tmp_path / "state-a", topic, p)
        assert snap.offset == len(first[p]) + len(second[p])
        # not a cold start: the state counts phase-1 events that a never processed itself
        engine = snap.state["engine"]
        assert engine["index"] == _valid(first[p]) + _valid(second[p])
        assert sum(s["seen"] for s in engine["segments"].values()) > _valid(second[p])
