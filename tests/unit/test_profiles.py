"""Encoder profiles: the factory, its errors, the build cache, and the TextModel contract.

Fast tests use a tiny builder module written per test; the ones marked slow build the
real int8 and static models (once, cached under ~/.cache/monitor-tests/models).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from monitor.embed import build
from monitor.embed.build import built_model, fingerprint, require
from monitor.embed.profiles import load_text_model
from monitor.errors import ConfigError, FatalError
from tests.datasets import CACHE

MODELS = str(CACHE / "models")

BUILDER = """
import sys
from pathlib import Path
src, out = Path(sys.argv[1]), Path(sys.argv[2])
with open(src / "builds.log", "a") as fh:
    fh.write("built\\n")
if (src / "fail").exists():
    sys.exit("no luck: " + (src / "fail").read_text())
out.mkdir()
(out / "weights.bin").write_bytes(b"w")
(out / "meta.json").write_text('{"dim": 3}')
"""


@pytest.fixture
def builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An importable fake builder module and a fake model folder."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fake_builder.py").write_text(BUILDER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "pkg"), *sys.path]))
    source = tmp_path / "my-model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    return "fake_builder", source


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'gpu-magic'"):
        load_text_model("gpu-magic")


def test_missing_optional_package_names_it_with_an_install_hint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = build.importlib.util.find_spec
    monkeypatch.setattr(build.importlib.util, "find_spec",
                        lambda name, *a: None if name in {"onnxruntime", "model2vec"}
                        else real(name, *a))
    with pytest.raises(ConfigError, match=r"'onnx-int8' needs .*onnxruntime.*pip install"):
        load_text_model("onnx-int8")
    with pytest.raises(ConfigError, match=r"'static' needs .*model2vec.*monitor\[fast\]"):
        load_text_model("static")


BLOCKED_PROBE = """
import sys
for name in ("torch", "onnxruntime", "onnx", "model2vec", "sentence_transformers"):
    sys.modules[name] = None  # as if not installed
import monitor.embed.onnx, monitor.embed.static  # importing never needs them
from monitor.embed.profiles import load_text_model
from monitor.errors import ConfigError
for profile in ("onnx-int8", "static", "torch"):
    try:
        load_text_model(profile, device="cpu")
    except ConfigError as err:
        print(err)
