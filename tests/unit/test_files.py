"""Replay sources: JSONL and CSV readers with line numbers, and decoding their records."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError, DecodeError
from monitor.source.files import count_lines, decode_raw, file_format, read_raw

FIELDS = parse_config({"fields": {"id": "id", "numeric": [{"name": "amount"}],
                                  "categorical": ["country"], "label": "is_fraud",
                                  "positive": ["1"]}}).fields


def test_file_format_by_suffix() -> None:
    assert file_format("a/b.csv") == "csv"
    assert file_format("B.CSV") == "csv"
    assert file_format("b.jsonl") == "jsonl"
    assert file_format("-") == "jsonl"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such input file"):
        list(read_raw(str(tmp_path / "absent.jsonl")))


def test_jsonl_yields_raw_bytes_with_1_based_line_numbers_skipping_blank_lines(
        tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"id": "a"}\n\n   \n{"id": "b"}\r\nnot json\n')
    rows = list(read_raw(str(p)))
    assert rows == [(1, b'{"id": "a"}'), (4, b'{"id": "b"}'), (5, b"not json")]


def test_jsonl_last_line_without_newline_is_read(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"id": "a"}\n{"id": "b"}')
    assert [line for line, _ in read_raw(str(p))] == [1, 2]


def test_dash_reads_jsonl_from_stdin_and_leaves_it_open(monkeypatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"id": "x"}\n\n{"id": "y"}\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert list(read_raw("-")) == [(1, b'{"id": "x"}'), (3, b'{"id": "y"}')]
    assert not stdin.buffer.closed


def test_csv_rows_are_string_dicts_keyed_by_the_stripped_header(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text(" id , amount,country\nt1,12.5,GB\n\nt2,7,\n")
    rows = list(read_raw(str(p)))
    assert rows == [(2, {"id": "t1", "amount": "12.5", "country": "GB"}),
                    (4, {"id": "t2", "amount": "7", "country": ""})]


def test_csv_ragged_row_yields_its_error_and_reading_continues(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("id,amount\nt1,1\nt2\nt3,3,extra\nt4,4\n")
    rows = list(read_raw(str(p)))
    assert [line for line, _ in rows] == [2, 3, 4, 5]
    assert isinstance(rows[1][1], DecodeError) and "1 columns" in rows[1][1].reason
    assert isinstance(rows[2][1], DecodeError) and "3 columns" in rows[2][1].reason
    assert rows[3][1] == {"id": "t4", "amount": "4"}


def test_empty_csv_yields_nothing(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("")
    assert list(read_raw(str(p))) == []


def test_decode_raw_types_csv_strings_and_json_alike(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("id,amount,country,is_fraud\nt1,12.5,GB,1\n")
    (_, raw), = read_raw(str(p))
    from_csv = decode_raw(raw, FIELDS, "fallback")
    from_json = decode_raw(b'{"id": "t1", "amount": 12.5, "country": "GB", "is_fraud": "1"}',
                           FIELDS, "fallback")
    assert from_csv.id == from_json.id == "t1"
    assert from_csv.numeric == from_json.numeric == {"amount": 12.5}
    assert from_csv.categorical == {"country": "GB"}
    assert from_csv.label is True and from_json.label is True


def test_decode_raw_raises_the_reason() -> None:
    with pytest.raises(DecodeError, match="columns"):
        decode_raw(DecodeError("CSV row has 1 columns, header has 2"), FIELDS, "f")
    with pytest.raises(DecodeError, match="expected a number"):
        decode_raw({"id": "a", "amount": "lots", "country": "GB"}, FIELDS, "f")
    with pytest.raises(DecodeError, match="not JSON"):
        decode_raw(b"{oops", FIELDS, "f")


def test_decode_raw_uses_the_fallback_id_without_an_id_field() -> None:
    cfg = parse_config({"fields": {"numeric": [{"name": "amount"}]}}).fields
    assert decode_raw(b'{"amount": 1}', cfg, "s.jsonl:7").id == "s.jsonl:7"


def test_count_lines(tmp_path: Path) -> None:
    j = tmp_path / "s.jsonl"
    j.write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    c = tmp_path / "s.csv"
    c.write_text("a\n1\n2\n")
    e = tmp_path / "e.csv"
    e.write_text("")
    assert count_lines(str(j)) == 3
    assert count_lines(str(c)) == 2  # the header is not data
    assert count_lines(str(e)) == 0
    assert count_lines("-") is None


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfid,amount\nt1,1\n")
    [(line, raw)] = list(read_raw(str(path)))
    assert line == 2 and raw == {"id": "t1", "amount": "1"}


def test_multi_line_csv_record_reports_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('a,b\n1,"x\ny"\n2,z\n')
    assert [line for line, _ in read_raw(str(path))] == [2, 4]


def test_count_lines_counts_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text('{"a":1}\n{"a":2}')
    assert count_lines(str(path)) == 2
