import pytest

from monitor.config import parse_config
from monitor.decode import decode_json, decode_record
from monitor.errors import DecodeError

CFG = parse_config({
    "fields": {
        "id": "id", "timestamp": "ts", "segment": "shop", "label": "fraud",
        "text": ["merchant", "description"],
        "numeric": [{"name": "amount", "log": True}], "categorical": ["country"],
        "required": ["merchant"], "max_event_bytes": 200,
    }
}).fields


def test_valid_event() -> None:
    e = decode_json(b'{"id": 7, "ts": "2024-01-01T00:00:00Z", "shop": "s1", "merchant": "Tesco",'
                    b' "amount": "12.5", "country": "GB", "fraud": "1"}', CFG, "f:1")
    assert e.id == "7" and e.segment == "s1" and e.label is True
    assert e.text == {"merchant": "Tesco", "description": ""}
    assert e.numeric == {"amount": 12.5} and e.categorical == {"country": "GB"}
    assert e.timestamp == 1704067200.0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"merchant": "x"}', "missing id field 'id'"),
        (b'{"id": 1}', "missing required field 'merchant'"),
        (b'{"id": 1, "merchant": "x", "amount": "lots"}', "expected a number"),
        (b'{"id": 1, "merchant": {"a": 1}}', "expected text"),
        (b'{"id": 1, "merchant": "x", "ts": "yesterday"}', "timestamp"),
        (b'{"id": 1, "merchant": "' + b"x" * 300 + b'"}', "over the limit"),
    ],
)
def test_every_failure_names_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_json(raw, CFG, "f:1")
    assert reason in info.value.reason


def test_template_renders_missing_fields_blank() -> None:
    cfg = parse_config({"fields": {"template": "{merchant} {category}"}}).fields
    e = decode_record({"merchant": "ACME"}, cfg, "row-1")
    assert e.text == {"template": "ACME "} and e.id == "row-1"


def test_missing_numeric_is_nan_not_an_error() -> None:
    e = decode_record({"id": "1", "merchant": "x"}, CFG, "r")
    assert e.numeric["amount"] != e.numeric["amount"]  # NaN: imputed at the median later
