"""Property-based fuzz of the decoder: whatever a producer sends, decoding either gives an
`Event` or raises `DecodeError` with a reason. Any other exception would escape the
dead-letter path and stop the daemon (or the replay) on one bad record."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import FieldsConfig, NumericField
from monitor.decode import decode_json, decode_record
from monitor.errors import DecodeError
from monitor.events import Event

FIELDS = FieldsConfig(id="id", segment="shop", label="fraud", timestamp="ts",
                      text=["merchant"], numeric=[NumericField(name="amount", log=True)],
                      categorical=["country"], max_event_bytes=4096)
# a template indexes into and formats field values, so a value can fail it in more ways
TEMPLATED = FieldsConfig(id="id", segment="shop", template="{merchant:>6} {country[0]} "
                         "{amount.real}", categorical=["country"])
CONFIGS = [FIELDS, TEMPLATED]
NAMES = ["id", "shop", "fraud", "ts", "merchant", "amount", "country"]

# no database: a fuzz run leaves no .hypothesis folder in the repo; a failure prints its
# example and a @reproduce_failure blob instead
FUZZ = settings(max_examples=400, deadline=None, database=None)

# lone surrogates are drawn as well: stdlib json writes them as \udXXX escapes
CHARS = st.characters() | st.characters(categories=["Cs"])
SCALARS = (st.none() | st.booleans() | st.integers() | st.text(CHARS, max_size=12)
           | st.floats(allow_nan=False, allow_infinity=False))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(CHARS, max_size=6),
                                                              kids, max_size=4),
    max_leaves=16)
# values a real producer would send, so that many records decode instead of failing early
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "id": st.integers(0, 10**6) | st.text(min_size=1, max_size=8),
    "shop": st.sampled_from(["s1", "s2", ""]),
    "fraud": st.sampled_from([0, 1, "yes", "no", True, False]),
    "ts": st.integers(0, 2 * 10**12) | st.sampled_from(["2024-01-01T00:00:00Z", "1e12"]),
    "merchant": st.text(max_size=10),
    "amount": st.floats(allow_nan=False, allow_infinity=False) | st.just("12.5"),
    "country": st.sampled_from(["GB", "FR", ""]),
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object with a few unknown fields and any of the configured ones."""
    unknown = draw(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3))
    known = draw(st.fixed_dictionaries(
        {}, optional={name: JSON_VALUES | PLAUSIBLE[name] for name in NAMES}))
    return {**unknown, **known}


def decoded(decode: Callable[[], Event]) -> Event | None:
    """The event, or None when the decoder rejected the input the one allowed way."""
    try:
        event = decode()
    except DecodeError as err:
        assert isinstance(err.reason, str) and err.reason.strip(), repr(err.reason)
        return None
    assert isinstance(event.id, str) and isinstance(event.segment, str)
    assert event.timestamp is None or math.isfinite(event.timestamp)
    assert not any(math.isinf(x) for x in event.numeric.values())
    return event


def serialised(value: Any, ascii_only: bool) -> bytes:
    """JSON text of `value`; stdlib json, since orjson cannot write ints over 64 bits."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def assert_canonical(text: str, value: Any) -> None:
    """An id or segment given as an object or array is its canonical JSON text."""
    if isinstance(value, dict | list):
        assert text == orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        assert orjson.loads(text) == value


@pytest.mark.parametrize("cfg", CONFIGS, ids=["fields", "template"])
@FUZZ
@given(raw=st.binary(max_size=600))
def test_arbitrary_bytes_decode_or_raise_decode_error(cfg: FieldsConfig, raw: bytes) -> None:
    decoded(lambda: decode_json(raw, cfg, "fuzz:0"))


@FUZZ
@given(raw=st.text(CHARS, max_size=200))
def test_arbitrary_text_decodes_or_raises_decode_error(raw: str) -> None:
    decoded(lambda: decode_json(raw, FIELDS, "fuzz:0"))


@FUZZ
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_arbitrary_json_values_decode_or_raise_decode_error(value: Any,
                                                             ascii_only: bool) -> None:
    decoded(lambda: decode_json(serialised(value, ascii_only), FIELDS, "fuzz:0"))


@pytest.mark.parametrize("cfg", CONFIGS, ids=["fields", "template"])
@FUZZ
@given(record=records(), ascii_only=st.booleans())
def test_records_with_the_configured_fields_decode_or_raise_decode_error(
        cfg: FieldsConfig, record: dict[str, Any], ascii_only: bool) -> None:
    raw = serialised(record, ascii_only)
    event = decoded(lambda: decode_json(raw, cfg, "fuzz:0"))
    if event is not None:
        parsed = orjson.loads(raw)  # what the decoder saw: ints over 64 bits became floats
        assert_canonical(event.id, parsed.get("id"))
        assert_canonical(event.segment, parsed.get("shop"))
    # the same record already parsed (the path CSV rows and other callers take)
    event = decoded(lambda: decode_record(record, cfg, "fuzz:0"))
    if event is not None:
        assert_canonical(event.id, record.get("id"))
        assert_canonical(event.segment, record.get("shop"))
