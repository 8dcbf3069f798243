"""Feature frames for models: one row per customer, as of a date, read from the database.

Reads only; training (segments.services.training) and scoring (segments.services.scoring)
build on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from django.db.models import Sum
from django.utils import timezone

from customers.features import customer_attributes, customer_features, customer_id_ranges
from customers.models import AttributeDefinition, Customer, Event, Order

def attribute_types() -> dict[str, str]:
    return dict(AttributeDefinition.objects.values_list("name", "type"))


def feature_frame(as_of: datetime, id_range: tuple[int, int] | None = None, *, attributes: bool = True) -> pd.DataFrame:
    """Features as of `as_of` and (optionally) the custom attributes, one row per customer."""
    frame = customer_features(as_of, id_range=id_range)
    if attributes:
        attrs = customer_attributes(id_range=id_range)
        # An attribute named like a feature keeps the feature's name free.
        attrs.columns = [f"attribute_{c}" if c in frame.columns else c for c in attrs.columns]
        frame = frame.join(attrs, how="left")
    return frame


# Customers per range a large training reads at once (its memory: one range and the draw).
TRAINING_RANGE_ROWS = 100_000


def training_frame(as_of: datetime, max_rows: int | None, random_state: int, *,
                   attributes: bool = True) -> tuple[pd.DataFrame, bool]:
    """(frame, whole): every customer's features when the base holds at most `max_rows`
    customers; past that, a few more than `max_rows` drawn at random, read id range by id
    range so that only one range and the draw are ever in memory. A million customers'
    features read at once took 2 GB (psycopg's row tuples, then pandas) to keep 250,000."""
    total = Customer.objects.count()
    if not max_rows or total <= max_rows:
        return feature_frame(as_of, attributes=attributes), True
    # A few more than max_rows on average (four standard deviations of the draw's size), so
    # that training's exact max_rows can almost always be taken from it.
    share = min(1.0, (max_rows + 4 * max_rows ** 0.5) / total)
    rng = np.random.default_rng(random_state)
    parts = []
    for id_range in customer_id_ranges(TRAINING_RANGE_ROWS):
        part = feature_frame(as_of, id_range, attributes=attributes)
        parts.append(part[rng.random(len(part)) < share])
    return pd.concat(parts), False


def feature_columns() -> frozenset[str]:
    """The columns customers.features computes (asked of an empty id range: no scan)."""
    global _FEATURE_COLUMNS
    if _FEATURE_COLUMNS is None:
        _FEATURE_COLUMNS = frozenset(customer_features(timezone.now(), id_range=(0, 0)).columns)
    return _FEATURE_COLUMNS


_FEATURE_COLUMNS: frozenset[str] | None = None


def needs_attributes(features: Sequence[str]) -> bool:
    return any(f not in feature_columns() for f in features)


def active_between(start: datetime, end: datetime) -> np.ndarray:
    """Ids of customers with an order or an event in [start, end)."""
    orders = Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end).values("customer_id")
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end).values("customer_id")
    ids = orders.union(events).values_list("customer_id", flat=True)
    return np.fromiter(ids, dtype=np.int64)


def spend_between(start: datetime, end: datetime) -> pd.Series:
    rows = (Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end).values("customer_id")
            .annotate(total=Sum("amount")).values_list("customer_id", "total"))
    data = dict(rows)
    return pd.Series({k: float(v) for k, v in data.items()}, dtype="float64")
