"""Decode raw bytes or CSV rows into `Event` values, or raise `DecodeError` with a reason.

Decoding is pure: no I/O, no state. Every failure names what was wrong so the rejects file
or the dead-letter topic tells an operator how to fix the producer.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from monitor.config import FieldsConfig
from monitor.errors import DecodeError
from monitor.events import DEFAULT_SEGMENT, Event

# The reason a Kafka tombstone (a record whose value is null) is dead-lettered with
TOMBSTONE = "tombstone: null value"


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
        except (ValueError, OverflowError):  # OverflowError: an int beyond any float
            raise DecodeError(f"timestamp: {value!r:.40} is not a number") from None
        if not math.isfinite(ts):  # "nan", "1e999": no hour of day, no age, no ordering
            raise DecodeError(f"timestamp: {value!r:.40} is not a finite number")
        if fmt == "epoch_ms" or (fmt == "auto" and ts > 1e11):
            ts /= 1000.0
        return ts
    if isinstance(value, str):
        try:
            # .timestamp() of a naive time near year 1 or 9999 overflows in local time
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            try:
                return parse_timestamp(float(value), fmt)
            except ValueError:
                raise DecodeError(f"timestamp: cannot parse {value!r:.40}") from None
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
    except OverflowError:  # an int beyond any float (a mapping not parsed by orjson)
        raise DecodeError(f"field {name!r}: infinite value") from None
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


def _as_key(name: str, value: Any) -> str:
    """The text of an id, segment or label value.

    Strings stay as they are and numbers and booleans keep the `str()` they always had, so
    ids already stored, alerted on or joined elsewhere do not change. Objects and arrays
    become canonical JSON (sorted keys, no spaces) rather than a Python repr, so any tool
    can parse them back, and the same value always gives the same id or segment.

    >>> _as_key("id", {"x": [1, 2], "a": None})
    '{"a":null,"x":[1,2]}'
    >>> _as_key("id", "abc"), _as_key("id", 7), _as_key("id", 1.5), _as_key("id", True)
    ('abc', '7', '1.5', 'True')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError as err:  # nested over 254 deep, a non-text key
            raise DecodeError(f"field {name!r}: cannot be written as JSON: {err}") from None
    return str(value)


def bucketed_segment(segment: str, event_id: str, buckets: Mapping[str, int]) -> str:
    """`segment`, or for a segment listed in `buckets` (``fields.segment_buckets``) its
    bucket ``"<segment>#<b>"``, b = CRC-32 of the event id's UTF-8 modulo the count.

    The bucket depends on the id alone, never on the process (unlike the salted `hash()`):
    a record replayed or re-sent after a crash lands in the same bucket, every replica
    and release agrees, and any tool can compute it (zlib.crc32, java.util.zip.CRC32).
    An unlisted value that reads like one of those buckets would share its model
    unnoticed, so it is refused.

    >>> buckets = {"s2": 4}
    >>> [bucketed_segment("s2", i, buckets) for i in ("tx-1", "tx-2", "tx-4", "tx-5", "tx-1")]
    ['s2#2', 's2#0', 's2#1', 's2#3', 's2#2']
    >>> bucketed_segment("s1", "tx-1", buckets), bucketed_segment("s2#9", "tx-1", buckets)
    ('s1', 's2#9')
    >>> bucketed_segment("s2#3", "tx-1", buckets)
    Traceback (most recent call last):
    monitor.errors.DecodeError: segment 's2#3' reads as bucket 3 of 's2' (fields.segment_buckets)
    """
    n = buckets.get(segment)
    if n is not None:
        return f"{segment}#{zlib.crc32(event_id.encode('utf-8', 'surrogatepass')) % n}"
    if "#" not in segment:
        return segment
    head, _, tail = segment.rpartition("#")
    n = buckets.get(head)
    # ASCII and short before int(): "²" is a digit int() refuses, and 5,000 digits too
    if (n is not None and tail.isascii() and tail.isdigit() and len(tail) <= len(str(n))
            and tail == str(int(tail)) and int(tail) < n):
        raise DecodeError(f"segment {segment!r:.60} reads as bucket {tail} of {head!r:.40} "
                          "(fields.segment_buckets)")
    return segment


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
        event_id = _as_key(cfg.id, raw_id)
    segment = DEFAULT_SEGMENT
    if cfg.segment is not None:
        raw_seg = record.get(cfg.segment)
        segment = DEFAULT_SEGMENT if raw_seg in (None, "") else _as_key(cfg.segment, raw_seg)
        if cfg.segment_buckets:
            segment = bucketed_segment(segment, event_id, cfg.segment_buckets)
    ts = None
    if cfg.timestamp is not None and record.get(cfg.timestamp) not in (None, ""):
        ts = parse_timestamp(record[cfg.timestamp], cfg.timestamp_format)
    text = {name: _as_text(name, record.get(name)) for name in cfg.text}
    if cfg.template is not None:
        try:
            text = {"template": cfg.template.format_map(_Blank(record))}
        # a field's value decides some of these: "{amount:.2f}" of text is a ValueError,
        # of an object a TypeError; "{card[0]}" of a number a TypeError, of an object a
        # KeyError
        except (ValueError, IndexError, AttributeError, KeyError, TypeError) as err:
            raise DecodeError(f"template: {err}") from None
    numeric = {f.name: _as_float(f.name, record.get(f.name)) for f in cfg.numeric}
    categorical = {name: _as_text(name, record.get(name)) for name in cfg.categorical}
    label = None
    if cfg.label is not None and record.get(cfg.label) not in (None, ""):
        label_text = _as_key(cfg.label, record[cfg.label]).strip().lower()
        label = label_text in {p.lower() for p in cfg.positive}
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


def decode_json(raw: bytes | str | None, cfg: FieldsConfig, fallback_id: str) -> Event:
    """Decode one JSON message; the reason of any failure is in `DecodeError.reason`.

    `None` is a Kafka tombstone: it is rejected with the reason `TOMBSTONE` so that its
    dead letter can keep the null value instead of pretending it was empty bytes.
    """
    if raw is None:
        raise DecodeError(TOMBSTONE)
    # surrogatepass: a str with a lone surrogate is counted here and rejected by orjson
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > cfg.max_event_bytes:
        raise DecodeError(f"event of {size} bytes over the limit of {cfg.max_event_bytes}")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise DecodeError(f"not JSON: {err}") from None
    if not isinstance(record, dict):
        raise DecodeError(f"not a JSON object but {type(record).__name__}")
    return decode_record(record, cfg, fallback_id)
