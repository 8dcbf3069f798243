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


@pytest.mark.django_db(transaction=True)
def test_two_beats_pumping_at_once_launch_a_scheduled_campaign_once(segment):
    import threading

    from django.db import connection

    from core.db import is_postgres

    later = timezone.now() + timedelta(hours=2)
    campaign = launch(campaign_create(spec(send_at=later.isoformat())))
    due = later + timedelta(seconds=1)
    summaries = []

    def pump():
        try:
            summaries.append(campaign_pump(now=due))
        finally:
            connection.close()

    if is_postgres():  # two pumps in parallel: the row lock makes the second wait, then see it launched
        threads = [threading.Thread(target=pump) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    else:  # SQLite has one writer: one pump after the other
        pump()
        pump()
    campaign.refresh_from_db()
    assert sorted(s["started"] for s in summaries) == [0, 1]
    assert campaign.runs == 1 and campaign.last_error == "" and campaign.state == Campaign.State.SENDING
    assert LedgerEntry.objects.filter(campaign=campaign).count() == 200
