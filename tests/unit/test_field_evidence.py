"""Per-field evidence: the driver names the field that carried an outlier, and a small
context borrows from the whole instead of judging on a handful of rows."""

from __future__ import annotations

import numpy as np

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
