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

from monitor.config import MonitorConfig
from monitor.errors import ConfigError
from monitor.repartition.wiring import open_router

log = logging.getLogger(__name__)

Role = Literal["router", "scorer", "both"]
ROLES: tuple[Role, ...] = ("router", "scorer", "both")


def check_role(cfg: MonitorConfig, role: str) -> None:
    """Only `both` (today's daemon) makes sense without repartition."""
    if role != "both" and not cfg.kafka.repartition:
        raise ConfigError(f"--role {role} needs kafka.repartition: true")


def run_roles(cfg: MonitorConfig, bootstrap: str | list[str], role: str, stack: ExitStack,
              stop: threading.Event, scorer: Callable[[], Callable[[], None]]) -> None:
    """Run `role` until `stop`. `scorer()` builds the scorer and returns its `run`
    (built in the calling thread: the daemon's HTTP server and consumer live there)."""
    check_role(cfg, role)
    if role == "router" or (role == "both" and cfg.kafka.repartition):
        router = open_router(cfg, bootstrap, stack, stop)
        if role == "router":
            router.run()
            return
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
            run = scorer()
            thread.start()
            run()
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(cfg.checkpoint.shutdown_timeout_s)
        if failed:
            raise failed[0]
        return
    scorer()()
