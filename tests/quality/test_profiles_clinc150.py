"""CLINC150 out-of-scope AUROC per encoder profile (issue 7, targets 3 and 4).

The protocol of test_clinc150.py (reference = 15,000 in-scope train queries; stream =
4,500 in-scope test + 1,000 oos_test queries shuffled with Random(150); labels fed back),
run once with the torch embeddings (the baseline) and once per fast profile. Derived
models are built on first use under the test cache (~/.cache/monitor-tests/models).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.embed import TextModel
from monitor.pipeline import Pipeline
from monitor.tools.replay import replay
from tests.datasets import CACHE, PrecomputedTextModel, clinc150, embed_texts, write_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.data]

CONFIG = {"fields": {"id": "id", "text": ["text"], "label": "label", "positive": ["oos"]},
          "score": {"alpha": 0.01}}
MODELS = CACHE / "models"
INT8_MAX_LOSS = 0.005
# measured 0.9012 (torch 0.9683): a floor against a broken distillation, not a target
STATIC_FLOOR = 0.88


@pytest.fixture(scope="module")
def clinc_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    d = clinc150()
    train = [t for t, _ in d["train"]]
    stream = [(t, "in") for t, _ in d["test"]] + [(t, "oos") for t, _ in d["oos_test"]]
    random.Random(150).shuffle(stream)
    tmp = tmp_path_factory.mktemp("clinc-profiles")
    ref = write_jsonl(tmp / "reference.jsonl",
                      [{"id": f"train-{i}", "text": t, "label": "in"} for i, t in enumerate(train)])
    src = write_jsonl(tmp / "stream.jsonl", [{"id": f"s-{i}", "text": t, "label": lab}
                                             for i, (t, lab) in enumerate(stream)])
    order = train + [t for t, _ in d["test"]] + [t for t, _ in d["oos_test"]]
    return ref, src, order


def run(files: tuple[Path, Path, list[str]], model: TextModel) -> dict[str, Any]:
    ref, src, _ = files
    cfg = parse_config(CONFIG)
    report = replay(cfg, str(src), Pipeline.build(cfg, model), reference=str(ref),
                    progress=False, feedback=True)
    assert report["events"] == 5500 and report["scored"] == 5500
    return report


@pytest.fixture(scope="module")
def torch_auroc(clinc_files: tuple[Path, Path, list[str]]) -> float:
    """The default profile, from the embeddings the other quality tests cache on disk."""
    order = clinc_files[2]
    auroc = float(run(clinc_files, PrecomputedTextModel(order, embed_texts(order)))["auroc"])
    print(f"CLINC150 AUROC torch: {auroc:.4f}")
    return auroc


def profile_model(profile: str, *modules: str) -> TextModel:
    for module in modules:
        pytest.importorskip(module, reason=f"profile {profile} needs {module} "
                            "(pip install 'monitor[fast]')")
    from monitor.embed.profiles import load_text_model

    return load_text_model(profile, cache_dir=str(MODELS))


# the model fixtures come first in each test's arguments: a missing optional package
# skips the test before the baseline is computed
@pytest.fixture(scope="module")
def int8_model() -> TextModel:
    return profile_model("onnx-int8", "onnxruntime", "onnx")


@pytest.fixture(scope="module")
def static_model() -> TextModel:
    return profile_model("static", "model2vec", "skeletoken")


def test_int8_auroc_within_0005_of_torch(int8_model: TextModel,
                                         clinc_files: tuple[Path, Path, list[str]],
                                         torch_auroc: float) -> None:
    auroc = float(run(clinc_files, int8_model)["auroc"])
    print(f"CLINC150 AUROC onnx-int8: {auroc:.4f} (torch {torch_auroc:.4f}, "
          f"diff {auroc - torch_auroc:+.4f})")
    assert auroc >= torch_auroc - INT8_MAX_LOSS, (auroc, torch_auroc)


def test_static_auroc_reported(static_model: TextModel,
                               clinc_files: tuple[Path, Path, list[str]],
                               torch_auroc: float) -> None:
    auroc = float(run(clinc_files, static_model)["auroc"])
    print(f"CLINC150 AUROC static: {auroc:.4f} (torch {torch_auroc:.4f}, "
          f"diff {auroc - torch_auroc:+.4f})")
    assert auroc >= STATIC_FLOOR, auroc
