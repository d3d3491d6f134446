"""Pipeline.confirm (feedback): confirmed fraud becomes a prototype of its segment, and nothing else
(the encoder's scalers, the reference, the calibration) changes."""

from __future__ import annotations

import numpy as np

from monitor.config import parse_config
from monitor.events import Event
from monitor.feedback import FlagPrecision
from monitor.pipeline import Pipeline
from monitor.state.snapshot import state_digest

CONFIG = {
    "fields": {"id": "id", "segment": "country", "numeric": [{"name": "amount", "log": True}],
               "categorical": ["merchant"]},
    "score": {"warmup": 40, "k": 3, "learn_block": 8},
}


def _event(i: int, country: str, amount: float, merchant: str = "shop",
           label: bool | None = None) -> Event:
    return Event(id=f"e{i}", segment=country, numeric={"amount": amount},
                 categorical={"merchant": merchant}, label=label)


def _warm_pipeline() -> Pipeline:
    """A pipeline whose segment GB has a reference (tabular fields only, no model)."""
    rng = np.random.default_rng(3)
    p = Pipeline.build(parse_config(CONFIG))
    events = [_event(i, "GB", float(rng.lognormal(3, 0.4)), f"m{i % 4}") for i in range(120)]
    p.process(events)
    assert p.engine.segments["GB"].ready
    return p


def _fraud(i: int, country: str) -> Event:
    return _event(10_000 + i, country, 25_000.0 + i, "crypto-atm", label=True)


def test_fraud_in_a_known_segment_becomes_its_prototype_with_the_encoder_untouched() -> None:
    p = _warm_pipeline()
    seg = p.engine.segments["GB"]
    twin = Pipeline.build(parse_config(CONFIG))
    twin.load_state_dict(p.state_dict())
    encoder_before = state_digest(p.encoder.state_dict())
    seen, index = seg.seen, p.engine.index
    reservoir = seg.reservoir.state_dict()
    reference = seg.reference.state_dict() if seg.reference else None
    assert len(seg.fraud) == 0

    assert p.confirm([_fraud(1, "GB")]) == 1

    assert len(seg.fraud) == 1
    expected = twin.encoder.encode([_fraud(1, "GB")])[0]  # as the encoder saw it before
    np.testing.assert_array_equal(seg.fraud.vectors[0], expected)
    assert state_digest(p.encoder.state_dict()) == encoder_before
    assert state_digest(p.encoder.state_dict()) != state_digest(twin.encoder.state_dict())
    assert (seg.seen, p.engine.index) == (seen, index)
    assert state_digest(seg.reservoir.state_dict()) == state_digest(reservoir)
    assert seg.reference is not None and reference is not None
    assert state_digest(seg.reference.state_dict()) == state_digest(reference)


def test_a_prototype_raises_the_fraud_similarity_of_a_lookalike() -> None:
    p = _warm_pipeline()
    p.confirm([_fraud(1, "GB")])
    (score,), _ = p.process([_event(9, "GB", 25_001.0, "crypto-atm")])
    assert score.fraud_similarity > 0.99
    (normal,), _ = p.process([_event(10, "GB", 20.0, "m1")])
    assert normal.fraud_similarity < score.fraud_similarity


def test_fraud_in_an_unseen_segment_creates_it_seeded_with_the_prototype() -> None:
    p = _warm_pipeline()
    encoder_before = state_digest(p.encoder.state_dict())
    events = [_fraud(1, "NG"), _fraud(2, "NG"), _fraud(3, "GB")]
    assert p.confirm(events) == 3
    ng = p.engine.segments["NG"]
    assert len(ng.fraud) == 2 and len(p.engine.segments["GB"].fraud) == 1
    assert not ng.ready and ng.seen == 0 and ng.warm_ids == []
    assert state_digest(p.encoder.state_dict()) == encoder_before
    # the new segment warms up from the stream as usual, already knowing the fraud
    (score,), _ = p.process([_event(11, "NG", 25_001.0, "crypto-atm")])
    assert score.warming_up and score.fraud_similarity > 0.99


def test_non_fraud_labels_add_nothing_and_change_no_state() -> None:
    p = _warm_pipeline()
    before = state_digest(p.state_dict())
    events = [_event(1, "GB", 10.0, label=False), _event(2, "FR", 10.0, label=None)]
    assert p.confirm(events) == 0
    assert p.confirm([]) == 0
    assert state_digest(p.state_dict()) == before
    assert "FR" not in p.engine.segments


def test_flag_precision_counts_only_flagged_ids_once_and_forgets_the_oldest() -> None:
    fp = FlagPrecision(capacity=2)
    assert fp.precision is None
    for eid in ("a", "b", "c"):  # "a" falls out of the window
        fp.flagged(eid)
    fp.feedback("a", True)
    fp.feedback("b", True)
    fp.feedback("b", True)  # a second label for the same flag is not counted
    fp.feedback("c", False)
    assert (fp.true_positives, fp.false_positives, fp.precision) == (1, 1, 0.5)


def test_feedback_teaches_the_risk_weights_and_draws_no_randomness() -> None:
    """A confirmed case from the feedback topic counts towards how strongly the outlier
    evidence marks fraud (the risk's weights), as one confirmed in the stream would; its
    scoring puts the random generator back, so later scores do not depend on it."""
    p = _warm_pipeline()
    seg = p.engine.segments["GB"]
    rng_before = seg.rng.bit_generator.state
    w_before = seg.evidence_weights
    p.confirm([_fraud(i, "GB") for i in range(5)])
    assert seg.rng.bit_generator.state == rng_before
    assert seg.known[0] == 2 + 5  # the prior's 2 cases and these 5
    assert seg.evidence_weights[0] > w_before[0]  # far-out amounts: the outlier evidence


def test_a_state_after_feedback_created_a_segment_restores() -> None:
    """Feedback for a segment this partition has not seen creates it from the fraud rows
    alone (an empty warm-up block): that state must still go through the snapshot codec
    (a restore after it failed on the empty block's shape, found in review)."""
    from monitor.state.codec import decode_state, encode_state

    p = _warm_pipeline()
    p.confirm([_fraud(1, "NG")])
    copy = Pipeline.build(parse_config(CONFIG))
    copy.load_state_dict(decode_state(encode_state(p.state_dict())))
    assert state_digest(copy.state_dict()) == state_digest(p.state_dict())
    later = [_event(500 + i, "NG", 30.0 + i) for i in range(60)]
    assert p.process(later)[0] == copy.process(later)[0]
