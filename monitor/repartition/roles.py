"""`monitor run --role router|scorer|both`: which loops this process runs.

`both` runs the router in a thread beside the scorer's loop: one process for a small
deployment; separate `router` and `scorer` processes scale each on its own (the router
is cheap, the scorer embeds). A failure of either stops both, and the first error is
the process's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Literal

from monitor.app import Daemon
from monitor.config import MonitorConfig
from monitor.errors import ConfigError
from monitor.http import check
from monitor.repartition.wiring import open_router

log = logging.getLogger(__name__)

Role = Literal["router", "scorer", "both"]
ROLES: tuple[Role, ...] = ("router", "scorer", "both")


def check_role(cfg: MonitorConfig, role: str) -> None:
    """Only `both` (today's daemon) makes sense without repartition."""
    if role != "both" and not cfg.kafka.repartition:
        raise ConfigError(f"--role {role} needs kafka.repartition: true")


def run_roles(cfg: MonitorConfig, bootstrap: str | list[str], role: str, stack: ExitStack,
              stop: threading.Event, scorer: Callable[[], Daemon]) -> None:
    """Run `role` until `stop`. `scorer()` builds the scorer (in the calling thread: the
    daemon's HTTP server and consumer live there). In `both` the router reports through
    the scorer's metrics and alert sink, and the scorer's /healthz and /readyz answer
    for both loops."""
    check_role(cfg, role)
    if role == "router":
        open_router(cfg, bootstrap, stack, stop).run()
        return
    if role == "both" and cfg.kafka.repartition:
        daemon = scorer()
        router = open_router(cfg, bootstrap, stack, stop, beside=daemon.observer)
        if daemon.http is not None:
            daemon.http.route("/healthz", check(both(router.healthy, daemon.healthy)))
            daemon.http.route("/readyz", check(both(router.ready, daemon.ready)))
        failed: list[BaseException] = []

        def route() -> None:
            try:
                router.run()
            except BaseException as err:  # surfaced by the main thread
                failed.append(err)
                log.error("router failed: %s", err)
                stop.set()

        thread = threading.Thread(target=route, name="router", daemon=True)
        try:
            thread.start()
            daemon.run()
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(cfg.checkpoint.shutdown_timeout_s)
        if failed:
            raise failed[0]
        return
    scorer().run()


def both(*checks: Callable[[], tuple[bool, str]]) -> Callable[[], tuple[bool, str]]:
    """One probe for two loops: good only when each is, each one's reason said.

    >>> both(lambda: (True, "router ok"), lambda: (False, "restoring"))()
    (False, 'router ok; restoring')
    """
    def judged() -> tuple[bool, str]:
        results = [c() for c in checks]
        return all(ok for ok, _ in results), "; ".join(why for _, why in results)

    return judged
