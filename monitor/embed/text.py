"""Text block: sentence-transformers embeddings of text fields, cached per distinct text."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from monitor.embed import Fields, Matrix, TextModel, l2_normalise
from monitor.embed.build import source_dir
from monitor.embed.cache import EmbeddingCache
from monitor.errors import ConfigError
from monitor.events import Event

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pick_device(requested: str) -> str:
    """"auto" becomes "cuda" when torch sees a GPU, else "cpu"."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("embed.device is cuda but torch sees no GPU")
    return requested


class SentenceTransformerModel:
    """all-MiniLM-L6-v2 (or any local sentence-transformers folder), loaded offline.

    The hub is never contacted: HF_HUB_OFFLINE is forced on before the import, and the
    model path must be a local directory.
    """

    def __init__(
        self,
        model: str = "default",
        device: str = "auto",
        batch_size: int = 32,
        max_seq_length: int = 128,
        threads: int | None = None,
    ) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        path = source_dir(model)
        self.device = pick_device(device)
        if self.device == "cpu":
            torch.set_num_threads(threads or usable_cores())
        self.batch_size = batch_size
        self.path = path
        self._model = SentenceTransformer(str(path), device=self.device)
        self._model.max_seq_length = max_seq_length
        dim = self._model.get_embedding_dimension()
        self._dim = int(dim) if dim is not None else 384
        log.info("loaded text model %s on %s (dim %d)", path, self.device, self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        out = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


class TextEncoder:
    """Embeds each text field of each event once per distinct text, then composes.

    An event's text block is the normalised mean of its non-empty fields' embeddings, so
    `{"merchant": "ACME", "description": "..."}` costs one model call per new string.
    """

    def __init__(self, model: TextModel, fields: Sequence[str], cache_size: int) -> None:
        self.model = model
        self.fields = list(fields)
        self.cache = EmbeddingCache(cache_size)
        self.texts_embedded = 0

    @property
    def dim(self) -> int:
        return self.model.dim

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embeddings of `texts` in order, calling the model only for cache misses."""
        rows: dict[str, Any] = {}
        missing: list[str] = []
        for t in texts:
            if t in rows:
                continue
            hit = self.cache.get(t)
            if hit is None:
                rows[t] = None
                missing.append(t)
            else:
                rows[t] = hit
        if missing:
            self.texts_embedded += len(missing)
            fresh = self.model.embed(missing)
            for t, v in zip(missing, fresh, strict=True):
                rows[t] = v
                self.cache.put(t, v)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([rows[t] for t in texts]).astype(np.float32, copy=False)

    def encode(self, events: Sequence[Event]) -> Matrix:
        """One unit row per event: the normalised sum of its fields' embeddings."""
        return l2_normalise(self.encode_fields(events).sum(axis=1))

    def encode_fields(self, events: Sequence[Event]) -> Fields:
        """(events, fields, dim): each text field's own unit embedding, zeros where the
        field is empty (the per-field evidence judges each field on its own)."""
        fields = self.fields or ["template"]
        texts = [e.text.get(f, "") for e in events for f in fields]
        nonempty = sorted({t for t in texts if t})
        # one row per distinct text, plus a zero row that empty fields point at; one
        # gather builds every field of every event
        table = np.vstack([self.embed_texts(nonempty), np.zeros((1, self.dim), np.float32)])
        row = {t: i for i, t in enumerate(nonempty)}
        empty = len(nonempty)
        idx = np.fromiter((row.get(t, empty) for t in texts), np.int64, len(texts))
        out: Fields = table[idx].reshape(len(events), len(fields), -1)
        return out
