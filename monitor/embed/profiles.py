"""Encoder profiles: which back-end embeds text.

Three profiles share one `TextModel` protocol:

- ``torch``: sentence-transformers on torch (the default, the reference for quality);
- ``onnx-int8``: the same model exported to ONNX and quantised to int8 on first use, run by
  ONNX Runtime with no torch at run time (`monitor.embed.onnx`);
- ``static``: a model2vec static model distilled from the same model on first use
  (`monitor.embed.static`), a table lookup per token.

The derived models are built and cached by `monitor.embed.build`.
"""

from __future__ import annotations

from monitor.embed import TextModel
from monitor.embed.build import require
from monitor.errors import ConfigError

PROFILES = ("torch", "onnx-int8", "static")


def load_text_model(profile: str, model: str = "default", device: str = "auto",
                    batch_size: int = 32, max_seq_length: int = 128,
                    threads: int | None = None, cache_dir: str | None = None) -> TextModel:
    """The text model of an encoder profile; every one reports its `device`.

    Heavy imports happen here, per profile, so a missing optional package fails at use.

    >>> load_text_model("tensorflow")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: embed.profile: unknown profile 'tensorflow' (choose from ...)
    """
    if profile == "torch":
        require(profile, "torch", "sentence_transformers",
                hint="pip install torch==2.13.0 sentence-transformers (core dependencies)")
        from monitor.embed.text import SentenceTransformerModel

        return SentenceTransformerModel(model, device, batch_size, max_seq_length, threads)
    if profile == "onnx-int8":
        from monitor.embed.onnx import OnnxTextModel

        return OnnxTextModel(model, device, batch_size, max_seq_length, threads, cache_dir)
    if profile == "static":
        from monitor.embed.static import StaticTextModel

        return StaticTextModel(model, device, batch_size, max_seq_length, threads, cache_dir)
    raise ConfigError(f"embed.profile: unknown profile {profile!r} "
                      f"(choose from {', '.join(PROFILES)})")
