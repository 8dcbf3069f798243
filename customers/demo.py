"""A synthetic customer base with planted ground truth, generated with numpy (no Django).

What is planted (the README repeats it for people checking models against it):
- Five behavioural clusters with distinct recency / frequency / monetary profiles in the
  history up to the churn cutoff (CLUSTERS below; attribute `planted_cluster`).
- Churn: the cutoff is CHURN_DAYS (90) days before `today`. A customer churns (no order and
  no event after the cutoff) with probability sigmoid(CHURN_LOGIT) where the drivers are
  recency at the cutoff, support tickets in the 90 days before it, and being a discount user
  (most of whose orders carry a `discount_code`). Nothing else moves churn.
- A past randomized email campaign CAMPAIGN_DAYS_AGO days before `today`, 50/50 between
  `control` and `treatment` (attribute `demo_campaign_arm`): a campaign order within 14 days
  with probability CAMPAIGN_RATES (6% vs 9%: +3 points), on top of ordinary orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

CHURN_DAYS = 90
CAMPAIGN_DAYS_AGO = 200
CAMPAIGN_WINDOW_DAYS = 14
CAMPAIGN_RATES = {"control": 0.06, "treatment": 0.09}
# logit = base + per-day recency + per-ticket + discount user
CHURN_LOGIT = {"base": -2.2, "recency_per_day": 0.012, "per_ticket": 0.7, "discount_user": 1.2}
COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "NL", "SE", "CA"])
ZONES = np.array(["America/New_York", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Madrid",
                  "Europe/Amsterdam", "Europe/Stockholm", "America/Toronto"])


@dataclass(frozen=True)
class Cluster:
    name: str
    share: float
    recency: tuple[float, float]  # days before the cutoff of the last order: uniform range
    orders: float  # mean number of orders before the cutoff (at least one)
    order_value: float  # median order value
    tenure: tuple[float, float]  # days between signup and the cutoff


CLUSTERS = [
    Cluster("Champions", 0.15, (0, 12), 30, 120.0, (400, 700)),
    Cluster("Bargain regulars", 0.25, (5, 40), 12, 22.0, (300, 700)),
    Cluster("Big-ticket occasionals", 0.15, (40, 130), 3, 450.0, (300, 700)),
    Cluster("Newcomers", 0.20, (0, 25), 1.3, 55.0, (10, 45)),
    Cluster("Lapsed", 0.25, (250, 550), 4, 40.0, (560, 700)),
]


# Customers generated at a time: the arrays of one chunk (about ten orders and ten events
# a customer) stay near 100 MB however large the base.
CHUNK = 50_000


@dataclass
class DemoData:
    customers: dict  # column -> array; "ids" numbers the customers in the whole base from 1
    orders: dict  # "customer" is the customer's index within this chunk
    events: dict


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def demo_chunks(n: int, seed: int, today: datetime, chunk: int = CHUNK) -> Iterator[DemoData]:
    """The base of `n` customers, `chunk` customers at a time.

    Every customer is drawn independently, so a base made of chunks plants the same truth
    as one drawn whole. The first chunk draws from `seed` alone: a base no bigger than one
    chunk is exactly what one `demo_generate` call makes; chunk k draws from (seed, k).
    """
    first_order = 1
    for k, start in enumerate(range(0, n, chunk)):
        rng = np.random.default_rng(seed if k == 0 else [seed, k])
        data = demo_generate(min(chunk, n - start), seed, today, rng=rng, first=start, first_order=first_order)
        first_order += data.orders["number"].size
        yield data


def demo_generate(n: int, seed: int, today: datetime, *, rng: np.random.Generator | None = None,
                  first: int = 0, first_order: int = 1) -> DemoData:
    """`n` customers numbered from `first` + 1, their orders numbered from `first_order`."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    cutoff = today - timedelta(days=CHURN_DAYS)
    cutoff_s = cutoff.timestamp()
    day = 86400.0

    shares = np.array([c.share for c in CLUSTERS])
    cluster = rng.choice(len(CLUSTERS), size=n, p=shares / shares.sum())
    pick = lambda attr: np.array([getattr(c, attr) for c in CLUSTERS])  # noqa: E731
    rec_lo, rec_hi = pick("recency").T
    ten_lo, ten_hi = pick("tenure").T
    tenure = rng.uniform(ten_lo[cluster], ten_hi[cluster])
    recency = np.minimum(rng.uniform(rec_lo[cluster], rec_hi[cluster]), tenure)
    n_orders = 1 + rng.poisson(np.maximum(pick("orders")[cluster] - 1, 0))
    discount_user = rng.random(n) < 0.3
    troubled = rng.random(n) < 0.15
    tickets = rng.poisson(np.where(troubled, 2.5, 0.15))

    # Churn is decided from what the customer looked like at the cutoff.
    logit = (
        CHURN_LOGIT["base"]
        + CHURN_LOGIT["recency_per_day"] * np.minimum(recency, 365)
        + CHURN_LOGIT["per_ticket"] * tickets
        + CHURN_LOGIT["discount_user"] * discount_user
    )
    churned = rng.random(n) < _sigmoid(logit)

    ids = np.arange(first + 1, first + n + 1)
    signup = cutoff_s - tenure * day
    arm = np.where(rng.random(n) < 0.5, "treatment", "control")

    # Orders before the cutoff: the last one exactly `recency` days before it, the rest
    # spread uniformly between signup and that last order.
    last = cutoff_s - recency * day
    owner = np.repeat(np.arange(n), n_orders)
    first_of = np.concatenate([[0], np.cumsum(n_orders)[:-1]])
    position = np.arange(owner.size) - first_of[owner]
    when = np.where(
        position == 0, last[owner], rng.uniform(signup[owner], last[owner])
    )
    median = pick("order_value")[cluster][owner]
    amount = np.round(median * rng.lognormal(0.0, 0.35, owner.size), 2)

    # After the cutoff, only those who did not churn: orders at their cluster's pace.
    alive = np.flatnonzero(~churned)
    rate = pick("orders")[cluster[alive]] / np.maximum(tenure[alive], 30)  # orders a day
    post_n = rng.poisson(rate * CHURN_DAYS)
    post_owner = np.repeat(alive, post_n)
    post_when = cutoff_s + rng.uniform(0, CHURN_DAYS * day, post_owner.size)
    post_amount = np.round(pick("order_value")[cluster][post_owner] * rng.lognormal(0.0, 0.35, post_owner.size), 2)

    # The past campaign: treatment raises the chance of a campaign order in 14 days.
    campaign_s = (today - timedelta(days=CAMPAIGN_DAYS_AGO)).timestamp()
    eligible = signup < campaign_s
    p = np.where(arm == "treatment", CAMPAIGN_RATES["treatment"], CAMPAIGN_RATES["control"])
    converted = eligible & (rng.random(n) < p)
    camp_owner = np.flatnonzero(converted)
    camp_when = campaign_s + rng.uniform(0, CAMPAIGN_WINDOW_DAYS * day, camp_owner.size)
    camp_amount = np.round(pick("order_value")[cluster][camp_owner] * rng.lognormal(0.0, 0.35, camp_owner.size), 2)

    all_owner = np.concatenate([owner, post_owner, camp_owner])
    all_when = np.concatenate([when, post_when, camp_when])
    all_amount = np.concatenate([amount, post_amount, camp_amount])
    kind = np.concatenate([np.zeros(owner.size + post_owner.size, dtype=int), np.ones(camp_owner.size, dtype=int)])
    discounted = discount_user[all_owner] & (rng.random(all_owner.size) < 0.8)

    events = _events(rng, n, ids, signup, cutoff_s, tickets, churned, day)
    return DemoData(
        customers={
            "signup": signup,
            "country_index": rng.integers(0, COUNTRIES.size, n),
            "cluster": cluster,
            "discount_user": discount_user,
            "arm": np.where(eligible, arm, ""),
            "ids": ids,
        },
        orders={
            "number": np.arange(first_order, first_order + all_owner.size),
            "customer": all_owner,
            "ordered_at": all_when,
            "amount": np.maximum(all_amount, 1.0),
            "discounted": discounted,
            "campaign": kind == 1,
        },
        events=events,
    )


