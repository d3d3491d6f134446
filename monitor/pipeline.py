"""Encoder + engine for one stream (or one Kafka partition): events in, scores out."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from monitor.config import MonitorConfig
from monitor.embed import Fields, Matrix, TextModel
from monitor.embed.composite import CompositeEncoder, build_encoder
from monitor.embed.tabular import NumericScale
from monitor.events import DriftAlarm, Event, Score
from monitor.score.engine import Engine
from monitor.state.seed import Fitted, Seed


class Pipeline:
    """Embeds a batch, then scores it; the state of both round-trips through `state_dict`.

    With a `seed` (`monitor fit`) the pipeline starts where a replay of the fitted history
    would: the encoder from the seed's state, and each segment, when first seen without
    state of its own, from its fitted state. A restored state (`load_state_dict`) wins
    over the seed for everything it holds.
    """

    def __init__(self, cfg: MonitorConfig, encoder: CompositeEncoder,
                 seed: Seed | None = None) -> None:
        self.cfg = cfg
        self.encoder = encoder
        self.engine = Engine(cfg.score, cfg.drift, segmented=cfg.fields.segment is not None,
                             fields=cfg.fields)
        if seed is not None:
            self.encoder.load_state_dict(copy.deepcopy(seed.encoder))
            self.engine.seeds = seed.segments

    @classmethod
    def build(cls, cfg: MonitorConfig, text_model: TextModel | None = None,
              seed: Seed | None = None) -> Pipeline:
        return cls(cfg, build_encoder(cfg, text_model), seed)

    def encode(self, events: Sequence[Event]) -> tuple[Matrix, Fields | None]:
        """The events' embedding rows and each text field's own embedding (the engine's
        two inputs), for callers that keep the embeddings (replay's report)."""
        return self.encoder.encode_parts(events)

    def fit_reference(self, events: Sequence[Event]) -> dict[str, int]:
        if not events:
            return {}
        return self.engine.fit_reference(events, *self.encoder.encode_parts(events))

    def process(self, events: Sequence[Event]) -> tuple[list[Score], list[DriftAlarm]]:
        scores, alarms, _ = self.process_timed(events)
        return scores, alarms

    def process_timed(self, events: Sequence[Event]
                      ) -> tuple[list[Score], list[DriftAlarm], float]:
        """`process`, and the seconds spent embedding (the rest is scoring)."""
        if not events:
            return [], [], 0.0
        start = time.perf_counter()
        x, text = self.encoder.encode_parts(events)
        embed_s = time.perf_counter() - start
        scores, alarms = self.engine.process(events, x, text)
        return scores, alarms, embed_s

    def confirm(self, events: Sequence[Event]) -> int:
        """Feedback: the confirmed-fraud `events` become prototypes of their segments
        (embedded without teaching the encoder: its scaler state is put back, so feedback
        never shifts how normal events are encoded). Returns how many were fraud."""
        fraud = [e for e in events if e.label is True]
        if fraud:
            saved = self.encoder.state_dict()
            x, text = self.encoder.encode_parts(fraud)
            self.encoder.load_state_dict(saved)
            self.engine.confirm(fraud, x, text)
        return len(fraud)

    def numeric_scales(self) -> list[NumericScale]:
        """Each numeric field's robust centre and spread (for explanations)."""
        tab = self.encoder.tabular
        return [] if tab is None else tab.numeric_scales()

    def fitted(self) -> Fitted:
        """The encoder's and every segment's fitted state, for a seed file (`monitor fit`)."""
        segments = self.engine.fitted_states()
        return Fitted(self.encoder.state_dict(), segments,
                      sum(1 for _, v in self.engine.views() if v.ready))

    def state_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.state_dict(), "engine": self.engine.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.engine.load_state_dict(state["engine"])
