"""Launch as a background job: a page or an API call records the intent, a task launches.

At 1,000,000 recipients writing the ledger takes longer than a web request may live
(gunicorn kills a sync worker after 30 s, the web statement timeout is shorter still), so a
launch asked for in a request only moves the campaign to `launching` and queues
`campaign_launch_task`. The task runs `campaign_launch` (which checks everything again and
writes the ledger in one transaction) and leaves the campaign `sending` or `scheduled`, or
`failed` with the reason; a failed launch wrote nothing (runs == 0) and can be retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.models import Campaign
from core.jobs import enqueue

from .launch import campaign_launch

LAUNCH_TASK = "campaigns.tasks.campaign_launch_task"
State = Campaign.State


def launch_retryable(campaign: Campaign) -> bool:
    """A failed launch rolled back before any row was written: asking again is safe."""
    return campaign.state == State.FAILED and campaign.runs == 0


@transaction.atomic
def campaign_launch_request(campaign: Campaign) -> Campaign:
    """Record that the marketer asked to launch (or to retry a failed launch) and queue the
    task once this commits. Cheap whatever the audience size: no ledger row is written here."""
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
    enqueue(LAUNCH_TASK, campaign.id)
    return campaign


def campaign_launch_run(campaign_id: int, *, now: datetime | None = None) -> str:
    """The task's work. Safe to run twice: the row lock serialises two runs, and the second
    finds the campaign no longer `launching`. Returns the state it left the campaign in."""
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
        return State.FAILED
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


def launches_requeue(now: datetime | None = None) -> int:
    """Queue the task again for launches nobody has picked up for a while (a lost broker
    message, a worker killed mid-launch): a page never waits on `launching` for ever."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CAMPAIGN_LAUNCH_STALE_SECONDS)
    ids = list(Campaign.objects.filter(state=State.LAUNCHING, updated_at__lt=stale).values_list("id", flat=True))
    for campaign_id in ids:
        with transaction.atomic():
            Campaign.objects.filter(id=campaign_id, state=State.LAUNCHING).update(updated_at=now)
            enqueue(LAUNCH_TASK, campaign_id)
    return len(ids)
