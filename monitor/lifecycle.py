"""Process lifecycle: signals set a flag; a second signal, or a shutdown that overruns its
timeout, exits at once (offsets stay uncommitted, so the events are replayed, not lost)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

log = logging.getLogger(__name__)


def install_signals(stop: threading.Event, shutdown_timeout_s: float) -> None:
    """SIGTERM/SIGINT: first one sets `stop` and arms a watchdog; the second exits now."""

    def _watchdog() -> None:
        print(f"monitor: shutdown took over {shutdown_timeout_s:g}s; exiting now",
              file=sys.stderr, flush=True)
        os._exit(3)

    def _handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            print("monitor: second signal, exiting at once", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        log.warning("signal %d: finishing the batch, checkpointing, then exiting", signum)
        stop.set()
        timer = threading.Timer(shutdown_timeout_s, _watchdog)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
