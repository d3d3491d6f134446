"""Decode raw bytes or CSV rows into `Event` values, or raise `DecodeError` with a reason.

Decoding is pure: no I/O, no state. Every failure names what was wrong so the rejects file
or the dead-letter topic tells an operator how to fix the producer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from monitor.config import FieldsConfig
from monitor.errors import DecodeError
from monitor.events import DEFAULT_SEGMENT, Event


class _Blank(dict[str, Any]):
    """Template mapping that renders missing fields as empty strings."""

    def __missing__(self, key: str) -> str:
        return ""


def parse_timestamp(value: Any, fmt: str = "auto") -> float:
    """Seconds since the epoch from a number (s or ms) or an ISO-8601 string.

    >>> parse_timestamp(1_700_000_000)
    1700000000.0
    >>> parse_timestamp(1_700_000_000_000)
    1700000000.0
    >>> parse_timestamp("2023-11-14T22:13:20Z")
    1700000000.0
    """
    if isinstance(value, bool):
        raise DecodeError("timestamp: boolean is not a time")
    numeric_text = fmt in ("epoch_s", "epoch_ms") and isinstance(value, str)
    if isinstance(value, int | float) or numeric_text:
        try:
            ts = float(value)
        except ValueError:
            raise DecodeError(f"timestamp: {value!r} is not a number") from None
        if fmt == "epoch_ms" or (fmt == "auto" and ts > 1e11):
            ts /= 1000.0
        return ts
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            try:
                return parse_timestamp(float(value), fmt)
            except ValueError:
                raise DecodeError(f"timestamp: cannot parse {value!r}") from None
    raise DecodeError(f"timestamp: unsupported type {type(value).__name__}")


def _as_float(name: str, value: Any) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise DecodeError(f"field {name!r}: expected a number, got a boolean")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DecodeError(f"field {name!r}: expected a number, got {value!r:.40}") from None
    if math.isinf(x):
        raise DecodeError(f"field {name!r}: infinite value")
    return x


def _as_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise DecodeError(f"field {name!r}: expected text, got {type(value).__name__}")


def decode_record(record: Mapping[str, Any], cfg: FieldsConfig, fallback_id: str) -> Event:
    """Validate one already-parsed record (a JSON object or a CSV row)."""
    for name in cfg.required:
        if record.get(name) in (None, ""):
            raise DecodeError(f"missing required field {name!r}")
    event_id = fallback_id
    if cfg.id is not None:
        raw_id = record.get(cfg.id)
        if raw_id in (None, ""):
            raise DecodeError(f"missing id field {cfg.id!r}")
        event_id = str(raw_id)
    segment = DEFAULT_SEGMENT
    if cfg.segment is not None:
        raw_seg = record.get(cfg.segment)
        segment = DEFAULT_SEGMENT if raw_seg in (None, "") else str(raw_seg)
    ts = None
    if cfg.timestamp is not None and record.get(cfg.timestamp) not in (None, ""):
        ts = parse_timestamp(record[cfg.timestamp], cfg.timestamp_format)
    text = {name: _as_text(name, record.get(name)) for name in cfg.text}
    if cfg.template is not None:
        try:
            text = {"template": cfg.template.format_map(_Blank(record))}
        except (ValueError, IndexError, AttributeError) as err:
            raise DecodeError(f"template: {err}") from None
    numeric = {f.name: _as_float(f.name, record.get(f.name)) for f in cfg.numeric}
    categorical = {name: _as_text(name, record.get(name)) for name in cfg.categorical}
    label = None
    if cfg.label is not None and record.get(cfg.label) not in (None, ""):
        label = str(record[cfg.label]).strip().lower() in {p.lower() for p in cfg.positive}
    return Event(
        id=event_id,
        segment=segment,
        timestamp=ts,
        text=text,
        numeric=numeric,
        categorical=categorical,
        label=label,
        fields=dict(record),
    )


def decode_json(raw: bytes | str, cfg: FieldsConfig, fallback_id: str) -> Event:
    """Decode one JSON message; the reason of any failure is in `DecodeError.reason`."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > cfg.max_event_bytes:
        raise DecodeError(f"event of {size} bytes over the limit of {cfg.max_event_bytes}")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise DecodeError(f"not JSON: {err}") from None
    if not isinstance(record, dict):
        raise DecodeError(f"not a JSON object but {type(record).__name__}")
    return decode_record(record, cfg, fallback_id)
