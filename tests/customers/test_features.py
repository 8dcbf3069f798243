from datetime import timedelta

import pytest
from django.utils import timezone

from customers.features import customer_features
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db


def test_features_count_only_what_happened_before_as_of():
    as_of = timezone.now() - timedelta(days=100)
    c = CustomerFactory(signup_date=(as_of - timedelta(days=365)).date())
    OrderFactory(customer=c, amount=10, ordered_at=as_of - timedelta(days=50))
    OrderFactory(customer=c, amount=30, ordered_at=as_of - timedelta(days=10), properties={"discount_code": "X"})
    OrderFactory(customer=c, amount=999, ordered_at=as_of + timedelta(days=1))  # the future: ignored
    EventFactory(customer=c, kind="support_ticket", occurred_at=as_of - timedelta(days=5))
    EventFactory(customer=c, kind="visit", occurred_at=as_of - timedelta(days=60))
    EventFactory(customer=c, kind="visit", occurred_at=as_of + timedelta(days=2))
    quiet = CustomerFactory(signup_date=None)

    frame = customer_features(as_of)

    row = frame.loc[c.id]
    assert row.frequency == 2 and row.monetary == 40
    assert row.recency_days == pytest.approx(10, abs=0.01)
    assert row.orders_30d == 1 and row.spend_30d == 30 and row.orders_90d == 2
    assert row.discount_orders == 1 and row.avg_order_value == 20
    assert row.events_support_ticket_30d == 1 and row.events_visit_90d == 1 and row.events_visit_30d == 0
    assert row.tenure_days == pytest.approx(365, abs=1)
    assert row.engagement_30d == 1
    empty = frame.loc[quiet.id]
    assert empty.frequency == 0 and empty.monetary == 0
    assert empty.recency_days != empty.recency_days  # NaN: never ordered
