"""`monitor fit`: fit per-segment references offline and write a seed file for the daemon.

The history goes through `load_reference`, the very function `monitor replay --reference`
runs, and the file holds the state that leaves behind (see `monitor.state.seed`). A
daemon with `checkpoint.seed_file` therefore scores its first event as that replay would,
instead of warming each segment up on live traffic, whatever that traffic holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from monitor.config import MonitorConfig
from monitor.embed import TextModel
from monitor.errors import ConfigError, MonitorError
from monitor.pipeline import Pipeline
from monitor.state.seed import seed_of, write_seed
from monitor.tools.replay import load_reference

# the fit keeps every segment of the history: `score.max_segments` caps the live segments
# of a running engine, which seeds an evicted segment again from the file when it returns
_UNCAPPED = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FitResult:
    """What `fit` wrote: counts for the summary line."""

    out: str
    events: int
    rejected: int
    segments: int
    ready: int  # segments with a reference; the others finish their warm-up live
    size: int  # bytes

    def summary(self) -> str:
        """The CLI's one-line summary.

        >>> FitResult("s.mon", 3000, 2, 5, 4, 1_500_000).summary()
        'fitted 3,000 events (2 rejected) into 5 segments (4 with a reference) -> s.mon (1.50 MB)'
        """
        return (f"fitted {self.events:,} events ({self.rejected:,} rejected) into "
                f"{self.segments:,} segments ({self.ready:,} with a reference) -> {self.out} "
                f"({self.size / 1e6:.2f} MB)")


def fit(cfg: MonitorConfig, history: str, out: str, *, rejects: str | None = None,
        progress: bool = True, text_model: TextModel | None = None,
        clock: Callable[[], float] = time.time) -> FitResult:
    """Read `history` (JSONL/CSV of vetted normal events; labelled fraud becomes
    prototypes), fit every segment and write the seed file `out`."""
    target = Path(out)
    if not target.parent.is_dir():  # say so before minutes of embedding, not after
        raise ConfigError(f"--out {out}: no such directory {str(target.parent)!r}")
    fit_cfg = cfg.model_copy(update={
        "score": cfg.score.model_copy(update={"max_segments": _UNCAPPED})})
    pipeline = Pipeline.build(fit_cfg, text_model)
    with ExitStack() as stack:
        rej = stack.enter_context(open(rejects, "w")) if rejects else None
        counts = load_reference(pipeline, history, fit_cfg, rej, progress, desc="fit")
    events, rejected = counts.get("events", 0), counts["rejected"]
    if not events:
        hint = f"; see {rejects}" if rejects else "; --rejects FILE says why"
        raise MonitorError(f"no usable events in {history} ({rejected:,} rejected{hint})")
    seed = seed_of(pipeline.fitted(), cfg, events, rejected, history, clock())
    size = write_seed(target, seed)
    return FitResult(out, events, rejected, seed.header["segments"], seed.header["ready"], size)
