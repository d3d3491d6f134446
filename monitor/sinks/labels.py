"""Bounded label values: a segment name from the data must not set the size of a scrape.

Segment names come from event fields and can be any length (a 60 KB name grew /metrics
from 15 KB to 10 MB per scrape). Wherever a name becomes a label (Prometheus series, alert
labels and fingerprints, /status), it is cut to `LIMIT` characters with a stable hash of
the whole name, so two long names that share a prefix stay apart and the same name always
gives the same label in every replica.
"""

from __future__ import annotations

import hashlib

LIMIT = 64
_DIGEST = 12  # hex characters of sha256: collisions need ~2^24 long names with one prefix


def bounded_label(value: str, limit: int = LIMIT) -> str:
    """`value` itself when short enough, else its head, "~" and a hash of all of it.

    >>> bounded_label("GB")
    'GB'
    >>> long = bounded_label("merchant-" * 20)
    >>> len(long), long[:12], long == bounded_label("merchant-" * 20)
    (64, 'merchant-mer', True)
    >>> bounded_label("x" * 70) != bounded_label("x" * 71)
    True
    """
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    return f"{value[: limit - _DIGEST - 1]}~{digest}"
