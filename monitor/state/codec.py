"""Encode `state_dict()` trees to compact bytes and back, without pickle.

Snapshots travel through a Kafka changelog topic, so the format must be safe to read
from bytes anyone could have written: JSON (orjson) with tagged numpy arrays (raw
little-endian bytes, base64) and big integers (the RNG state) as text, zlib-compressed.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np
import orjson

from monitor.errors import DecodeError

MAGIC = b"MON4"  # the format marker: bumped when the state layout changes (2: list columns
# in the segments' pending learning blocks; 3: per-field evidence, its calibration pools,
# the segment's seed; 4: per-field text evidence, and the drift detector's unused peak
# dropped)
_ARRAY, _INT, _TUPLE = "__nd__", "__int__", "__tuple__"


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {_ARRAY: arr.dtype.newbyteorder("<").str, "shape": list(arr.shape),
                "data": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
                .decode()}
    if isinstance(obj, dict):
        return {str(k): _pack(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {_TUPLE: [_pack(v) for v in obj]}
    if isinstance(obj, list):
        return [_pack(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | float):
        return obj
    if isinstance(obj, int | np.integer):
        v = int(obj)
        return v if -(2**63) <= v < 2**63 else {_INT: str(v)}
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a snapshot")


def _unpack(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ARRAY in obj:
            raw = base64.b64decode(obj["data"])
            return np.frombuffer(raw, dtype=np.dtype(obj[_ARRAY])).reshape(obj["shape"]).copy()
        if _INT in obj:
            return int(obj[_INT])
        if _TUPLE in obj:
            return tuple(_unpack(v) for v in obj[_TUPLE])
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v) for v in obj]
    return obj


def encode_state(state: dict[str, Any]) -> bytes:
    """Bytes of a state tree.

    >>> s = {"a": np.arange(3, dtype=np.float32), "big": 2**100, "t": (1, "x")}
    >>> out = decode_state(encode_state(s))
    >>> out["a"].tolist(), out["a"].dtype.name, out["big"] == 2**100, out["t"]
    ([0.0, 1.0, 2.0], 'float32', True, (1, 'x'))
    """
    return MAGIC + zlib.compress(orjson.dumps(_pack(state), option=orjson.OPT_NON_STR_KEYS), 3)


def decode_state(data: bytes) -> dict[str, Any]:
    """Inverse of `encode_state`; raises `DecodeError` on anything else."""
    if not data.startswith(MAGIC):
        if data[:3] == MAGIC[:3]:
            raise DecodeError(f"snapshot: format {data[:4].decode(errors='replace')} is from "
                              f"another release (this one reads {MAGIC.decode()}); see the "
                              "runbook's 'Upgrading'")
        raise DecodeError("snapshot: bad magic (not a monitor snapshot)")
    try:
        tree = _unpack(orjson.loads(zlib.decompress(data[len(MAGIC) :])))
    except (zlib.error, orjson.JSONDecodeError, ValueError, KeyError) as err:
        raise DecodeError(f"snapshot: corrupt ({err})") from None
    if not isinstance(tree, dict):
        raise DecodeError("snapshot: not a mapping")
    return tree
