"""A segment's state as a tree of plain values and arrays (for the snapshot codec), and back.

Everything a segment needs to continue exactly where it stopped is here, pending learning
block and random generator included: a restored segment produces the same scores, bit for
bit, as one that never stopped (tests/unit/test_restore_equivalence.py).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from monitor.embed.fields import FieldValues
from monitor.score.batch import SegmentState
from monitor.score.drift.watch import DriftWatch
from monitor.score.reference import CentroidReference


class Persisted(SegmentState, Protocol):
    """What a segment's state holds beyond what scoring reads (`SegmentModel`)."""

    known: npt.NDArray[np.float64]
    watch: DriftWatch
    warm_x: list[npt.NDArray[np.float32]]
    warm_values: list[FieldValues]
    warm_ids: list[str]
    pending: dict[str, list[Any]]
    seen: int
    outliers: int
    rebaseline_due: bool
    refitting: bool

ARRAYS = ("x", "values", "columns", "pooled", "text", "margin")  # pending array blocks


def segment_state(m: Persisted) -> dict[str, Any]:
    return {
        "seed": m.seed,
        "rng": m.rng.bit_generator.state,
        "reference": None if m.reference is None else m.reference.state_dict(),
        "reservoir": m.reservoir.state_dict(),
        "pools": [pool.state_dict() for pool in m.pools],
        "margins": m.margins.state_dict(),
        "known": m.known.copy(),
        "evidence": None if m.evidence is None else m.evidence.state_dict(),
        "text": None if m.text is None else m.text.state_dict(),
        "warm_values": _values_state(m.warm_values),
        "fraud": m.fraud.state_dict(),
        **m.watch.state_dict(),
        "warm_x": np.vstack(m.warm_x) if m.warm_x else None,
        "warm_ids": list(m.warm_ids),
        "seen": m.seen, "outliers": m.outliers,
        "rebaseline": m.rebaseline_due, "refitting": m.refitting,
        "pending": {k: (_block_state(v) if k in ARRAYS else list(v))
                    for k, v in m.pending.items()},
    }


def load_segment_state(m: Persisted, state: dict[str, Any]) -> None:
    m.seed = int(state["seed"])  # a refit after restore must draw what it would have
    m.rng.bit_generator.state = state["rng"]
    ref = state["reference"]
    m.reference = None if ref is None else CentroidReference.from_state(ref)
    m.reservoir.load_state_dict(state["reservoir"])
    m.margins.load_state_dict(state["margins"])
    m.known = np.array(state["known"], np.float64)
    for pool, pool_state in zip(m.pools, state["pools"], strict=True):
        pool.load_state_dict(pool_state)
    if m.evidence is not None:
        m.evidence.load_state_dict(state["evidence"])
    if m.text is not None:
        m.text.load_state_dict(state["text"])
    m.warm_values = _values_load(state["warm_values"])
    m.fraud.load_state_dict(state["fraud"])
    m.watch.load_state_dict(state)
    wx = state["warm_x"]
    m.warm_x = [] if wx is None else [np.array(wx, np.float32)]
    m.warm_ids = list(state["warm_ids"])
    m.seen, m.outliers = int(state["seen"]), int(state["outliers"])
    m.rebaseline_due = bool(state["rebaseline"])
    m.refitting = bool(state["refitting"])
    m.pending = {k: (_block_load(k, v) if k in ARRAYS else list(v))
                 for k, v in state["pending"].items()}


def fitted_state(m: Persisted) -> dict[str, Any]:
    """A fitted segment's state for a seed file (`monitor fit`): all but the drift watch.

    A fit never feeds the watch, so it holds nothing learned, only the fitting config's
    threshold; `seed_segment` gives the segment the running config's fresh watch instead,
    and drift settings may change without a re-fit.
    """
    watch = m.watch.state_dict()
    return {k: v for k, v in segment_state(m).items() if k not in watch}


def seed_segment(m: Persisted, state: dict[str, Any]) -> None:
    """Start a new segment `m` from a seed file's `fitted_state`, keeping its own fresh
    drift watch. The file's trees are shared by every partition's engine: `m` loads a
    copy."""
    load_segment_state(m, {**copy.deepcopy(state), **m.watch.state_dict()})


def _values_state(parts: list[FieldValues]) -> dict[str, Any] | None:
    if not parts:
        return None
    v = FieldValues.stack(parts)
    return {"numeric": v.numeric, "codes": v.codes, "time": v.time, "text": v.text}


def _values_load(state: dict[str, Any] | None) -> list[FieldValues]:
    """The arrays keep their shapes through the codec (an empty block too: (0, F))."""
    if state is None:
        return []
    text = state.get("text")
    return [FieldValues(np.array(state["numeric"], np.float64),
                        np.array(state["codes"], np.int64), np.array(state["time"], np.float64),
                        None if text is None else np.array(text, np.float32))]


def _block_state(blocks: list[Any]) -> Any:
    """Pending array blocks as one array (field values as their own small tree)."""
    if not blocks:
        return None
    if isinstance(blocks[0], FieldValues):
        return _values_state(blocks)
    return np.vstack(blocks)


def _block_load(key: str, state: Any) -> list[Any]:
    if state is None:
        return []
    if key == "values":
        return _values_load(state)
    return [np.array(state, np.float32 if key == "x" else np.float64)]
