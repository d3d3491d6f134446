"""The raw tabular values of events, as arrays for the per-field evidence (`score/evidence`).

The embedding folds every field into one unit vector; here each field keeps its own
column, so the scoring stage can judge a value on its own and within its context (an
amount against the amounts of its category). Numerics get the configured signed log;
categorical values become bucket codes by a stable hash (bounded memory per segment);
the event time becomes its hour of day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.config import FieldsConfig, ScoreConfig
from monitor.embed import Fields
from monitor.embed.tabular import signed_log, stable_hash
from monitor.events import Event

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.int64]
HOUR = -1  # the context index of the hour of day


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """Which raw fields the evidence reads: numeric and categorical names, which
    categoricals serve as context for the numerics, whether event time is used."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    context: tuple[int, ...]  # indices into `categorical`; HOUR = the hour of day
    time: bool
    buckets: int
    text: tuple[str, ...] = ()  # text fields judged each against its own reference

    @classmethod
    def from_config(cls, fields: FieldsConfig, score: ScoreConfig) -> FieldLayout | None:
        """None when the embedding is the only evidence: nothing tabular, per-field
        evidence switched off, or (`auto`) no text to mix the tabular fields with."""
        text = bool(fields.text or fields.template)
        if score.field_evidence is False or (score.field_evidence == "auto" and not text):
            return None
        buckets = score.buckets
        numeric = tuple(f.name for f in fields.numeric)
        categorical = tuple(fields.categorical)
        if not (numeric or categorical or fields.timestamp):
            return None
        texts = tuple(fields.text) or (("template",) if fields.template else ())
        chosen = categorical if fields.context is None else tuple(fields.context)
        context = tuple(categorical.index(c) for c in chosen) if numeric else ()
        time = fields.timestamp is not None
        if time and numeric and fields.context is None:
            context += (HOUR,)  # an amount at this hour of the day
        per_field = score.text_evidence == "per_field"
        return cls(numeric, categorical, context, time, buckets, texts if per_field else ())

    @property
    def columns(self) -> list[str]:
        """Names of the evidence columns after the embedding's (or the text group's)."""
        return ([f"numeric:{n}" for n in self.numeric]
                + [f"categorical:{c}" for c in self.categorical]
                + (["time:hour"] if self.time else []))


@dataclass(frozen=True, slots=True)
class FieldValues:
    """Rows of raw values: numerics (NaN when missing), categorical bucket codes, event
    time in seconds and its hour of day (NaN when absent), and with per-field text
    evidence each text field's embedding (zeros when empty)."""

    numeric: Floats  # (n, F)
    codes: Codes  # (n, C)
    time: Floats  # (n,)
    text: Fields | None = None  # (n, T, dim)

    def __len__(self) -> int:
        return len(self.time)

    def take(self, rows: Sequence[int] | npt.NDArray[np.int64] | slice) -> FieldValues:
        if not isinstance(rows, slice):
            rows = np.asarray(rows, np.int64)
        text = None if self.text is None else self.text[rows]
        return FieldValues(self.numeric[rows], self.codes[rows], self.time[rows], text)

    @property
    def hour(self) -> npt.NDArray[np.int64]:
        """Hour of day (UTC) 0-23; -1 where the time is missing.

        >>> FieldValues(np.zeros((2, 0)), np.zeros((2, 0), np.int64),
        ...             np.array([3_600.0 * 27, np.nan])).hour.tolist()
        [3, -1]
        """
        t = np.nan_to_num(self.time, nan=-3_600.0)
        return np.where(np.isnan(self.time), -1, (t % 86_400) // 3_600).astype(np.int64)

    def context_codes(self, context: int) -> Codes:
        """Bucket of each row in one context: a categorical field's code, or for HOUR the
        hour of day (24 for a missing time, its own context)."""
        if context == HOUR:
            hour = self.hour
            return np.where(hour < 0, 24, hour)
        return self.codes[:, context]

    @classmethod
    def stack(cls, parts: Sequence[FieldValues]) -> FieldValues:
        text = None if parts[0].text is None else np.concatenate([p.text for p in parts
                                                                  if p.text is not None])
        return cls(np.vstack([p.numeric for p in parts]), np.vstack([p.codes for p in parts]),
                   np.concatenate([p.time for p in parts]), text)


def extract(layout: FieldLayout, log: Sequence[bool], events: Sequence[Event],
            text: Fields | None = None) -> FieldValues:
    """The layout's raw values of each event; `log[i]` applies signed log to numeric i;
    `text` (the encoder's per-field embeddings) is kept when the layout judges text
    fields on their own."""
    if layout.text and (text is None or text.shape[:2] != (len(events), len(layout.text))):
        raise ValueError(f"per-field text evidence needs the embeddings of the text fields "
                         f"{list(layout.text)} of every event (CompositeEncoder.encode_parts)")
    n = len(events)
    num = np.array([[e.numeric.get(f, math.nan) for f in layout.numeric] for e in events],
                   np.float64).reshape(n, len(layout.numeric))
    logged = np.asarray(log, bool)
    if logged.any():
        num[:, logged] = signed_log(num[:, logged])
    b = layout.buckets
    codes = np.array([[stable_hash(f"{c}={e.categorical.get(c, '')}") % b
                       for c in layout.categorical] for e in events],
                     np.int64).reshape(n, len(layout.categorical))
    time = np.array([math.nan if e.timestamp is None else e.timestamp for e in events],
                    np.float64)
    return FieldValues(num, codes, time, text if layout.text else None)


def empty(n: int) -> FieldValues:
    """Values for events that carry no tabular fields (a layout-less engine)."""
    return FieldValues(np.zeros((n, 0)), np.zeros((n, 0), np.int64), np.full(n, math.nan))
