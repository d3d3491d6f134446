"""Per-field evidence: the driver names the field that carried an outlier, and a small
context borrows from the whole instead of judging on a handful of rows."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.config import parse_config
from monitor.embed.fields import FieldLayout, FieldValues
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.score.evidence import FieldEvidence
from tests.fakes import HashingTextModel

CONFIG = {"fields": {"id": "id", "text": ["merchant"], "numeric": [{"name": "amount",
                                                                     "log": True}],
                     "categorical": ["category"]},
          "score": {"warmup": 200, "alpha": 0.01}}


def _event(i: int, rng: np.random.Generator, **over: object) -> Event:
    cat = ["food", "fuel", "travel"][i % 3]
    base = {"food": 20.0, "fuel": 60.0, "travel": 400.0}[cat]
    fields = {"merchant": f"shop {i % 7}", "category": cat,
              "amount": float(base * np.exp(rng.normal(0, 0.2)))} | over
    return Event(id=f"e{i}", text={"merchant": str(fields["merchant"])},
                 numeric={"amount": float(fields["amount"])},  # type: ignore[arg-type]
                 categorical={"category": str(fields["category"])})


def test_the_driver_names_the_field_that_carried_the_outlier() -> None:
    rng = np.random.default_rng(0)
    p = Pipeline.build(parse_config(CONFIG), HashingTextModel())
    p.process([_event(i, rng) for i in range(600)])
    # a travel-sized amount in the food category: ordinary text, ordinary category
    (odd,), _ = p.process([_event(600, rng, category="food", amount=400.0)])
    (new_value,), _ = p.process([_event(601, rng, category="crypto")])
    assert odd.outlier and odd.driver == "numeric:amount", odd
    assert odd.evidence is not None and odd.evidence["numeric:amount"] < 0.001
    assert new_value.driver == "categorical:category", new_value


def test_a_small_context_borrows_from_the_whole() -> None:
    """A context of 2 rows is judged mostly by the global spread; one of 500 rows by its
    own: the same value is unremarkable in the first, extreme in the second."""
    layout = FieldLayout(("amount",), ("category",), (0,), False, 32)
    ev = FieldEvidence(layout, prior=20.0)
    rng = np.random.default_rng(1)
    wide = rng.normal(0.0, 10.0, 500)  # the whole: wide
    tight = rng.normal(0.0, 0.1, 500)  # one context: tight around 0
    values = np.concatenate([wide, tight, [0.0, 0.1]])
    codes = np.concatenate([np.full(500, 1), np.full(500, 2), [3, 3]])
    ev.fit(FieldValues(values[:, None], codes[:, None], np.full(len(values), np.nan)))
    probe = FieldValues(np.array([[5.0], [5.0]]), np.array([[2], [3]]), np.full(2, np.nan))
    z_tight, z_small = ev.numeric_z(probe)[:, 0]
    assert z_tight > 20  # 5 is fifty spreads out in the tight context
    assert z_small < 3  # the 2-row context leans on the wide global spread


def test_each_text_field_is_judged_on_its_own_with_text_evidence_per_field() -> None:
    """With `text_evidence: per_field` a new merchant name is named as the driver even
    though the event's other text field is ordinary; its evidence lists each text field."""
    tree = {"fields": CONFIG["fields"] | {"text": ["merchant", "note"]},
            "score": CONFIG["score"] | {"text_evidence": "per_field"}}
    p = Pipeline.build(parse_config(tree), HashingTextModel())
    rng = np.random.default_rng(1)

    def with_note(e: Event, note: str) -> Event:
        return Event(id=e.id, text=e.text | {"note": note}, numeric=e.numeric,
                     categorical=e.categorical)

    p.process([with_note(_event(i, rng), f"note {i % 4}") for i in range(600)])
    (new,), _ = p.process([with_note(_event(600, rng, merchant="never seen before ltd"),
                                     "note 1")])
    assert new.evidence is not None and set(new.evidence) >= {"text:merchant", "text:note"}
    assert new.driver == "text:merchant", new
    assert new.outlier and new.evidence["text:merchant"] < 0.01, new.evidence
    assert new.evidence["text:note"] > 0.01, new.evidence


def test_per_field_text_evidence_without_the_field_embeddings_is_a_clear_error() -> None:
    from monitor.embed.fields import extract

    tree = {"fields": CONFIG["fields"], "score": {"text_evidence": "per_field"}}
    cfg = parse_config(tree)
    layout = FieldLayout.from_config(cfg.fields, cfg.score)
    assert layout is not None and layout.text == ("merchant",)
    with pytest.raises(ValueError, match="embeddings of the text fields"):
        extract(layout, [True], [_event(0, np.random.default_rng(0))])