"""


def test_optional_packages_fail_at_use_not_at_import() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCKED_PROBE], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert len(out) == 3, out
    assert "onnxruntime" in out[0] and "pip install 'monitor[fast]'" in out[0]
    assert "model2vec" in out[1] and "pip install 'monitor[fast]'" in out[1]
    assert "torch" in out[2] and "pip install torch==2.13.0" in out[2]


def test_require_passes_when_present() -> None:
    require("torch", "json", "numpy")


@pytest.mark.parametrize("profile", ["onnx-int8", "static"])
def test_model_path_must_be_a_local_folder(profile: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime" if profile == "onnx-int8" else "model2vec")
    with pytest.raises(ConfigError, match="not a local model directory"):
        load_text_model(profile, model=str(tmp_path / "absent"), device="cpu",
                        cache_dir=str(tmp_path))


def test_static_profile_refuses_cuda() -> None:
    with pytest.raises(ConfigError, match="static profile runs on the CPU"):
        load_text_model("static", device="cuda")


def test_onnx_cuda_needs_the_cuda_provider(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        load_text_model("onnx-int8", device="cuda", cache_dir=str(tmp_path))


def test_build_runs_once_and_is_cached(builder: tuple[str, Path], tmp_path: Path) -> None:
    module, source = builder
    cache = tmp_path / "cache"
    first = built_model("fake", "v1", source, str(cache), module)
    again = built_model("fake", "v1", source, str(cache), module)
    assert first == again and (first / "weights.bin").read_bytes() == b"w"
    assert first.parent.parent == cache and first.name == "fake-v1"
    assert first.parent.name == f"my-model-{fingerprint(source)}"
    assert (source / "builds.log").read_text().count("built") == 1
    assert sorted(p.name for p in first.parent.iterdir()) == ["fake-v1"]  # no temp left
    built_model("fake", "v2", source, str(cache), module)  # a new builder version rebuilds
    assert (source / "builds.log").read_text().count("built") == 2


def test_a_killed_build_leaves_nothing_that_lasts(builder: tuple[str, Path],
                                                  tmp_path: Path) -> None:
    module, source = builder
    folder = tmp_path / f"my-model-{fingerprint(source)}"
    old, recent = folder / ".fake-v1.tmp-1", folder / ".fake-v1.tmp-2"
    for d in (old, recent):
        d.mkdir(parents=True)
    os.utime(old, (0, 0))
    built_model("fake", "v1", source, str(tmp_path), module)
    assert sorted(p.name for p in folder.iterdir()) == [".fake-v1.tmp-2", "fake-v1"]


def test_changed_model_files_get_a_new_cache_entry(builder: tuple[str, Path],
                                                   tmp_path: Path) -> None:
    module, source = builder
    before = built_model("fake", "v1", source, str(tmp_path), module)
    (source / "config.json").write_text('{"hidden_size": 8}')
    after = built_model("fake", "v1", source, str(tmp_path), module)
    assert before != after and before.is_dir()


def test_failed_build_reports_the_child_error_and_leaves_nothing(
        builder: tuple[str, Path], tmp_path: Path) -> None:
    module, source = builder
    (source / "fail").write_text("disk on fire")
    cache = tmp_path / "cache"
    with pytest.raises(FatalError, match=r"(?s)building the fake-v1 model.*disk on fire"):
        built_model("fake", "v1", source, str(cache), module)
    assert [p.name for p in cache.rglob("*")] == [f"my-model-{fingerprint(source)}"]


def test_build_checks_the_build_time_packages_first(builder: tuple[str, Path],
                                                    tmp_path: Path) -> None:
    module, source = builder
    with pytest.raises(ConfigError, match=r"'fake' needs .*not_a_real_pkg"):
        built_model("fake", "v1", source, str(tmp_path), module, needs=["not_a_real_pkg"])
    assert not (source / "builds.log").exists()


# --- the real models (slow: the first run exports and distils, ~15 s and ~35 s) ---

TEXTS = ["refund my card payment", "my card payment needs a refund", "weather in Paris",
         "how long does it take to get a new passport " * 3]


@pytest.mark.slow
@pytest.mark.parametrize("profile,module", [("onnx-int8", "onnxruntime"),
                                            ("static", "model2vec")])
def test_profile_meets_the_text_model_contract(profile: str, module: str) -> None:
    pytest.importorskip(module, reason=f"pip install 'monitor[fast]' for {profile}")
    m = load_text_model(profile, batch_size=2, cache_dir=MODELS)
    v = m.embed(TEXTS)
    assert v.dtype == np.float32 and v.shape == (len(TEXTS), m.dim)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert m.embed([]).shape == (0, m.dim)
    assert getattr(m, "device", None) == "cpu"
    # rows come back in input order, whatever the batching inside
    np.testing.assert_allclose(m.embed(TEXTS[::-1])[::-1], v, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


@pytest.mark.slow
def test_int8_stays_close_to_torch_and_pads_to_the_longest() -> None:
    pytest.importorskip("onnxruntime", reason="pip install 'monitor[fast]'")
    from monitor.embed.onnx import OnnxTextModel
    from tests.datasets import text_model

    m = OnnxTextModel(cache_dir=MODELS)
    cos = np.sum(m.embed(TEXTS) * text_model().embed(TEXTS), axis=1)
    assert cos.min() > 0.97, cos
    assert m._tok.padding["length"] is None  # not the shipped fixed 128
    assert len(m._tok.encode_batch(["hi", "hello there"])[0].ids) == 4
    assert OnnxTextModel(cache_dir=MODELS)._session is m._session  # one session per process


OFFLINE_PROBE = """
import json, sys
from monitor.embed.profiles import load_text_model
m = load_text_model(sys.argv[1], cache_dir=sys.argv[2])
m.embed(["hello world"])
print(json.dumps({"torch": "torch" in sys.modules, "device": m.device}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("profile,module", [("onnx-int8", "onnxruntime"),
                                            ("static", "model2vec")])
def test_first_use_builds_offline_and_never_loads_torch(profile: str, module: str,
                                                        tmp_path: Path) -> None:
    """From an empty cache, with every network path dead: the build runs in a child
    process, so the serving process never imports torch."""
    pytest.importorskip(module, reason=f"pip install 'monitor[fast]' for {profile}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="",
               HF_HOME=str(tmp_path / "no-hf-home"))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(OFFLINE_PROBE), profile,
                          str(tmp_path / "models")],
                         env=env, capture_output=True, text=True, timeout=600, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "device": "cpu"}
    assert (tmp_path / "models").is_dir()
