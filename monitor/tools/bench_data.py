"""Inputs and offline parts of `monitor bench`: seeded event shapes, RSS, the engine
micro-benchmark and the bounded-memory check (no Kafka, no model for the engine part).

Shapes (every event a JSON line, like the daemon consumes):

- ``unique``: text-heavy, each event a different two-sentence support-ticket/news-like
  text of about 30 words (random tokens make every text unique: no cache can help);
- ``repeating``: card transactions whose text fields (merchant, category, description)
  take at most 1,000 distinct values each, drawn Zipf-like as real merchant names are.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

if TYPE_CHECKING:
    from monitor.events import Event

SHAPES = ("unique", "repeating")
_SUBJ = ["my card", "the transfer", "our account", "the new phone", "this invoice", "the app",
         "my booking", "the delivery", "the refund", "the router", "my pension", "the team"]
_VERB = ["was declined", "never arrived", "keeps crashing", "was charged twice", "got delayed",
         "shows the wrong balance", "needs to be cancelled", "was approved", "stopped working",
         "was moved to tomorrow", "beat expectations", "lost value overnight"]
_ASK = ["can you check what happened", "please tell me how to fix it", "what should I do next",
        "analysts expect more news soon", "how long will this take", "is there a fee for this",
        "I would like to speak to someone", "officials declined to comment further"]
_WORDS = ["alpha", "bravo", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo",
          "juniper", "kestrel", "lumen", "meadow", "nickel", "onyx", "pepper", "quartz", "raven",
          "sierra", "tundra", "umber", "violet", "willow", "xenon", "yarrow", "zephyr"]
_CATEGORIES = ["groceries", "fuel", "restaurants", "transport", "utilities", "travel", "gaming",
               "electronics", "pharmacy", "clothing", "insurance", "education", "charity",
               "entertainment", "home improvement", "subscriptions", "gifts", "pets",
               "healthcare", "parking"]
_COUNTRIES = ["GB"] * 16 + ["FR", "DE", "ES", "NL"]
MAX_DISTINCT = 1000


def _unique_text(rng: np.random.Generator, i: int) -> str:
    def pick(xs: list[str]) -> str:
        return xs[int(rng.integers(len(xs)))]

    tokens = " ".join(pick(_WORDS) for _ in range(4))
    return (f"{pick(_SUBJ).capitalize()} {pick(_VERB)} after the {tokens} update on "
            f"ticket {i}-{int(rng.integers(1_000_000))}; {pick(_ASK)} about {pick(_SUBJ)} "
            f"which {pick(_VERB)}.")


def _vocab(rng: np.random.Generator, n: int, kind: str) -> list[str]:
    """`n` distinct names such as "Cedar Onyx Store 12" or "raven quartz purchase ref 3"."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        a, b = _WORDS[int(rng.integers(len(_WORDS)))], _WORDS[int(rng.integers(len(_WORDS)))]
        num = int(rng.integers(100))
        name = (f"{a.capitalize()} {b.capitalize()} {kind} {num}" if kind != "purchase"
                else f"{a} {b} purchase ref {num}")
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _zipf(rng: np.random.Generator, n: int, size: int, a: float = 1.1) -> npt.NDArray[np.int64]:
    weights = 1.0 / np.arange(1, n + 1) ** a
    return rng.choice(n, size=size, p=weights / weights.sum())


def generate_lines(shape: str, events: int, segments: int = 1, seed: int = 11,
                   start: int = 0) -> list[bytes]:
    """`events` JSON lines of `shape`; segment field ``segment`` takes `segments` values."""
    rng = np.random.default_rng(seed + start)
    seg = (_zipf(rng, segments, events, 0.8) if segments > 1
           else np.zeros(events, dtype=np.int64))
    ts = 1_767_225_600.0 + start
    if shape == "unique":
        return [orjson.dumps({"id": f"ev-{start + i}", "ts": ts + i, "segment": f"s{seg[i]}",
                              "text": _unique_text(rng, start + i)}) for i in range(events)]
    if shape != "repeating":
        raise ValueError(f"unknown shape {shape!r} (choose from {', '.join(SHAPES)})")
    vocab = np.random.default_rng(seed)  # same distinct values in every chunk of a stream
    merchants = _vocab(vocab, MAX_DISTINCT, "Store")
    descriptions = _vocab(vocab, MAX_DISTINCT, "purchase")
    m, d = _zipf(rng, len(merchants), events), _zipf(rng, len(descriptions), events)
    c = _zipf(rng, len(_CATEGORIES), events, 0.7)
    amount = np.round(np.exp(rng.normal(3.5, 1.0, events)), 2)
    return [orjson.dumps({"id": f"tx-{start + i}", "ts": ts + i, "segment": f"s{seg[i]}",
                          "merchant": merchants[m[i]], "category": _CATEGORIES[c[i]],
                          "description": descriptions[d[i]], "amount": float(amount[i]),
                          "country": _COUNTRIES[int(rng.integers(len(_COUNTRIES)))]})
            for i in range(events)]


