"""The reference seed file: what `monitor fit` writes and a pipeline can start from.

Without it every (partition, segment) warms up on live traffic: `score.warmup` events
unscored, and a reference learned from whatever arrives, an attack included. A seed holds
the state `monitor replay --reference` would build from vetted history (each segment's
fitted reference, calibration and prototypes, and the encoder's scaler after reading the
history), so a seeded pipeline scores from its first event, exactly as that replay would.

Layout: a magic line, one JSON header line (``head -2 seed.mon`` shows it), then the body
in the snapshot codec, ``{"encoder": ..., "segments": {name: state}}`` (a segment's state
without its drift watch: see `fitted_state`). The header keeps
the config sections a fitted state depends on, so a seed fitted under other settings is
refused at start-up with the keys that differ, never loaded into the wrong shapes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from monitor import __version__
from monitor.config import MonitorConfig
from monitor.errors import ConfigError, DecodeError, MonitorError
from monitor.state.codec import MAGIC, decode_state, encode_state


@dataclass(frozen=True, slots=True)
class Fitted:
    """What a seed file keeps of a fitted pipeline: the encoder's state, each segment's
    fitted state, and how many segments have a reference."""

    encoder: dict[str, Any]
    segments: dict[str, dict[str, Any]]
    ready: int

SEED_MAGIC = b"MONITOR-SEED\n"
SEED_FORMAT = 1  # the file layout (magic, header, body); the state layout is MAGIC's
FITTED = ("fields", "embed", "score")  # the sections a fitted state depends on
# keys of those sections that say how fast, where or with what cap the monitor runs, or
# where the outlier line is drawn, but not what a fitted segment holds: changing them
# keeps a seed valid. The drift section is not fitted at all: a seeded segment takes a
# fresh drift watch from the running config (a fit never feeds the watch).
RUNTIME_KEYS: dict[str, tuple[str, ...]] = {
    "fields": ("required", "max_event_bytes"),
    "embed": ("device", "batch_size", "threads", "cache_dir", "cache_size"),
    "score": ("alpha", "max_segments"),
}
# keys added after seeds were first written, with the value that changes nothing: at that
# value they are left out of the header, so a seed fitted before them stays valid
ADDED_KEYS: dict[str, dict[str, Any]] = {
    "fields": {"segment_buckets": {}},
}


def fitted_config(cfg: MonitorConfig) -> dict[str, dict[str, Any]]:
    """The config values a seed must agree on, section by section."""
    out = {}
    for section in FITTED:
        tree = getattr(cfg, section).model_dump(mode="json")
        for key in RUNTIME_KEYS.get(section, ()):
            tree.pop(key, None)
        for key, neutral in ADDED_KEYS.get(section, {}).items():
            if tree.get(key) == neutral:
                del tree[key]
        out[section] = tree
    return out


def fingerprint(cfg: MonitorConfig) -> str:
    """A short digest of `fitted_config`: equal digests, compatible seed.

    >>> from monitor.config import parse_config
    >>> a = parse_config({"fields": {"numeric": [{"name": "x"}]}})
    >>> b = parse_config({"fields": {"numeric": [{"name": "x"}]}, "score": {"alpha": 0.01}})
    >>> c = parse_config({"fields": {"numeric": [{"name": "x"}]}, "score": {"warmup": 99}})
    >>> fingerprint(a) == fingerprint(b), fingerprint(a) == fingerprint(c)
    (True, False)
    """
    raw = orjson.dumps(fitted_config(cfg), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Seed:
    """A decoded seed file: its header, the encoder's state and each segment's state.

    The state trees are shared by every pipeline seeded from it and must not be changed:
    `Pipeline` and `Engine` load copies.
    """

    header: dict[str, Any]
    encoder: dict[str, Any]
    segments: Mapping[str, dict[str, Any]]

    def describe(self) -> str:
        h = self.header
        return (f"{h['segments']:,} segment(s) fitted on {h['events']:,} events at "
                f"{h['created']}")


def seed_of(fitted: Fitted, cfg: MonitorConfig, events: int, rejected: int,
            history: str, created: float) -> Seed:
    """The seed of a pipeline that has just read its history (`Pipeline.fitted()` after
    `load_reference`)."""
    header = {
        "format": SEED_FORMAT, "state_format": MAGIC.decode(), "monitor": __version__,
        "fingerprint": fingerprint(cfg), "config": fitted_config(cfg),
        "history": Path(history).name, "events": events, "rejected": rejected,
        "segments": len(fitted.segments), "ready": fitted.ready,
        "created": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds"),
    }
    return Seed(header, fitted.encoder, fitted.segments)


def write_seed(path: str | Path, seed: Seed) -> int:
    """Write `seed` atomically (a crashed fit never leaves half a file); returns its size."""
    body = encode_state({"encoder": seed.encoder, "segments": dict(seed.segments)})
    header = {**seed.header, "body_sha256": hashlib.sha256(body).hexdigest()}
    data = SEED_MAGIC + orjson.dumps(header) + b"\n" + body
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise MonitorError(f"cannot write {path}: {err.strerror or err}") from None
    return len(data)


def read_seed(path: str | Path, cfg: MonitorConfig, what: str = "seed file") -> Seed:
    """Read and check a seed file against `cfg`; any fault is one `ConfigError` line that
    starts with `what` (the key or option that named the file)."""
    where = f"{what} {str(path)!r}"
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"{where}: {err.strerror or err}") from None
    if not data.startswith(SEED_MAGIC):
        raise ConfigError(f"{where} is not a seed file (write one with `monitor fit`)")
    line, _, body = data[len(SEED_MAGIC):].partition(b"\n")
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ConfigError(f"{where}: unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != SEED_FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise ConfigError(f"{where}: seed format {found!r}, this release reads {SEED_FORMAT}: "
                          "re-run `monitor fit`")
    if header.get("state_format") != MAGIC.decode():
        raise ConfigError(f"{where} was fitted by another release (state format "
                          f"{header.get('state_format')}, this one reads {MAGIC.decode()}): "
                          "re-run `monitor fit`")
    _check_config(where, header, cfg)
    if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise ConfigError(f"{where} is truncated or corrupt (checksum mismatch)")
    try:
        tree = decode_state(body)
        return Seed(header, dict(tree["encoder"]), dict(tree["segments"]))
    except (DecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{where} is corrupt ({err})") from None


def _check_config(where: str, header: dict[str, Any], cfg: MonitorConfig) -> None:
    if header.get("fingerprint") == fingerprint(cfg):
        return
    theirs, ours = _flat(header.get("config") or {}), _flat(fitted_config(cfg))
    diff = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    said = "; ".join(f"{k}: {_show(theirs.get(k))} in the file, {_show(ours.get(k))} here"
                     for k in diff[:3])
    more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
    raise ConfigError(f"{where} was fitted with other settings ({said or 'unknown'}{more}): "
                      "re-run `monitor fit` with this config")


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping (lists stay values).

    >>> _flat({"score": {"k": 5, "warmup": 9}})
    {'score.k': 5, 'score.warmup': 9}
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _show(value: Any) -> str:
    return "unset" if value is None else orjson.dumps(value).decode()


def load_seed(cfg: MonitorConfig) -> Seed | None:
    """The seed `checkpoint.seed_file` names, read and checked once at start-up."""
    path = cfg.checkpoint.seed_file
    return None if path is None else read_seed(path, cfg, "checkpoint.seed_file")
