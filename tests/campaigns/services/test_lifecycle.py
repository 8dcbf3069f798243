"""campaigns/services/lifecycle.py: pause, resume, cancel."""

import pytest

from campaigns import selectors
from campaigns.models import Campaign, LedgerEntry
from campaigns.sending import campaign_send
from campaigns.services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from tests.campaigns.conftest import launched as launch

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status


def test_cancel_mid_send_cancels_what_is_still_pending(campaign):
    campaign = launch(campaign)
    campaign_send(campaign.id, batch_size=50, budget_seconds=0.0001)  # one batch, then out of time
    campaign_cancel(campaign)
    counts = selectors.ledger_counts(campaign)
    assert counts[S.SENT] == 50 and counts[S.PENDING] == 0 and counts[S.CANCELLED] > 100
    assert campaign_send(campaign.id).claimed == 0


def test_pause_stops_claims_and_resume_goes_on(campaign):
    campaign = launch(campaign)
    campaign_pause(campaign)
    assert campaign_send(campaign.id).claimed == 0
    campaign_resume(campaign)
    campaign_send(campaign.id)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.COMPLETED
    assert selectors.ledger_counts(campaign)[S.PENDING] == 0