def fields_config(shape: str, segmented: bool) -> dict[str, Any]:
    """The `fields` section that reads a shape's events."""
    seg = {"segment": "segment"} if segmented else {}
    if shape == "unique":
        return {"id": "id", "timestamp": "ts", "text": ["text"], **seg}
    return {"id": "id", "timestamp": "ts", "text": ["merchant", "category", "description"],
            "numeric": [{"name": "amount", "log": True}], "categorical": ["country"], **seg}


def full_text(record: dict[str, Any]) -> str:
    """The whole text of an event, as a cache-less consumer would embed it."""
    if "text" in record:
        return str(record["text"])
    return f"{record['merchant']} {record['category']} {record['description']}"


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:  # pragma: no cover - not Linux
        return 0.0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def unit_rows(rng: np.random.Generator, centres: npt.NDArray[np.float64],
              which: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    x = (centres[which] + rng.normal(size=(len(which), centres.shape[1])) * 0.5)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


MIXED_FIELDS: dict[str, Any] = {  # per-field evidence on: text beside 6 numerics, 3
    # categoricals and a timestamp (the text is not encoded here: vectors come given)
    "segment": "segment", "timestamp": "ts", "text": ["t"],
    "numeric": [{"name": f"n{j}"} for j in range(6)], "categorical": ["a", "b", "c"]}


Batch = tuple[list["Event"], npt.NDArray[np.float32]]


def _batch_maker(rng: np.random.Generator, segments: int, dim: int,
                 mixed: bool) -> Callable[[int, int], Batch]:
    """`make(n, base)`: n events over `segments` segments (with tabular fields when
    `mixed`) and their unit vectors, clustered 4 per segment."""
    from monitor.events import Event

    centres = rng.normal(size=(segments * 4, dim))

    def make(n: int, base: int) -> Batch:
        seg = rng.integers(segments, size=n)
        if mixed:
            num, cat = rng.normal(size=(n, 6)), rng.integers(50, size=(n, 3))
            evs = [Event(id=str(base + i), segment=f"s{s}", timestamp=1.7e9 + base + i,
                         numeric={f"n{j}": float(num[i, j]) for j in range(6)},
                         categorical={c: str(cat[i, j]) for j, c in enumerate("abc")})
                   for i, s in enumerate(seg)]
        else:
            evs = [Event(id=str(base + i), segment=f"s{s}", timestamp=1.7e9 + base + i)
                   for i, s in enumerate(seg)]
        return evs, unit_rows(rng, centres, seg * 4 + rng.integers(4, size=n))

    return make


def engine_cost(segments: int = 64, k: int = 32, batch: int = 256, dim: int = 384,
                batches: int = 40, seed: int = 0, big_batch: int = 2048,
                repeats: int = 3, mixed: bool = False) -> dict[str, float]:
    """Microseconds per event of scoring + drift (`Engine.process`) and of the per-event
    metric updates, at `segments` warm segments of `k` centroids, random unit vectors.

    Each figure is the best of `repeats` passes over fresh batches: on a shared machine
    the slower passes measure the neighbours.
    """
    from monitor.config import parse_config
    from monitor.embed.composite import CompositeEncoder
    from monitor.embed.tabular import TabularEncoder
    from monitor.observer import Observer
    from monitor.pipeline import Pipeline

    rng = np.random.default_rng(seed)
    fields = MIXED_FIELDS if mixed else {"segment": "segment", "numeric": [{"name": "amount"}]}
    config = parse_config({"fields": fields,
                           "score": {"k": k, "warmup": 200,
                                     "max_segments": max(segments, 1000)}})
    cfg = config.score
    pipe = Pipeline(config, CompositeEncoder(None, TabularEncoder([], [], 1, False, 20), 0.0))
    # its engine, fed vectors directly: the encoder is never called
    eng = pipe.engine
    observer = Observer(config)  # the daemon's own metrics hook, on its own registry
    make = _batch_maker(rng, segments, dim, mixed)

    # every segment past its warm-up: the fit waits for the end of a learning block
    per_segment = -(-cfg.warmup // cfg.learn_block) * cfg.learn_block + 4 * cfg.learn_block
    # k-means' OpenMP threads crawl when the machine is busy: fit the warm-ups on one
    with importlib.import_module("threadpoolctl").threadpool_limits(limits=1):
        for j in range(segments * per_segment // batch + 1):
            eng.process(*make(batch, j * batch))
    assert all(m.ready for m in eng.segments.values()), "engine bench: a segment still warms up"

    def best(size: int, count: int) -> tuple[float, list[Batch], list[Any]]:
        fastest, data, outs = float("inf"), [], []
        for _ in range(repeats):
            data = [make(size, -1) for _ in range(count)]
            t = time.perf_counter()
            outs = [eng.process(ev, x)[0] for ev, x in data]
            fastest = min(fastest, (time.perf_counter() - t) / (size * count) * 1e6)
        return fastest, data, outs

    n = batch * batches
    score_us, data, outs = best(batch, batches)
    metrics_us = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for (events, _), scores in zip(data, outs, strict=True):
            observer.scored("bench", 0, pipe, events, scores, [])
        metrics_us = min(metrics_us, (time.perf_counter() - t) / n * 1e6)
    out = {"score_us_per_event": score_us, "metrics_us_per_event": metrics_us}
    out[f"score_us_per_event_batch{big_batch}"] = best(big_batch, max(1, n // big_batch))[0]
    out["score_and_metrics_us_per_event"] = score_us + metrics_us
    return out


def memory_check(model: Any, events: int = 1_000_000, at: int = 100_000,
                 segments: int = 10_000, batch: int = 1024,
                 progress: Any = None) -> dict[str, float]:
    """RSS at event `at` and at `events` of a unique-text stream over `segments` segments,
    run through the text encoder and engine directly (default caps)."""
    from monitor.config import parse_config
    from monitor.decode import decode_json
    from monitor.pipeline import Pipeline

    cfg = parse_config({"fields": fields_config("unique", True)})
    pipe = Pipeline.build(cfg, model)
    out: dict[str, float] = {"memory_events": float(events), "memory_segments": float(segments)}
    start = time.perf_counter()
    limits = importlib.import_module("threadpoolctl").threadpool_limits(limits=1)  # see above
    for base in range(0, events, batch):
        n = min(batch, events - base)
        lines = generate_lines("unique", n, segments, seed=23, start=base)
        pipe.process([decode_json(b, cfg.fields, str(base + i)) for i, b in enumerate(lines)])
        done = base + n
        if done == at or (base < at < done):
            out["rss_mb_at_100k"] = rss_mb()
        if progress is not None and done % (batch * 100) == 0:
            progress(done, rss_mb())
    limits.restore_original_limits()
    out["rss_mb_at_1m"] = rss_mb()
    out["rss_growth_mb_100k_to_1m"] = out["rss_mb_at_1m"] - out.get("rss_mb_at_100k", 0.0)
    out["memory_run_s"] = time.perf_counter() - start
    out["memory_segments_live"] = float(pipe.engine.segment_count)
    out["memory_segments_evicted"] = float(pipe.engine.evicted)
    out["memory_cache_entries"] = float(len(pipe.encoder.text.cache) if pipe.encoder.text else 0)
    return out


def engine_only(segments: int = 64, k: int = 32) -> dict[str, Any]:
    """Scoring + drift + metrics cost per event, at poll batches of 256 and 2048, and the
    scoring cost with per-field evidence on (mixed text + tabular events)."""
    mixed = engine_cost(segments, k, mixed=True)
    return {"engine_segments": segments, "engine_centroids": k, **engine_cost(segments, k),
            "score_us_per_event_field_evidence": mixed["score_us_per_event"]}


def memory_run(profile: str, events: int, segments: int) -> dict[str, Any]:
    """RSS growth between event 100,000 and the last, with the `profile` text model."""
    from monitor.embed.profiles import load_text_model as load_profile

    model = load_profile(profile)

    def progress(done: int, rss: float) -> None:
        print(f"memory check: {done:,} events, RSS {rss:,.1f} MB", file=sys.stderr, flush=True)

    out: dict[str, Any] = {"profile": profile, "device": str(getattr(model, "device", "cpu")),
                           "shape": "unique", "rss_mb_process_start": rss_mb()}
    out.update(memory_check(model, events, segments=segments, progress=progress))
    return out
