"""The ``static`` profile: a model2vec static model distilled from the local model.

Distillation (`build`, run once in a child process by
`monitor.embed.build.built_model`) passes every token of the model's vocabulary through
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
import numpy.typing as npt
from scipy import sparse  # type: ignore[import-untyped]

from monitor.embed import Matrix, l2_normalise
from monitor.embed.build import built_model, require, source_dir
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
        static: Any = model2vec.StaticModel.from_pretrained(str(self.path), normalize=True)
        self._dim = int(static.dim)
        self._tokenizer = static.tokenizer
        self._tokenizer.enable_truncation(max_length=max_seq_length)
        self._unk = static.unk_token_id
        self._max_chars = max_seq_length * int(static.median_token_length)
        self._table = np.asarray(static.embedding, np.float32)  # float32: exact sums
        self._mapping = (None if static.token_mapping is None
                         else np.asarray(static.token_mapping, np.int64))
        self._weights = (None if static.weights is None
                         else np.asarray(static.weights, np.float32))
        log.info("loaded static model %s (dim %d)", self.path, self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        """model2vec's encoding (truncate, tokenise, drop unknown tokens, weighted mean of
        the token rows, L2-normalise) with the mean as one sparse matrix product over the
        whole batch: model2vec pools sentence by sentence in float16, which cost as much
        as the (Rust, multi-core) tokeniser."""
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        encodings = self._tokenizer.encode_batch_fast([t[: self._max_chars] for t in texts],
                                                      add_special_tokens=False)
        ids = [e.ids for e in encodings]
        lens = np.fromiter(map(len, ids), np.int64, len(ids))
        flat = np.fromiter((i for row in ids for i in row), np.int64, int(lens.sum()))
        owner = np.repeat(np.arange(len(ids)), lens)
        if self._unk is not None:
            keep = flat != self._unk
            flat, owner = flat[keep], owner[keep]
        return l2_normalise(mean_rows(self._table, flat, owner, len(ids), self._mapping,
                                      self._weights))


def mean_rows(table: Matrix, ids: npt.NDArray[np.int64], owner: npt.NDArray[np.int64],
              n: int, mapping: npt.NDArray[np.int64] | None = None,
              weights: npt.NDArray[np.float32] | None = None) -> Matrix:
    """Row i: the mean of `table[mapping[t]] * weights[t]` over tokens t with owner i
    (zeros when it has none), as one CSR-times-dense product.

    >>> table = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    >>> mean_rows(table, np.array([0, 1, 2]), np.array([0, 0, 2]), 3).tolist()
    [[0.5, 0.5], [0.0, 0.0], [1.0, 1.0]]
    """
    counts = np.bincount(owner, minlength=n)
    share = (1.0 / np.maximum(counts, 1))[owner].astype(np.float32)
    if weights is not None:
        share *= weights[ids]
    cols = ids if mapping is None else mapping[ids]
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rows = sparse.csr_matrix((share, cols, indptr), shape=(n, len(table)))
    return np.asarray(rows @ table, np.float32)


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
