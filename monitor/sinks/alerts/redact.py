"""Field allow-listing: raw event content reaches a payload only when allow-listed.

Explanations may carry an event's own values (merchant, description, amount...), which are
often personal data. At any depth of an alert's details:

- a mapping under one of `EVENT_FIELD_KEYS` keeps only the allow-listed field names;
- an item of a list under one of `FEATURE_LIST_KEYS` (``{"field": name, "z": ...,
  "value": ...}``) keeps its ``value`` only when ``field`` is allow-listed.

Everything else (scores, p-values, centroid ids, feature names with z-scores) passes
unchanged, so with the default empty allow-list no event value reaches a receiver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_FIELD_KEYS = frozenset({"fields", "text", "numeric", "categorical"})
FEATURE_LIST_KEYS = frozenset({"deviating_features"})
FEATURE_VALUE_KEYS = frozenset({"value", "raw"})


def _feature(item: Any, allow: frozenset[str]) -> Any:
    if not isinstance(item, Mapping):
        return redact(item, allow)
    keep = item.get("field") in allow
    return {
        str(k): redact(v, allow) for k, v in item.items() if keep or k not in FEATURE_VALUE_KEYS
    }


def redact(value: Any, allow: frozenset[str]) -> Any:
    """A copy of `value` with event values cut down to the allow-list.

    >>> details = {"score": 3.0, "fields": {"merchant": "ACME", "card": "4111"}}
    >>> redact(details, frozenset({"merchant"}))
    {'score': 3.0, 'fields': {'merchant': 'ACME'}}
    >>> redact([{"text": {"description": "hi"}}], frozenset())
    [{'text': {}}]
    >>> feats = {"deviating_features": [{"field": "amount", "z": 9.1, "value": 5e4},
    ...                                 {"field": "age", "z": -3.0, "value": 91}]}
    >>> redact(feats, frozenset({"age"}))["deviating_features"]
    [{'field': 'amount', 'z': 9.1}, {'field': 'age', 'z': -3.0, 'value': 91}]
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in EVENT_FIELD_KEYS and isinstance(item, Mapping):
                out[key] = {k: redact(v, allow) for k, v in item.items() if k in allow}
            elif key in FEATURE_LIST_KEYS and isinstance(item, (list, tuple)):
                out[key] = [_feature(f, allow) for f in item]
            else:
                out[str(key)] = redact(item, allow)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item, allow) for item in value]
    return value
