"""The ``static`` profile: a model2vec static model distilled from the local model.

Distillation (`build`, run once in a child process by
`monitor.embed.profiles.built_model`) passes every token of the model's vocabulary through
the transformer, reduces the outputs with PCA and weights them by token frequency (SIF);
a text's embedding is then the mean of its tokens' rows: no transformer at run time, only
`tokenizers` and numpy. model2vec is given the loaded model and tokenizer objects, so it
never resolves a hub name and works offline.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monitor.embed import Matrix, l2_normalise
from monitor.embed.profiles import built_model, require, source_dir
from monitor.embed.text import usable_cores
from monitor.errors import ConfigError

log = logging.getLogger(__name__)

VERSION = "v1"  # bump when `build` changes, so old caches are rebuilt
PCA_DIMS = 256  # model2vec's default
BUILD_NEEDS = ("torch", "transformers", "model2vec", "skeletoken")


class StaticTextModel:
    """Token-embedding lookup and mean: orders of magnitude faster, measurably weaker.

    Runs on the CPU whatever `device` says ("auto" and "cpu" are accepted); the one-off
    distillation uses CUDA when torch sees it.
    """

    def __init__(self, model: str = "default", device: str = "auto", batch_size: int = 32,
                 max_seq_length: int = 128, threads: int | None = None,
                 cache_dir: str | None = None) -> None:
        if device == "cuda":
            raise ConfigError("embed.device is cuda, but the static profile runs on the CPU "
                              "(a table lookup); use device auto or cpu")
        require("static", "model2vec", "tokenizers")
        model2vec = importlib.import_module("model2vec")
        source = source_dir(model)
        self.device = "cpu"
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.threads = threads or usable_cores()
        self.path = built_model("static", VERSION, source, cache_dir, __name__,
                                needs=BUILD_NEEDS)
        self._model: Any = model2vec.StaticModel.from_pretrained(str(self.path), normalize=True)
        self._dim = int(self._model.dim)
        log.info("loaded static model %s (dim %d)", self.path, self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        # one call: batching buys nothing for a lookup; no worker threads in a daemon
        out = self._model.encode(list(texts), max_length=self.max_seq_length,
                                 batch_size=max(1024, self.batch_size),
                                 use_multiprocessing=False)
        return l2_normalise(np.asarray(out, dtype=np.float32))


def build(source: Path, out: Path) -> None:  # pragma: no cover - runs in a child process
    """Distil `source` into a model2vec static model saved in `out`."""
    import torch
    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(usable_cores())
    model = AutoModel.from_pretrained(str(source))
    tokenizer: Any = AutoTokenizer.from_pretrained(str(source))  # a fast (Rust) tokenizer
    static = distill_from_model(model=model, tokenizer=tokenizer, pca_dims=PCA_DIMS)
    static.save_pretrained(str(out))
    meta = {"version": VERSION, "source": str(source), "dim": int(static.dim),
            "pca_dims": PCA_DIMS}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":  # pragma: no cover
    build(Path(sys.argv[1]), Path(sys.argv[2]))
