"""A restart at any moment reproduces the same future (issue 15, must-show 1).

A seeded stream with four segments (one evicted and brought back), confirmed fraud fed
back, a drift alarm and `rebaseline: true` is cut at 36 points spread over the whole
life of its segments. At each cut the pipeline's state goes through the real snapshot
codec into a fresh pipeline, which processes the rest; every later score, p-value, flag,
risk and alarm must equal the uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.decode import decode_json
from monitor.errors import DecodeError
from monitor.events import DriftAlarm, Event, Score
from monitor.pipeline import Pipeline
from monitor.state.codec import decode_state, encode_state
from monitor.tools.synthetic import DEMO_CONFIG, generate
from tests.fakes import HashingTextModel

BATCH = 50


def _config(text_evidence: str = "joint") -> Any:
    tree = copy.deepcopy(DEMO_CONFIG)
    tree["fields"]["segment"] = "country"  # GB, FR, DE, and NG for the fraud bursts
    tree["score"] = {"warmup": 100, "alpha": 0.01, "max_segments": 3, "learn_block": 32,
                     "text_evidence": text_evidence}
    tree["drift"] = {"horizon": 2_000, "window": 100, "hysteresis": 100, "rebaseline": True}
    return parse_config(tree)


def _events() -> list[Event]:
    cfg = _config()
    lines, _ = generate(3_000, seed=3, drift_at=0.5, fraud_bursts=3, burst_size=8,
                        malformed=0)
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(decode_json(line, cfg.fields, str(i)))
        except DecodeError:
            continue
    return out


def _run(pipeline: Pipeline, events: list[Event],
         refitting: list[int] | None = None) -> tuple[list[Score], list[DriftAlarm]]:
    scores: list[Score] = []
    alarms: list[DriftAlarm] = []
    for i in range(0, len(events), BATCH):
        s, a = pipeline.process(events[i : i + BATCH])
        scores += s
        alarms += a
        if refitting is not None and any(m.refitting for m in pipeline.engine.segments.values()):
            refitting.append(i + BATCH)  # a re-baseline is gathering the new regime here
    return scores, alarms


@pytest.mark.parametrize("text_evidence", ["joint", "per_field"])
def test_restoring_at_any_of_36_cut_points_reproduces_every_later_output(
        text_evidence: str) -> None:
    events = _events()
    cfg = _config(text_evidence)
    whole = Pipeline.build(cfg, HashingTextModel())
    refits: list[int] = []
    scores, alarms = _run(whole, events, refits)
    # the run did live through everything the cut points must cover
    assert any(e.label for e in events) and alarms, "fraud feedback and a drift alarm"
    assert whole.engine.evicted > 0, "a segment was evicted (and came back)"
    first_scored = next(i for i, s in enumerate(scores) if not s.warming_up)
    alarm_at = alarms[0].index
    near_alarm = (-2 * BATCH, -BATCH, 0, 7, BATCH, 2 * BATCH)
    cuts = {*range(BATCH, first_scored + 4 * BATCH, BATCH),  # warm-up, first blocks
            *(alarm_at // BATCH * BATCH + d for d in near_alarm),
            *range(len(events) // 2, len(events), len(events) // 16),
            *range(BATCH // 2, len(events), len(events) // 12)}  # and off the batch grid
    assert refits, "a re-baseline happened"
    cuts |= {refits[0] + 1, refits[len(refits) // 2], refits[-1] - 3}  # during re-baselines
    cuts = sorted(c for c in cuts if 0 < c < len(events))
    assert len(cuts) >= 30, cuts
    for cut in cuts:
        first = Pipeline.build(cfg, HashingTextModel())
        head, _ = _run(first, events[:cut])
        second = Pipeline.build(cfg, HashingTextModel())
        second.load_state_dict(decode_state(encode_state(first.state_dict())))
        tail, tail_alarms = _run(second, events[cut:])
        assert head + tail == scores, f"cut at {cut}: scores differ"
        assert [a.as_dict() for a in tail_alarms] == [
            a.as_dict() for a in alarms if a.index >= cut], f"cut at {cut}: alarms differ"
