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


def test_rows_in_flight_when_a_campaign_is_cancelled_and_its_worker_is_lost_are_settled(segment, settings):
    from campaigns.ledger import Outcome, ledger_claim, ledger_record
    from campaigns.services.lifecycle import campaign_cancel

    S = LedgerEntry.Status
    campaign = launch(campaign_create(spec()))
    # A worker claims two batches, then the campaign is cancelled mid-send
    _, lost = ledger_claim(campaign.id, 20)
    _, retried = ledger_claim(campaign.id, 5)
    campaign_cancel(campaign)
    # ... one worker records a transient error (a retry: pending again), the other dies
    ledger_record([Outcome(r.id, r.attempts, S.PENDING, error="503", due_at=timezone.now(), retried=True)
                   for r in retried], provider="outbox")
    later = timezone.now() + timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS + settings.CAMPAIGN_RECONCILE_AFTER_SECONDS + 5)
    campaign_pump(now=later)  # the lost lease expires: unknown
    campaign_pump(now=later + timedelta(seconds=settings.CAMPAIGN_RECONCILE_AFTER_SECONDS + 5))  # reconciled
    rows = LedgerEntry.objects.filter(id__in=[r.id for r in lost + retried])
    assert set(rows.values_list("status", flat=True)) == {S.CANCELLED}
    assert not LedgerEntry.objects.filter(campaign=campaign, status__in=[S.PENDING, S.SENDING, S.UNKNOWN]).exists()
