"""Replay sources: JSONL or CSV files (or JSONL on stdin), read lazily with line numbers."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.config import FieldsConfig
from monitor.decode import decode_json, decode_record
from monitor.errors import ConfigError, DecodeError
from monitor.events import Event

Raw = bytes | dict[str, Any]


def file_format(path: str) -> str:
    """"csv" for *.csv (optionally .gz-less), else "jsonl"; stdin ("-") is JSONL."""
    return "csv" if path.lower().endswith(".csv") else "jsonl"


def read_raw(path: str) -> Iterator[tuple[int, Raw | DecodeError]]:
    """Yield (line number, raw record) pairs; a malformed CSV row yields its error."""
    if path != "-" and not Path(path).is_file():
        raise ConfigError(f"no such input file: {path}")
    if file_format(path) == "csv":
        # utf-8-sig: spreadsheet "CSV UTF-8" exports start with a byte-order mark, which
        # would otherwise become part of the first column's name
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            start = reader.line_num + 1  # a quoted field may span lines: report the first
            for row in reader:
                line, start = start, reader.line_num + 1
                if not row:
                    continue
                if len(row) != len(header):
                    yield line, DecodeError(
                        f"CSV row has {len(row)} columns, header has {len(header)}")
                    continue
                yield line, dict(zip(header, row, strict=True))
        return
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        for line, raw in enumerate(stream, start=1):
            if raw.strip():
                yield line, raw.rstrip(b"\r\n")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def decode_raw(raw: Raw | DecodeError, cfg: FieldsConfig, fallback_id: str) -> Event:
    """Decode one raw record from `read_raw`; raises `DecodeError` with the reason."""
    if isinstance(raw, DecodeError):
        raise raw
    if isinstance(raw, dict):
        return decode_record(raw, cfg, fallback_id)
    return decode_json(raw, cfg, fallback_id)


def count_lines(path: str) -> int | None:
    """Data lines in a file, for the progress bar's total (None for stdin)."""
    if path == "-":
        return None
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        for buf in iter(lambda: fh.read(1 << 20), b""):
            n += buf.count(b"\n")
            last = buf[-1:]
    n += last != b"\n"  # a last line without its newline
    return max(0, n - (1 if file_format(path) == "csv" else 0))

