"""A campaign's life after launch: waking its workers, their heartbeat, finishing, and the
marketer's controls (pause, resume, cancel)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.ledger import ledger_cancel_pending
from campaigns.models import Campaign, LedgerEntry
from campaigns.selectors import OPEN_STATUSES
from core.jobs import enqueue
from customers.models import Customer

SEND_TASK = "campaigns.tasks.campaign_send_task"


def campaign_wake(campaign_id: int, workers: int | None = None) -> None:
    """Queue send tasks; each claims batches until nothing is due, then stops."""
    for _ in range(workers or settings.CAMPAIGN_SEND_PARALLELISM):
        enqueue(SEND_TASK, campaign_id)


def campaign_heartbeat(campaign_id: int) -> None:
    now = timezone.now()
    Campaign.objects.filter(id=campaign_id).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - timedelta(seconds=1))
    ).update(heartbeat_at=now)


def campaign_finish_if_done(campaign_id: int) -> bool:
    """Sending -> completed (a recurring one: back to scheduled) once no row is open.

    Called when a claim found nothing due: due rows still pending then are rows no claim
    can take, whose customer was deleted while the launch wrote them (the ledger has no
    database constraint on customer, see LedgerEntry); they are cancelled, so the campaign
    can finish. Rows a concurrent claim holds are skipped, not waited for. A campaign no
    longer sending (paused, cancelled, gone) is left as it is."""
    campaign = Campaign.objects.filter(id=campaign_id).only("state", "recurrence").first()
    if campaign is None or campaign.state != Campaign.State.SENDING:
        return False
    now = timezone.now()
    LedgerEntry.objects.filter(
        campaign_id=campaign_id, status=LedgerEntry.Status.PENDING, due_at__lte=now,
    ).filter(~Exists(Customer.objects.filter(id=OuterRef("customer_id")))).update(
        status=LedgerEntry.Status.CANCELLED, updated_at=now, error="the customer was deleted before the send",
    )
    if LedgerEntry.objects.filter(campaign_id=campaign_id, status__in=OPEN_STATUSES).exists():
        return False
    target = Campaign.State.SCHEDULED if campaign.recurrence else Campaign.State.COMPLETED
    return bool(
        Campaign.objects.filter(id=campaign_id, state=Campaign.State.SENDING).update(
            state=target, completed_at=timezone.now()
        )
    )


def _transition(campaign: Campaign, allowed: tuple[str, ...], target: str) -> Campaign:
    updated = Campaign.objects.filter(id=campaign.id, state__in=allowed).update(state=target, updated_at=timezone.now())
    campaign.refresh_from_db()
    if not updated:
        raise CampaignError(f"campaign {campaign.name!r} is {campaign.state}: cannot go to {target}")
    return campaign


def campaign_pause(campaign: Campaign) -> Campaign:
    """Workers stop claiming at once; messages already in a provider call finish."""
    return _transition(campaign, (Campaign.State.SENDING, Campaign.State.SCHEDULED), Campaign.State.PAUSED)


def campaign_resume(campaign: Campaign) -> Campaign:
    target = Campaign.State.SENDING if campaign.runs else Campaign.State.SCHEDULED
    campaign = _transition(campaign, (Campaign.State.PAUSED,), target)
    if target == Campaign.State.SENDING:
        campaign_wake(campaign.id)
    return campaign


@transaction.atomic
def campaign_fail(campaign_id: int, reason: str) -> bool:
    """A sending campaign that cannot go on (its template blows the render budget): it
    stops with the reason, its pending rows are cancelled, other campaigns carry on."""
    failed = Campaign.objects.filter(id=campaign_id, state=Campaign.State.SENDING).update(
        state=Campaign.State.FAILED, last_error=reason[:2000], updated_at=timezone.now()
    )
    if failed:
        ledger_cancel_pending(campaign_id)
    return bool(failed)


@transaction.atomic
def campaign_cancel(campaign: Campaign) -> Campaign:
    """Nothing more is sent: pending rows are cancelled, recurring runs stop."""
    campaign = _transition(
        campaign,
        (Campaign.State.DRAFT, Campaign.State.LAUNCHING, Campaign.State.SCHEDULED, Campaign.State.SENDING,
         Campaign.State.PAUSED),
        Campaign.State.CANCELLED,
    )
    ledger_cancel_pending(campaign.id)
    if campaign.periodic_task_id:
        type(campaign.periodic_task).objects.filter(id=campaign.periodic_task_id).update(enabled=False)
    return campaign
