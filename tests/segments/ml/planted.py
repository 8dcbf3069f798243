"""Data sets with planted ground truth for the model tests.

Every data set is generated with a seeded RNG and a known structure (planted clusters,
known churn drivers, a known spend process), so the models are judged against that
structure, never against their own output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segments.ml.scoring import score_chunks

# Planted groups: median recency (days), orders and spend, as a marketer would sketch them.
PLANTED = {
    "champions": (4, 40, 6000),
    "regulars": (25, 12, 900),
    "lapsed big spenders": (300, 15, 2500),
    "new": (8, 2, 60),
    "dormant": (500, 1.5, 25),
}
RFM = ["recency_days", "frequency", "monetary"]


def planted_clusters(n_per_group: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for group, (recency, orders, spend) in enumerate(PLANTED.values()):
        # Log-normal spread: realistic heavy tails, groups well apart on the log scale.
        rows.append(pd.DataFrame({
            "recency_days": np.round(rng.lognormal(np.log(recency), 0.25, n_per_group)),
            "frequency": np.maximum(1, np.round(rng.lognormal(np.log(orders), 0.25, n_per_group))),
            "monetary": np.round(rng.lognormal(np.log(spend), 0.25, n_per_group), 2),
        }))
        truth.append(np.full(n_per_group, group))
    frame = pd.concat(rows, ignore_index=True)
    frame.index = pd.Index(10_000 + np.arange(len(frame)), name="customer_id")
    return frame, np.concatenate(truth)


def churn_data(n: int = 4000, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Churn driven by recency and support tickets only; the rest is noise."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    tickets = rng.poisson(1.0, n)
    logit = -3.2 + 0.03 * recency + 0.9 * tickets
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    has_app = pd.Series(rng.random(n) < 0.5, dtype=object)
    has_app[rng.random(n) < 0.05] = None  # boolean attribute with gaps arrives as object
    frame = pd.DataFrame({
        "recency_days": recency,
        "events_support_ticket_90d": tickets,
        "noise": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "has_app": has_app.to_numpy(),
    }, index=pd.Index(np.arange(n) * 7 + 3, name="customer_id"))
    # Gaps in a numeric driver and in a categorical attribute must be imputed, not fatal.
    frame.loc[rng.random(n) < 0.05, "recency_days"] = np.nan
    frame.loc[rng.random(n) < 0.05, "plan"] = None
    return frame, pd.Series(churned, index=frame.index)


def spend_data(n: int = 3000, seed: int = 2) -> tuple[pd.DataFrame, pd.Series]:
    """Next-90-day spend: frequent, recent customers with a big basket spend more."""
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(4, n) + 1
    basket = rng.lognormal(np.log(50), 0.5, n)
    recency = rng.exponential(60, n)
    active = rng.random(n) < np.exp(-recency / 90)
    expected = frequency * basket * 0.4
    spend = np.where(active, rng.gamma(4.0, expected / 4.0), 0.0)
    frame = pd.DataFrame({
        "recency_days": recency,
        "frequency": frequency,
        "monetary": frequency * basket,
        "tenure_days": rng.uniform(30, 900, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
    }, index=pd.Index(np.arange(n), name="customer_id"))
    return frame, pd.Series(spend, index=frame.index)


def rfm_population(n: int = 500, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "recency_days": rng.integers(1, 365, n).astype(float),
        # Heavy ties on purpose: most customers ordered once or twice.
        "frequency": rng.choice([1, 1, 1, 2, 2, 3, 5, 8], n).astype(float),
        "monetary": np.round(rng.lognormal(4, 1, n), 2),
    }, index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))
    hand_made = pd.DataFrame({
        "recency_days": [0.0, 5000.0, 0.0, 4000.0, np.nan],
        "frequency": [1000.0, 0.0, 0.0, 900.0, np.nan],
        "monetary": [1e6, 0.0, 0.0, 9e5, np.nan],
    }, index=pd.Index(["best", "worst", "brand_new", "big_but_gone", "no_orders"], name="customer_id"))
    return pd.concat([frame, hand_made])


def chunks(frame: pd.DataFrame, n: int = 3) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), n + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def score_all(model, frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    return pd.concat(list(score_chunks(model, [frame], kind)))
