"""A seeded synthetic card-transaction stream with known fraud bursts, drift and poison.

Used by `monitor demo` and the tests: every injected condition is recorded in `Truth`, so a
summary can say whether the monitor caught it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

CATEGORIES: dict[str, tuple[list[str], list[str], float]] = {
    # category: (merchants, description patterns, median amount)
    "groceries": (["Tesco", "Lidl", "Aldi", "Carrefour", "Sainsbury's", "Whole Foods"],
                  ["weekly grocery shop", "fresh produce and bread", "household supplies"], 45.0),
    "fuel": (["Shell", "BP", "Esso", "TotalEnergies"],
             ["fuel purchase at pump", "diesel refill", "petrol and car wash"], 60.0),
    "restaurants": (["Pizza Express", "Nando's", "Wagamama", "Pret A Manger", "Starbucks"],
                    ["dinner for two", "lunch takeaway", "coffee and pastry"], 25.0),
    "transport": (["Uber", "Trainline", "TfL", "National Rail"],
                  ["taxi ride across town", "train ticket return", "metro travel card"], 18.0),
    "utilities": (["British Gas", "Thames Water", "Octopus Energy", "Vodafone"],
                  ["monthly energy bill", "water bill payment", "mobile phone plan"], 80.0),
}
DRIFT_CATEGORIES: dict[str, tuple[list[str], list[str], float]] = {
    "crypto": (["Binance", "Coinbase", "Kraken"],
               ["cryptocurrency purchase", "bitcoin exchange deposit", "crypto wallet top-up"],
               400.0),
    "gaming": (["Steam", "PlayStation Store", "Xbox Live", "Epic Games"],
               ["video game download", "in-game currency pack", "season pass upgrade"], 35.0),
}
FRAUD = (["QuickGiftz Online", "CardTopUp Express", "Wire-Now Transfers"],
         ["urgent gift card bulk purchase", "prepaid card reload for friend abroad",
          "instant international money transfer"])
COUNTRIES = ["GB"] * 18 + ["FR", "DE"]


@dataclass
class Truth:
    """What was injected: indices (positions in the emitted stream) and ids."""

    events: int = 0
    drift_at: int | None = None
    fraud_ids: list[str] = field(default_factory=list)
    fraud_bursts: list[tuple[int, int]] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)


DEMO_CONFIG: dict[str, Any] = {
    "fields": {
        "id": "id", "timestamp": "ts", "label": "is_fraud",
        "text": ["merchant", "description"],
        "numeric": [{"name": "amount", "log": True}],
        "categorical": ["country", "category"],
        "required": ["merchant"],
    },
    "score": {"warmup": 500, "alpha": 0.001},
    # the drift here is a lasting new regime: refit on it (without a blind spot)
    "drift": {"horizon": 10_000, "window": 300, "hysteresis": 300, "rebaseline": True},
}


def _event(rng: np.random.Generator, i: int, ts: float,
           table: dict[str, tuple[list[str], list[str], float]]) -> dict[str, Any]:
    cat = list(table)[int(rng.integers(len(table)))]
    merchants, descriptions, median = table[cat]
    return {
        "id": f"tx-{i:07d}",
        "ts": ts,
        "merchant": merchants[int(rng.integers(len(merchants)))],
        "category": cat,
        "description": descriptions[int(rng.integers(len(descriptions)))],
        "amount": round(float(median * math.exp(rng.normal(0, 0.5))), 2),
        "country": COUNTRIES[int(rng.integers(len(COUNTRIES)))],
        "is_fraud": 0,
    }


def generate(events: int, seed: int = 7, drift_at: float | None = 0.6,
             fraud_bursts: int = 3, burst_size: int = 8, malformed: int = 10,
             start_ts: float = 1_767_225_600.0,
             first_id: int = 0) -> tuple[list[bytes], Truth]:
    """`events` JSON lines (bytes) plus `malformed` poison lines, and the truth about them.
    Event ids count from `first_id` (`monitor demo` appends chunks to a running stream).

    Normal traffic draws from five categories; after `drift_at` (a share of the stream)
    half the traffic moves to categories never seen before. Each fraud burst is
    `burst_size` near-identical transactions to a gift-card/transfer merchant, abroad, at
    night, for large amounts.
    """
    rng = np.random.default_rng(seed)
    truth = Truth(events=events)
    drift_index = None if drift_at is None else int(events * drift_at)
    truth.drift_at = drift_index
    warm = min(events, 800)
    burst_starts = sorted(
        int(x) for x in rng.choice(np.arange(warm, max(warm + 1, events - burst_size)),
                                   size=min(fraud_bursts, max(0, events - warm)), replace=False)
    ) if events > warm + burst_size else []
    lines: list[bytes] = []
    ts = start_ts
    i = 0
    while i < events:
        ts += float(rng.exponential(20.0))
        if burst_starts and i == burst_starts[0]:
            burst_starts.pop(0)
            first = i
            merchant = FRAUD[0][int(rng.integers(len(FRAUD[0])))]
            night = ts - (ts % 86_400) + 3 * 3_600 + 86_400
            for _ in range(min(burst_size, events - i)):
                row = {"id": f"tx-{first_id + i:07d}", "ts": night + i, "merchant": merchant,
                       "category": "transfers",
                       "description": FRAUD[1][int(rng.integers(len(FRAUD[1])))],
                       "amount": round(float(2_500 * math.exp(rng.normal(0, 0.3))), 2),
                       "country": "NG", "is_fraud": 1}
                truth.fraud_ids.append(str(row["id"]))
                lines.append(orjson.dumps(row))
                i += 1
            truth.fraud_bursts.append((first_id + first, first_id + i - 1))
            continue
        drifted = drift_index is not None and i >= drift_index and rng.random() < 0.5
        row = _event(rng, first_id + i, ts, DRIFT_CATEGORIES if drifted else CATEGORIES)
        lines.append(orjson.dumps(row))
        i += 1
    poison = [b"{not json", b"[1, 2, 3]", b'{"id": "x", "merchant": null}', b'"just a string"',
              b'{"id": "tx-bad", "merchant": "Tesco", "amount": "lots"}']
    for j in range(malformed):
        pos = int(rng.integers(len(lines) + 1))
        lines.insert(pos, poison[j % len(poison)])
    # positions shift as poison is inserted: recompute where the poison sits
    truth.malformed = [k for k, line in enumerate(lines) if line in poison]
    return lines, truth
