"""campaigns/services/launch_request.py: the request records the intent, a task launches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.models import Campaign, LedgerEntry
from campaigns.services.drafts import campaign_create
from campaigns.services.launch_request import campaign_launch_request, campaign_launch_run, launches_settle_lost
from campaigns.services.lifecycle import campaign_cancel
from core.models import Job
from tests.campaigns.conftest import spec

pytestmark = pytest.mark.django_db
State = Campaign.State


def test_the_request_writes_no_ledger_row_and_queues_one_tracked_task_on_commit(
    campaign, marketer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        campaign_launch_request(campaign, user=marketer)
    campaign.refresh_from_db()
    assert campaign.state == State.LAUNCHING and not LedgerEntry.objects.exists()
    assert len(queued) == 1
    job = Job.objects.get()
    assert (job.task, job.args, job.kind, job.state) == ("campaigns.tasks.campaign_launch_task", [campaign.id],
                                                         "campaign_launch", "queued")
    assert job.target == f"campaigns.campaign:{campaign.id}" and job.created_by == marketer


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
    with pytest.raises(CampaignError, match="prints {{ offer.code }}"):
        campaign_launch_run(campaign.id)  # raised: the launch's Job fails with the reason
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


def test_a_launch_whose_job_no_worker_took_up_fails_with_the_reason_and_can_be_asked_again(campaign):
    campaign_launch_request(campaign)
    assert launches_settle_lost() == 0  # queued a moment ago: still waiting
    Job.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert launches_settle_lost() == 1
    campaign.refresh_from_db()
    assert campaign.state == State.FAILED and campaign.last_error.startswith("Launch failed: No worker started it")
    assert not LedgerEntry.objects.exists()
    campaign_launch_request(campaign)  # the retry: a new job
    assert Job.objects.count() == 2 and campaign_launch_run(campaign.id) == State.SENDING
