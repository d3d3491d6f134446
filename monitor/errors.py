"""The three kinds of error the monitor distinguishes.

Poison input is dead-lettered and counted, transient faults are retried with backoff,
fatal errors stop the process without committing offsets.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error the monitor raises on purpose."""


class DecodeError(MonitorError):
    """An event could not be decoded or failed validation (poison input).

    `reason` is a short machine-friendly text that goes to the rejects file or the
    dead-letter topic beside the original bytes.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(MonitorError):
    """The configuration is invalid; the message names the offending key path."""


class TransientError(MonitorError):
    """A fault that may go away on retry (broker unreachable, receiver 5xx)."""


class FatalError(MonitorError):
    """Stop now, without committing offsets, and exit non-zero."""
