"""Composite encoder: weighted concatenation of the text and tabular blocks, renormalised."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from monitor.config import MonitorConfig
from monitor.embed import Fields, Matrix, TextModel, l2_normalise
from monitor.embed.tabular import TabularEncoder
from monitor.embed.text import TextEncoder
from monitor.events import Event


class CompositeEncoder:
    """Each block has unit rows; weights set their share of the cosine similarity.

    With weights w_t and w_b the composite row is [w_t·t, w_b·b] / sqrt(w_t² + w_b²), so
    it is unit length too and cos(composite) = (w_t²·cos_t + w_b²·cos_b) / (w_t² + w_b²).
    """

    def __init__(
        self, text: TextEncoder | None, tabular: TabularEncoder | None,
        text_weight: float = 1.0, tabular_weight: float = 1.0,
    ) -> None:
        if text is None and tabular is None:
            raise ValueError("a composite encoder needs at least one block")
        self.text = text
        self.tabular = tabular
        wt = text_weight if text is not None else 0.0
        wb = tabular_weight if tabular is not None else 0.0
        norm = math.sqrt(wt * wt + wb * wb) or 1.0
        self._wt, self._wb = wt / norm, wb / norm

    @property
    def dim(self) -> int:
        return (self.text.dim if self.text else 0) + (self.tabular.dim if self.tabular else 0)

    def encode(self, events: Sequence[Event]) -> Matrix:
        return self.encode_parts(events)[0]

    def encode_parts(self, events: Sequence[Event]) -> tuple[Matrix, Fields | None]:
        """The composite rows, and each text field's own embedding (None without text)
        for the per-field evidence; the text model runs once for both."""
        blocks = []
        fields = None
        if self.text is not None:
            fields = self.text.encode_fields(events)
            blocks.append(l2_normalise(fields.sum(axis=1)) * self._wt)
        if self.tabular is not None:
            blocks.append(self.tabular.encode(events) * self._wb)
        return np.hstack(blocks).astype(np.float32, copy=False), fields

    def state_dict(self) -> dict[str, Any]:
        return {"tabular": self.tabular.state_dict() if self.tabular else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.tabular is not None and state.get("tabular") is not None:
            self.tabular.load_state_dict(state["tabular"])


def build_encoder(cfg: MonitorConfig, text_model: TextModel | None = None) -> CompositeEncoder:
    """The encoder a config asks for; `text_model` is loaded lazily if not given."""
    f = cfg.fields
    text = None
    if f.text or f.template:
        if text_model is None:
            from monitor.embed.profiles import load_text_model

            e = cfg.embed
            text_model = load_text_model(e.profile, e.model, e.device, e.batch_size,
                                         e.max_seq_length, e.threads, e.cache_dir)
        text = TextEncoder(text_model, [] if f.template else f.text, cfg.embed.cache_size)
    tabular = None
    if f.numeric or f.categorical or f.timestamp:
        tabular = TabularEncoder(
            f.numeric, f.categorical, cfg.embed.hash_dim, f.timestamp is not None,
            cfg.embed.robust_window,
        )
    return CompositeEncoder(text, tabular, cfg.embed.text_weight, cfg.embed.tabular_weight)
