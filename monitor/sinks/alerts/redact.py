"""Field allow-listing: raw event content reaches a payload only when allow-listed.

Explanations may carry an event's own values (merchant, description, amount...), which are
often personal data. Any mapping found under one of `EVENT_FIELD_KEYS`, at any depth of an
alert's details, keeps only the allow-listed field names; everything else (scores, p-values,
centroid ids, feature names with z-scores) passes unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_FIELD_KEYS = frozenset({"fields", "text", "numeric", "categorical"})


def redact(value: Any, allow: frozenset[str]) -> Any:
    """A copy of `value` with event-field mappings cut down to the allow-list.

    >>> details = {"score": 3.0, "fields": {"merchant": "ACME", "card": "4111"}}
    >>> redact(details, frozenset({"merchant"}))
    {'score': 3.0, 'fields': {'merchant': 'ACME'}}
    >>> redact([{"text": {"description": "hi"}}], frozenset())
    [{'text': {}}]
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in EVENT_FIELD_KEYS and isinstance(item, Mapping):
                out[key] = {k: redact(v, allow) for k, v in item.items() if k in allow}
            else:
                out[str(key)] = redact(item, allow)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item, allow) for item in value]
    return value
