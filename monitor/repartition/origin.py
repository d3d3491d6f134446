"""The source of a repartitioned record, carried in its headers.

The router forwards the original bytes untouched; where they came from travels in
headers, so the scorer can name the source record in its outputs and drop the duplicates
an at-least-once router writes after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Same names as the dead-letter headers: a record's source is said one way everywhere.
H_TOPIC = "monitor.source.topic"
H_PARTITION = "monitor.source.partition"
H_OFFSET = "monitor.source.offset"
H_TIMESTAMP = "monitor.source.timestamp"

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record was read by the router: topic, partition, offset and the source
    record's timestamp (ms, None when the broker gave none)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None

    def where(self) -> dict[str, str | int]:
        """The source record as outputs name it (alert details, the status page).

        >>> Origin("events", 2, 41, 1700).where()
        {'topic': 'events', 'partition': 2, 'offset': 41}
        """
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}

    def headers(self) -> list[tuple[str, bytes]]:
        """The headers the router writes.

        >>> Origin("events", 2, 41, 1700).headers()[1:3]
        [('monitor.source.partition', b'2'), ('monitor.source.offset', b'41')]
        """
        out = [(H_TOPIC, self.topic.encode()), (H_PARTITION, str(self.partition).encode()),
               (H_OFFSET, str(self.offset).encode())]
        if self.timestamp_ms is not None:
            out.append((H_TIMESTAMP, str(self.timestamp_ms).encode()))
        return out


class OriginError(ValueError):
    """A record on the internal topic without valid source headers (not the router's)."""


def read_origin(headers: Headers | None) -> Origin:
    """Parse the router's headers; `OriginError` when one is missing or malformed.

    >>> read_origin(Origin("events", 2, 41, 1700).headers())
    Origin(topic='events', partition=2, offset=41, timestamp_ms=1700)
    >>> read_origin([("monitor.source.topic", b"events")])
    Traceback (most recent call last):
    monitor.repartition.origin.OriginError: no monitor.source.partition header
    """
    found = {k: v for k, v in headers or () if v is not None}
    try:
        topic = found[H_TOPIC].decode()
        for name in (H_PARTITION, H_OFFSET):
            if name not in found:
                raise OriginError(f"no {name} header")
        stamp = found.get(H_TIMESTAMP)
        return Origin(topic, int(found[H_PARTITION]), int(found[H_OFFSET]),
                      None if stamp is None else int(stamp))
    except KeyError as err:
        raise OriginError(f"no {err.args[0]} header") from None
    except (UnicodeDecodeError, ValueError) as err:
        if isinstance(err, OriginError):
            raise
        raise OriginError(f"malformed source header: {err}") from None
