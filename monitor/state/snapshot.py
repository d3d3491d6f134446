"""A partition's state at an input offset, as bytes, and its local snapshot file.

A `Snapshot` says: this is the state after processing every event of `topic`/`partition`
below `offset` (the next offset to read). The same bytes go to the changelog topic (the
truth) and to a local file (a fast path on restart, written atomically).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError, DecodeError
from monitor.state.codec import decode_state, encode_state


@dataclass(frozen=True, slots=True)
class Snapshot:
    topic: str
    partition: int
    offset: int
    state: dict[str, Any]

    @property
    def key(self) -> bytes:
        return snapshot_key(self.topic, self.partition)

    def encode(self) -> bytes:
        return encode_state({"topic": self.topic, "partition": self.partition,
                             "offset": self.offset, "state": self.state})

    @classmethod
    def decode(cls, data: bytes) -> Snapshot:
        tree = decode_state(data)
        try:
            return cls(str(tree["topic"]), int(tree["partition"]), int(tree["offset"]),
                       dict(tree["state"]))
        except (KeyError, TypeError, ValueError) as err:
            raise DecodeError(f"snapshot: missing or bad field ({err})") from None


def snapshot_key(topic: str, partition: int) -> bytes:
    return f"{topic}:{partition}".encode()


def state_digest(state: dict[str, Any]) -> str:
    """A digest of a state tree, to compare two runs.

    >>> state_digest({"a": 1}) == state_digest({"a": 1})
    True
    """
    return hashlib.sha256(encode_state(state)).hexdigest()


class SnapshotStore:
    """One file per partition under `directory`, replaced atomically (write, fsync, rename)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:  # an unusable directory is a configuration error, said in one line at start-up
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".monitor-write-probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise ConfigError(f"checkpoint.state_dir {str(directory)!r}: "
                              f"{err.strerror or err}") from None

    def path(self, topic: str, partition: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", topic)
        return self.directory / f"{safe}-{partition}.snap"

    def write(self, snap: Snapshot, data: bytes | None = None) -> None:
        path = self.path(snap.topic, snap.partition)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data if data is not None else snap.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read(self, topic: str, partition: int) -> Snapshot | None:
        """The local snapshot, or None when missing or unreadable (the changelog decides)."""
        try:
            snap = Snapshot.decode(self.path(topic, partition).read_bytes())
        except (OSError, DecodeError):
            return None
        if snap.topic != topic or snap.partition != partition:
            return None
        return snap
