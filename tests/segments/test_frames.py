"""segments/frames.py: training_frame reads every customer, or draws from a large base range by range."""

from __future__ import annotations

import pandas as pd
import pytest
from django.utils import timezone

from customers.features import customer_id_ranges
from segments import frames
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def base():
    now = timezone.now()
    for i in range(240):
        customer = CustomerFactory(external_id=f"f{i}")
        for k in range(i % 4):
            OrderFactory(customer=customer, amount=10 + i, ordered_at=now - pd.Timedelta(days=k * 30 + i % 20))
    return now


def test_a_base_within_max_rows_is_read_whole(base):
    frame, whole = frames.training_frame(base, 500, 0)
    assert whole and len(frame) == 240


def test_a_larger_base_is_a_draw_from_every_range_with_each_rows_own_features(base, monkeypatch):
    ranges = []

    def small_ranges(chunk=50_000):
        for r in customer_id_ranges(40):  # six ranges of 40 customers
            ranges.append(r)
            yield r

    monkeypatch.setattr(frames, "customer_id_ranges", small_ranges)
    drawn, whole = frames.training_frame(base, 80, random_state=3)
    assert not whole and len(ranges) == 6
    assert 80 <= len(drawn) <= 150  # a few more than 80 (training takes exactly 80 of them)
    assert all(((drawn.index >= lo) & (drawn.index < hi)).any() for lo, hi in ranges)
    full = frames.feature_frame(base)
    pd.testing.assert_frame_equal(drawn, full.loc[drawn.index], check_dtype=False)
    again, _ = frames.training_frame(base, 80, random_state=3)
    assert list(again.index) == list(drawn.index)  # the same draw for the same random_state
