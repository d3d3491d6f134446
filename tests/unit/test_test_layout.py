"""Test files keep unique basenames: tests/unit has no __init__.py, so pytest imports its
files by basename, and a second file of the same name anywhere in tests/ stops the whole
collection ("import file mismatch")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_basename_is_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert len(names) > 50  # the suite was found
    assert [n for n, count in names.items() if count > 1] == []
