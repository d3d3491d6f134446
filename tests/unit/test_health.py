"""/healthz and /readyz decisions of the daemon, on an injected clock (no broker needed)."""

from __future__ import annotations

from typing import Any

from monitor.app import Daemon
from monitor.config import parse_config
from monitor.pipeline import Pipeline
from tests.fakes import ManualClock

CFG = parse_config({"fields": {"numeric": [{"name": "amount"}]},
                    "http": {"stale_after_s": 30},
                    "kafka": {"restore_timeout_s": 120}})


def _daemon(clock: ManualClock) -> Daemon:
    """Health and readiness read only the daemon's own state: the clients stay unused."""
    unused: Any = None
    return Daemon(CFG, consumer=unused, topics=unused, changelog=unused, checkpointer=unused,
                  observer=unused, pipelines=lambda: Pipeline.build(CFG), clock=clock)


def test_loop_stall_turns_unhealthy() -> None:
    clock = ManualClock(1_000.0)
    d = _daemon(clock)
    assert d.healthy()[0]
    clock.now += 31
    ok, why = d.healthy()
    assert not ok and "stalled" in why


def test_a_long_restore_is_healthy_until_its_own_deadline() -> None:
    clock = ManualClock(1_000.0)
    d = _daemon(clock)
    d.restoring_since = clock.now  # what _restore_pending sets around restore_partitions
    clock.now += 90  # beyond stale_after_s: a liveness probe must not kill a restore
    ok, why = d.healthy()
    assert ok and "restoring" in why
    clock.now += 61  # beyond restore_timeout_s + stale_after_s: stuck
    assert not d.healthy()[0]


def test_not_ready_until_assigned() -> None:
    d = _daemon(ManualClock(1_000.0))
    ok, why = d.ready()
    assert not ok and "not assigned" in why
