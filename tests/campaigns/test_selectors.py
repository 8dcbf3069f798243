"""campaigns/selectors.py: attributed orders per arm."""

from datetime import timedelta

import pytest

from campaigns import selectors
from campaigns.models import LedgerEntry
from tests.campaigns.conftest import launched as launch
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status


def test_orders_in_the_window_are_attributed_for_every_arm_holdout_included(campaign):
    campaign = launch(campaign)
    held = LedgerEntry.objects.filter(campaign=campaign, status=S.HELD_OUT).first()
    treated = LedgerEntry.objects.filter(campaign=campaign, arm="A").first()
    OrderFactory(customer=held.customer, ordered_at=held.assigned_at + timedelta(days=2))
    OrderFactory(customer=treated.customer, ordered_at=treated.assigned_at + timedelta(days=1))
    OrderFactory(customer=treated.customer, ordered_at=treated.assigned_at + timedelta(days=30))  # too late
    arms = {a["arm"]: a for a in selectors.campaign_arms(campaign)}
    assert arms["holdout"]["conversions"] == 1 and arms["A"]["conversions"] == 1 and arms["B"]["conversions"] == 0
