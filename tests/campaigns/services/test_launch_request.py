"""campaigns/services/launch_request.py: the request records the intent, a task launches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.models import Campaign, LedgerEntry
from campaigns.services.drafts import campaign_create
from campaigns.services.launch_request import campaign_launch_request, campaign_launch_run, launches_requeue
from campaigns.services.lifecycle import campaign_cancel
from tests.campaigns.conftest import spec

pytestmark = pytest.mark.django_db
State = Campaign.State


def test_the_request_writes_no_ledger_row_and_queues_one_task_on_commit(campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        campaign_launch_request(campaign)
    campaign.refresh_from_db()
    assert campaign.state == State.LAUNCHING and not LedgerEntry.objects.exists()
    assert len(queued) == 1


def test_the_task_launches_and_running_it_twice_launches_once(campaign):
    campaign_launch_request(campaign)
    assert campaign_launch_run(campaign.id) == State.SENDING
    assert campaign_launch_run(campaign.id) == State.SENDING  # not launching any more: nothing done
    campaign.refresh_from_db()
    assert campaign.runs == 1 and LedgerEntry.objects.filter(campaign=campaign).count() == 200


def test_asking_twice_is_one_launch(campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        campaign_launch_request(campaign)
        campaign_launch_request(campaign)
    assert len(queued) == 1


def test_a_launch_that_fails_says_why_writes_nothing_and_can_be_retried(segment):
    campaign = campaign_create(spec(name="broken", offer=None) | {
        "variants": [{"name": "A", "subject": "Hi", "text": "Code {{ offer.code }}"}]})
    campaign_launch_request(campaign)
    assert campaign_launch_run(campaign.id) == State.FAILED
    campaign.refresh_from_db()
    assert campaign.state == State.FAILED and campaign.runs == 0
    assert campaign.last_error.startswith("Launch failed: cannot launch: variant 'A' prints {{ offer.code }}")
    assert not LedgerEntry.objects.filter(campaign=campaign).exists()
    # Fixed by editing the data (here: an offer attached), the retry goes through.
    from campaigns.services.offers import offer_create
    Campaign.objects.filter(id=campaign.id).update(offer=offer_create({"name": "fix", "code": "FIX1"}))
    campaign_launch_request(campaign)
    assert campaign_launch_run(campaign.id) == State.SENDING


def test_a_sending_campaign_cannot_be_asked_to_launch(campaign):
    campaign_launch_request(campaign)
    campaign_launch_run(campaign.id)
    with pytest.raises(CampaignError, match="is sending"):
        campaign_launch_request(campaign)


def test_a_launch_cancelled_before_the_task_runs_is_not_launched(campaign):
    campaign_launch_request(campaign)
    campaign_cancel(campaign)
    assert campaign_launch_run(campaign.id) == State.CANCELLED
    assert not LedgerEntry.objects.exists()


def test_a_launch_nobody_picked_up_is_queued_again(campaign, settings, django_capture_on_commit_callbacks):
    campaign_launch_request(campaign)
    now = timezone.now()
    assert launches_requeue(now) == 0
    later = now + timedelta(seconds=settings.CAMPAIGN_LAUNCH_STALE_SECONDS + 1)
    with django_capture_on_commit_callbacks() as queued:
        assert launches_requeue(later) == 1
    assert len(queued) == 1
    assert launches_requeue(later) == 0  # its clock was reset: not queued again at once
