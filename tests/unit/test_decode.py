import pytest

from monitor.config import parse_config
from monitor.decode import TOMBSTONE, decode_json, decode_record
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


def test_object_ids_segments_and_labels_are_canonical_json_not_a_python_repr() -> None:
    e = decode_record({"id": {"x": [1, 2], "b": {"z": None, "a": "é"}}, "merchant": "m",
                       "shop": ["s", 1.5, True], "fraud": {"v": 1}}, CFG, "r")
    assert e.id == '{"b":{"a":"é","z":null},"x":[1,2]}'
    assert e.segment == '["s",1.5,true]'
    assert e.label is False  # neither a repr nor its JSON is a positive value
    positive = parse_config({"fields": {"label": "fraud", "positive": ['["yes"]'],
                                  "categorical": ["country"]}}).fields
    assert decode_record({"fraud": ["yes"]}, positive, "r").label is True


@pytest.mark.parametrize(("json", "text"), [
    ('"card 9"', "card 9"), ('" 07 "', " 07 "), ("7", "7"), ("-3", "-3"), ("1.5", "1.5"),
    ("2.0", "2.0"), ("1e20", "1e+20"), ("true", "True"),
    ("18446744073709551616", "1.8446744073709552e+19"),  # over 64 bits: orjson reads a float
])
def test_scalar_ids_and_segments_keep_the_text_they_always_had(json: str, text: str) -> None:
    e = decode_json(f'{{"id": {json}, "shop": {json}, "merchant": "m"}}', CFG, "r")
    assert e.id == e.segment == text


@pytest.mark.parametrize(("value", "fraud"), [
    (1, True), (1.0, True), (True, True), ("Fraud ", True), (0, False), (False, False),
    ("no", False),
])
def test_labels_that_are_scalars_keep_their_meaning(value: object, fraud: bool) -> None:
    assert decode_record({"id": 1, "merchant": "m", "fraud": value}, CFG, "r").label is fraud


def test_an_id_too_deep_to_write_as_json_is_a_decode_error() -> None:
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    with pytest.raises(DecodeError, match="field 'id': cannot be written as JSON"):
        decode_record({"id": deep, "merchant": "m"}, CFG, "r")


def test_a_tombstone_is_rejected_with_its_own_reason() -> None:
    with pytest.raises(DecodeError) as info:
        decode_json(None, CFG, "t:0:1")
    assert info.value.reason == TOMBSTONE == "tombstone: null value"


@pytest.mark.parametrize("ts", ["nan", "1e999", "-inf", 10**400])
def test_a_timestamp_that_is_not_finite_is_rejected(ts: object) -> None:
    with pytest.raises(DecodeError, match="timestamp"):
        decode_record({"id": 1, "merchant": "m", "ts": ts}, CFG, "r")


@pytest.mark.parametrize("amount", ["1e999", 10**400, -(10**400)])
def test_a_number_beyond_any_float_is_rejected(amount: object) -> None:
    with pytest.raises(DecodeError, match="field 'amount': infinite value"):
        decode_record({"id": 1, "merchant": "m", "amount": amount}, CFG, "r")


@pytest.mark.parametrize(("template", "value"), [
    ("{amount:.2f}", {"a": 1}), ("{amount[0]}", 5), ("{amount[k]}", {"a": 1}),
    ("{amount.real.x}", 5), ("{amount:.2f}", "text"),
])
def test_a_template_a_field_value_cannot_fill_is_a_decode_error(template: str,
                                                                value: object) -> None:
    cfg = parse_config({"fields": {"template": template}}).fields
    with pytest.raises(DecodeError, match="template"):
        decode_record({"amount": value}, cfg, "r")