def _events(rng, n, ids, signup, cutoff_s, tickets, churned, day) -> dict:
    """Visits and app opens through the history (none after the cutoff for churners),
    and the support tickets in the 90 days before the cutoff that drive churn."""
    chunks = []
    end = np.where(churned, cutoff_s, cutoff_s + CHURN_DAYS * day)
    for kind, mean in (("visit", 6.0), ("app_open", 3.0)):
        count = rng.poisson(mean, n)
        owner = np.repeat(np.arange(n), count)
        chunks.append((kind, owner, rng.uniform(signup[owner], end[owner])))
    # Each customer who did not churn shows up at least once after the cutoff.
    alive = np.flatnonzero(~churned)
    chunks.append(("session", alive, cutoff_s + rng.uniform(0, CHURN_DAYS * day, alive.size)))
    owner = np.repeat(np.arange(n), tickets)
    start = np.maximum(signup[owner], cutoff_s - 90 * day)
    chunks.append(("support_ticket", owner, rng.uniform(start, cutoff_s)))
    kinds = np.concatenate([np.full(o.size, k) for k, o, _ in chunks])
    owners = np.concatenate([o for _, o, _ in chunks])
    # Whole seconds plus a per-row offset in microseconds keep (customer, kind, time) unique.
    when = np.concatenate([w for _, _, w in chunks])
    when = np.floor(when) + (np.arange(when.size) % 1_000_000) / 1e6
    return {"customer": owners, "kind": kinds, "occurred_at": when}
