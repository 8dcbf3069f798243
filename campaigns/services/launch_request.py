"""Launch as a background job: a page or an API call records the intent, a task launches.

At 1,000,000 recipients writing the ledger takes longer than a web request may live
(gunicorn kills a sync worker after 30 s, the web statement timeout is shorter still), so a
launch asked for in a request only moves the campaign to `launching` and queues
`campaign_launch_task`. The task runs `campaign_launch` (which checks everything again and
writes the ledger: launch_write.py) and leaves the campaign `sending` or `scheduled`, or
`failed` with the reason; a failed launch leaves no row (runs == 0) and can be retried.
"""

from __future__ import annotations

from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.models import Campaign
from core.jobs import Track, enqueue

from .launch import campaign_launch

LAUNCH_TASK = "campaigns.tasks.campaign_launch_task"
LAUNCH_JOB_KIND = "campaign_launch"
State = Campaign.State


def campaign_target(campaign_id: int) -> str:
    """What core's Job rows name the campaign by (its page shows its launch jobs)."""
    return f"campaigns.campaign:{campaign_id}"


def launch_retryable(campaign: Campaign) -> bool:
    """A failed launch rolled back before any row was written: asking again is safe."""
    return campaign.state == State.FAILED and campaign.runs == 0


@transaction.atomic
def campaign_launch_request(campaign: Campaign, *, user=None) -> Campaign:
    """Record that the marketer asked to launch (or to retry a failed launch) and queue the
    task once this commits, tracked as a core Job (queued / running / done / failed, the
    same include every page uses). Cheap whatever the audience size: no ledger row here."""
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    if campaign.state == State.LAUNCHING:
        return campaign  # a double click, or the API asked twice: one launch
    if campaign.state not in (State.DRAFT, State.SCHEDULED) and not launch_retryable(campaign):
        raise CampaignError(
            f"campaign {campaign.name!r} is {campaign.state}: only a draft, a scheduled one or a failed launch launches"
        )
    campaign.state = State.LAUNCHING
    campaign.last_error = ""
    campaign.save(update_fields=["state", "last_error", "updated_at"])
    enqueue(LAUNCH_TASK, campaign.id,
            track=Track(LAUNCH_JOB_KIND, f"Launch of {campaign.name}", target=campaign_target(campaign.id), user=user))
    return campaign


def campaign_launch_run(campaign_id: int, *, now: datetime | None = None) -> str:
    """The task's work. Safe to run twice: the row lock serialises two runs, and the second
    finds the campaign no longer `launching`. Returns the state it left the campaign in; a
    launch that fails marks the campaign failed and raises, so its Job fails with the reason."""
    try:
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().filter(id=campaign_id).first()
            if campaign is None or campaign.state != State.LAUNCHING:
                return campaign.state if campaign else "missing"
            # campaign_launch starts from a draft; inside this transaction nobody else sees
            # the draft: readers see `launching` until the ledger is committed.
            campaign.state = State.DRAFT
            campaign.save(update_fields=["state"])
            return campaign_launch(campaign, now=now).state
    except CampaignError as exc:
        campaign_launch_fail(campaign_id, str(exc))
        raise
    except SoftTimeLimitExceeded:
        campaign_launch_fail(campaign_id, "the launch ran past the task's time limit; nothing was written: retry, "
                                          "or raise CELERY_TASK_SOFT_TIME_LIMIT")
        raise  # Celery's own exception is never swallowed
    except Exception as exc:
        campaign_launch_fail(campaign_id, f"{type(exc).__name__}: {exc}")
        raise


def campaign_launch_fail(campaign_id: int, reason: str) -> bool:
    """launching -> failed with the reason (the launch's transaction rolled back: nothing sent)."""
    return bool(
        Campaign.objects.filter(id=campaign_id, state=State.LAUNCHING).update(
            state=State.FAILED, last_error=f"Launch failed: {reason}"[:2000], updated_at=timezone.now()
        )
    )


def launches_settle_lost(now: datetime | None = None) -> int:
    """A `launching` campaign whose launch Job failed without the task saying so (its worker
    died mid-launch, or no worker took it up: core's lost-job rule decides) fails with that
    reason, so its page offers a retry instead of waiting for ever. The launch transaction
    was never committed, so nothing was sent; rows its ranges committed (a large launch,
    launch_write.py) are deleted by the retry. Run by the pump and by the campaign's page."""
    from core.jobs import jobs_expire_lost
    from core.models import Job

    settled = 0
    for campaign_id in Campaign.objects.filter(state=State.LAUNCHING).values_list("id", flat=True):
        job = Job.objects.filter(target=campaign_target(campaign_id), kind=LAUNCH_JOB_KIND).order_by("-id").first()
        if job is None:
            continue
        if job.active:
            jobs_expire_lost(now, ids=[job.id])
            job.refresh_from_db()
        if job.state == Job.State.FAILED:
            settled += campaign_launch_fail(campaign_id, job.error)
    return settled
