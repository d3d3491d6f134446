"""What every configuration section shares: the frozen, strict base model and the reader
of ``file:`` secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

SECRET_FILE_PREFIX = "file:"


class Section(BaseModel):
    """Base of every configuration section: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


def read_secret(value: Any) -> Any:
    """The content of the file a ``file:/path`` value names (stripped); any other value
    as it is. A file that cannot be read is a `ValueError` naming it.

    >>> read_secret("literal"), read_secret(3)
    ('literal', 3)
    >>> read_secret("file:/nonexistent/secret")
    Traceback (most recent call last):
    ValueError: cannot read secret file /nonexistent/secret: No such file or directory
    """
    if not (isinstance(value, str) and value.startswith(SECRET_FILE_PREFIX)):
        return value
    path = value[len(SECRET_FILE_PREFIX):]
    try:
        return Path(path).read_text().strip()
    except OSError as err:
        raise ValueError(f"cannot read secret file {path}: {err.strerror}") from None
