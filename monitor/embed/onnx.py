"""The ``onnx-int8`` profile: ONNX Runtime, int8 weights, no torch at run time.

On first use the local model is exported to ONNX with torch, checked against torch, and
quantised dynamically to int8 (`build`, run in a child process by
`monitor.embed.build.built_model`); the result is cached on disk. At run time only
`onnxruntime`, `tokenizers` and numpy are used: tokenise, run, mean-pool over the
attention mask, L2-normalise, which is what the sentence-transformers model computes.

Quantisation: weights int8 per output channel with a reduced range, MatMul nodes only.
On these AVX2 cores (no VNNI) int8 x uint8 products can saturate: per-tensor int8 weights
kept a mean cosine of 0.96 to the torch embeddings, per-channel reduced-range 0.991.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.embed import Matrix, l2_normalise
from monitor.embed.build import built_model, require, source_dir
from monitor.embed.text import usable_cores
from monitor.errors import ConfigError

log = logging.getLogger(__name__)

VERSION = "v1"  # bump when `build` changes, so old caches are rebuilt
BUILD_NEEDS = ("torch", "transformers", "onnx", "onnxruntime")
_SESSIONS: dict[tuple[str, str, int], Any] = {}
_LOCK = threading.Lock()


def mean_pool(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> Matrix:
    """Average of the token vectors the attention mask keeps.

    >>> h = np.array([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]], dtype=np.float32)
    >>> mean_pool(h, np.array([[1, 1, 0]])).tolist()
    [[2.0, 3.0]]
    """
    m = mask[..., None].astype(np.float32)
    pooled: Matrix = ((hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None))
    return pooled.astype(np.float32, copy=False)


def _session(ort: Any, path: Path, device: str, threads: int) -> Any:
    """One inference session per model file and device in this process."""
    key = (str(path), device, threads)
    with _LOCK:
        if key not in _SESSIONS:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda"
                         else ["CPUExecutionProvider"])
            _SESSIONS[key] = ort.InferenceSession(str(path), so, providers=providers)
        return _SESSIONS[key]


def pick_device(ort: Any, requested: str) -> str:
    """"auto" is "cuda" when ONNX Runtime has its CUDA provider (onnxruntime-gpu), else "cpu"."""
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if requested == "cuda" and not has_cuda:
        raise ConfigError("embed.device is cuda but ONNX Runtime has no CUDA provider "
                          "(pip install onnxruntime-gpu in place of onnxruntime)")
    return "cuda" if requested == "cuda" or (requested == "auto" and has_cuda) else "cpu"


class OnnxTextModel:
    """The local sentence-transformers model, exported once, run by ONNX Runtime in int8.

    On CUDA the fp32 export runs instead: dynamic int8 quantisation is a CPU optimisation.
    """

    def __init__(self, model: str = "default", device: str = "auto", batch_size: int = 32,
                 max_seq_length: int = 128, threads: int | None = None,
                 cache_dir: str | None = None) -> None:
        require("onnx-int8", "onnxruntime", "tokenizers")
        ort = importlib.import_module("onnxruntime")
        tokenizers = importlib.import_module("tokenizers")
        source = source_dir(model)
        self.device = pick_device(ort, device)
        self.batch_size = batch_size
        self.threads = threads or usable_cores()
        self.path = built_model("onnx-int8", VERSION, source, cache_dir, __name__,
                                needs=BUILD_NEEDS)
        meta = json.loads((self.path / "meta.json").read_text())
        self._dim = int(meta["dim"])
        self.max_seq_length = min(max_seq_length, int(meta["max_positions"]))
        tok = tokenizers.Tokenizer.from_file(str(self.path / "tokenizer.json"))
        pad = tok.padding or {"pad_id": 0, "pad_token": "[PAD]"}
        # the shipped tokenizer.json pads every text to 128: pad to the batch's longest
        tok.enable_padding(pad_id=pad["pad_id"], pad_token=pad["pad_token"])
        tok.enable_truncation(max_length=self.max_seq_length)
        self._tok = tok
        weights = "model.int8.onnx" if self.device == "cpu" else "model.onnx"
        self._session = _session(ort, self.path / weights, self.device, self.threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        log.info("loaded %s (%s) on %s with %d threads (dim %d)", self.path, weights,
                 self.device, self.threads, self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    def _run(self, texts: list[str]) -> Matrix:
        enc = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(["last_hidden_state"], feeds)[0]
        return mean_pool(np.asarray(hidden, dtype=np.float32), mask)

    def embed(self, texts: Sequence[str]) -> Matrix:
        out = np.zeros((len(texts), self._dim), np.float32)
        # texts of similar length share a batch, so little of each batch is padding
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._run([texts[i] for i in idx])
        return l2_normalise(out)


def build(source: Path, out: Path) -> None:  # pragma: no cover - runs in a child process
    """Export `source` to ONNX (fp32), check it against torch, quantise to int8."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    quant = importlib.import_module("onnxruntime.quantization")

    out.mkdir(parents=True)
    torch.set_num_threads(usable_cores())
    # eager attention traces to plain ops whose padding mask follows the input shapes
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]

    dummy = torch.ones((2, 8), dtype=torch.long)
    torch.onnx.export(Hidden(), (dummy, dummy, torch.zeros_like(dummy)), str(out / "model.onnx"),
                      input_names=names, output_names=["last_hidden_state"],
                      dynamic_axes={n: {0: "batch", 1: "tokens"}
                                    for n in [*names, "last_hidden_state"]},
                      opset_version=17, dynamo=False)
    # a fresh model as the reference: the traced one is not left as it was
    fresh = AutoModel.from_pretrained(str(source)).eval()
    _check_export(fresh, AutoTokenizer.from_pretrained(str(source)), out / "model.onnx")
    quant.quantize_dynamic(str(out / "model.onnx"), str(out / "model.int8.onnx"),
                           weight_type=quant.QuantType.QInt8, per_channel=True,
                           reduce_range=True, op_types_to_quantize=["MatMul"])
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    meta = {"version": VERSION, "source": str(source), "dim": model.config.hidden_size,
            "max_positions": model.config.max_position_embeddings}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def _check_export(model: Any, tokenizer: Any, path: Path) -> None:  # pragma: no cover
    """The fp32 export must match torch on a padded batch of uneven texts."""
    import torch

    ort = importlib.import_module("onnxruntime")
    texts = ["hi", "a much longer sentence, so the first one is padded in this batch"]
    enc = tokenizer(texts, padding=True, return_tensors="np")
    feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with torch.inference_mode():
        want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})[0].numpy()
    a, b = mean_pool(got, feeds["attention_mask"]), mean_pool(want, feeds["attention_mask"])
    if not np.allclose(a, b, atol=1e-4):
        raise RuntimeError(f"ONNX export differs from torch (max {np.abs(a - b).max():.2e})")


if __name__ == "__main__":  # pragma: no cover
    build(Path(sys.argv[1]), Path(sys.argv[2]))
