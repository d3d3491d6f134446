"""Shared test data: the labelled public datasets in ../shared/data and their embeddings.

Each dataset is read from ../shared/data at run time (never copied into the repo); tests
skip with a clear reason when it is absent. Text embeddings come from the real model,
computed once per test session and cached on disk under ~/.cache/monitor-tests (keyed by
the model files and the texts), because the model encodes only ~100 texts/s here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MONITOR_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("MONITOR_TEST_CACHE", Path.home() / ".cache" / "monitor-tests"))


def need(*parts: str) -> Path:
    """Path to a dataset file, or skip the test saying what is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset not available: {path} (put ../shared/data beside the repo)")
    return path


@cache
def text_model() -> Any:
    from monitor.embed.text import SentenceTransformerModel

    return SentenceTransformerModel()


def _model_digest() -> str:
    from monitor.embed.build import default_model_path

    weights = default_model_path() / "model.safetensors"
    # size and the first MiB identify the weights in any venv (mtimes differ per install)
    with open(weights, "rb") as fh:
        head = hashlib.sha256(fh.read(1 << 20)).hexdigest()[:16]
    return f"{weights.stat().st_size}-{head}"


def embed_texts(texts: list[str]) -> np.ndarray:
    """Real embeddings of `texts`, computed once and kept in the disk cache."""
    h = hashlib.sha256(_model_digest().encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    path = CACHE / f"emb-{h.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    vectors = text_model().embed(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


class PrecomputedTextModel:
    """A `TextModel` that answers from real embeddings computed beforehand (tests only)."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.table = {t: v for t, v in zip(texts, vectors, strict=True)}
        self._dim = int(vectors.shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Any) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            fresh = text_model().embed(missing)
            self.table.update(zip(missing, fresh, strict=True))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


@cache
def clinc150() -> dict[str, list[list[str]]]:
    data: dict[str, list[list[str]]] = json.loads(need("clinc150", "data_full.json").read_text())
    return data


@cache
def ag_news() -> tuple[list[int], list[str]]:
    labels, texts = [], []
    with open(need("ag_news", "test.csv"), newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            labels.append(int(row[0]))
            texts.append(f"{row[1]}. {row[2]}")
    return labels, texts


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path
