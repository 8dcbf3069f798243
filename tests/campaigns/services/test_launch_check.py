"""The confirm step's facts: counted once for a draft and its segment versions, kept, read back."""

import pytest

from campaigns.models import LaunchCheck
from campaigns.selectors import campaign_audience
from campaigns.services import launch_check as checks
from campaigns.services.drafts import campaign_create, campaign_update
from core.models import Job
from customers.models import Suppression
from segments.models import Membership
from tests.campaigns.conftest import spec

pytestmark = pytest.mark.django_db


def test_a_small_audience_is_counted_on_the_spot_and_kept(campaign, customers):
    Suppression.objects.create(customer=customers[0], reason="unsubscribed")
    check = checks.launch_check_request(campaign)
    # Independently: the audience is the 200 members less the one suppressed.
    assert check.facts["size"] == campaign_audience(campaign).count() == 199
    assert check.facts["n_control"] == round(199 * 0.1) and check.facts["n_treated"] == 199 - round(199 * 0.1)
    assert check.facts["problems"] == [] and check.facts["sample_ids"][0] == customers[1].id
    again = checks.launch_check_request(campaign)
    assert again.pk == check.pk and again.computed_at == check.computed_at  # read back, not counted again


def test_changing_the_draft_makes_the_kept_facts_stale(campaign):
    checks.launch_check_request(campaign)
    assert checks.launch_check_current(campaign) is not None
    campaign = campaign_update(campaign, spec(holdout=0.2))
    assert checks.launch_check_current(campaign) is None
    fresh = checks.launch_check_request(campaign)
    assert fresh.facts["n_control"] == 40 and LaunchCheck.objects.count() == 1


def test_a_new_version_of_the_segment_makes_the_kept_facts_stale(campaign, segment, customers):
    checks.launch_check_request(campaign)
    Membership.objects.bulk_create([Membership(segment=segment, customer=c, version=2) for c in customers[:50]])
    segment.current_version, segment.size = 2, 50
    segment.save()
    campaign.refresh_from_db()
    assert checks.launch_check_current(campaign) is None
    assert checks.launch_check_request(campaign).facts["size"] == 50


def test_a_large_audience_is_queued_once_for_a_worker(campaign, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(checks, "CHECK_INLINE_MAX", 100)  # the 200 members count as large
    with django_capture_on_commit_callbacks() as published:
        assert checks.launch_check_request(campaign) is None
        assert checks.launch_check_request(campaign) is None
    job = Job.objects.get()
    assert job.kind == checks.CHECK_JOB_KIND and job.task == checks.CHECK_TASK and job.args == [campaign.id]
    assert len(published) == 1 and not LaunchCheck.objects.exists()
    checks.launch_check_run(campaign.id)  # what the task does
    assert checks.launch_check_request(campaign).facts["size"] == 200


def test_a_refused_draft_keeps_its_problems(segment):
    draft = campaign_create({"name": "nocode", "segment": "everyone",
                             "variants": [{"name": "A", "subject": "Hi", "text": "Code {{ offer.code }}"}]})
    problems = checks.launch_check_run(draft.id).facts["problems"]
    assert len(problems) == 1 and "{{ offer.code }}, which is empty for every recipient" in problems[0]


def test_a_failed_check_is_not_queued_again_by_looking_but_by_saving_the_draft(campaign, monkeypatch,
                                                                             django_capture_on_commit_callbacks):
    monkeypatch.setattr(checks, "CHECK_INLINE_MAX", 100)
    with django_capture_on_commit_callbacks():
        checks.launch_check_request(campaign)
        Job.objects.update(state=Job.State.FAILED, error="The database went away.")
        assert checks.launch_check_request(campaign) is None
        assert Job.objects.count() == 1  # the page shows the failure and its retry
        checks.launch_check_prepare(campaign)  # what saving the draft does
    assert list(Job.objects.order_by("id").values_list("state", flat=True)) == ["failed", "queued"]
