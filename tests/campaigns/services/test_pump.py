"""campaigns/services/pump.py: what beat runs every few seconds."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, LedgerEntry
from campaigns.services.drafts import campaign_create
from campaigns.services.pump import campaign_pump
from tests.campaigns.conftest import launched as launch, spec

pytestmark = pytest.mark.django_db


def test_a_campaign_scheduled_for_later_starts_when_the_pump_finds_it_due(segment):
    later = timezone.now() + timedelta(hours=2)
    campaign = launch(campaign_create(spec(send_at=later.isoformat())))
    assert campaign.state == Campaign.State.SCHEDULED and not LedgerEntry.objects.filter(campaign=campaign).exists()
    campaign_pump(now=later + timedelta(seconds=1))
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING and LedgerEntry.objects.filter(campaign=campaign).count() == 200
