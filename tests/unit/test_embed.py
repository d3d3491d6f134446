import numpy as np

from monitor.config import NumericField, parse_config
from monitor.embed.composite import build_encoder
from monitor.embed.tabular import RobustScaler, TabularEncoder
from monitor.embed.text import TextEncoder
from monitor.events import Event
from tests.fakes import HashingTextModel


def _ev(i: int, merchant: str, desc: str, amount: float = 10.0) -> Event:
    return Event(id=str(i), text={"merchant": merchant, "description": desc},
                 numeric={"amount": amount}, categorical={"country": "GB"})


def test_text_encoder_embeds_each_distinct_text_once() -> None:
    model = HashingTextModel()
    enc = TextEncoder(model, ["merchant", "description"], cache_size=100)
    events = [_ev(i, "Tesco", f"shop {i % 3}") for i in range(30)]
    enc.encode(events)
    enc.encode(events)
    embedded = [t for call in model.calls for t in call]
    assert sorted(embedded) == ["Tesco", "shop 0", "shop 1", "shop 2"]
    assert enc.cache.hits > 0


def test_rows_are_unit_length_and_deterministic() -> None:
    cfg = parse_config({"fields": {"text": ["merchant", "description"],
                                   "numeric": [{"name": "amount", "log": True}],
                                   "categorical": ["country"]}})
    events = [_ev(i, "Tesco", f"shop {i}", amount=float(i)) for i in range(100)]
    a = build_encoder(cfg, HashingTextModel()).encode(events)
    b = build_encoder(cfg, HashingTextModel()).encode(events)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b)


def test_robust_scaler_ignores_a_huge_outlier() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 10.0, size=(600, 1))
    x[50] = 1e9
    scaler = RobustScaler(1, 2048)
    z = scaler.transform_learn(x)
    assert abs(float(np.median(z[300:]))) < 0.2
    assert 7.0 < scaler.spread[0] < 13.0


def test_tabular_scaling_is_batch_invariant() -> None:
    events = [Event(id=str(i), numeric={"amount": float(i % 17) * 3.0}) for i in range(700)]
    one = TabularEncoder([NumericField(name="amount")], [], 8, False, 512)
    many = TabularEncoder([NumericField(name="amount")], [], 8, False, 512)
    a = one.encode(events)
    b = np.vstack([many.encode(events[i : i + 37]) for i in range(0, 700, 37)])
    assert np.allclose(a, b)


def test_far_amounts_are_far_in_cosine() -> None:
    enc = TabularEncoder([NumericField(name="amount", log=True)], [], 8, False, 512)
    normal = [Event(id=str(i), numeric={"amount": 20.0 + i % 10}) for i in range(300)]
    x = enc.encode(normal)
    far = enc.encode([Event(id="f", numeric={"amount": 50_000.0})])
    near = enc.encode([Event(id="n", numeric={"amount": 24.0})])
    centre = x.mean(axis=0)
    assert (far @ centre).item() < (near @ centre).item()
