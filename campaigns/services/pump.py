"""The pump: what celery beat runs every few seconds, so that nothing depends on one message."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.ledger import ledger_expire_leases, ledger_reconcile, ledger_settle_stopped
from campaigns.models import Campaign, LedgerEntry
from campaigns.providers.registry import provider_for

from .launch import campaign_launch
from .launch_request import launches_settle_lost
from .lifecycle import campaign_finish_if_done, campaign_wake

S = LedgerEntry.Status


def campaign_pump(*, now: datetime | None = None, provider=None) -> dict:
    """What celery beat runs every few seconds, so that nothing depends on one message:
    starts scheduled campaigns that are due, turns expired leases into `unknown`, settles
    `unknown` rows with the provider, cancels what stopped campaigns left pending, wakes campaigns whose workers went quiet, and closes
    campaigns that are done."""
    now = now or timezone.now()
    summary = {"started": 0, "expired": 0, "woken": 0, "finished": 0}
    for campaign in Campaign.objects.filter(state=Campaign.State.SCHEDULED, runs=0, send_at__lte=now):
        try:
            campaign_launch(campaign, now=now)
            summary["started"] += 1
        except CampaignError as exc:
            # Only if it is still waiting: a second pump (two beats) finding it launched by
            # the first is no error.
            Campaign.objects.filter(id=campaign.id, state=Campaign.State.SCHEDULED).update(last_error=str(exc)[:2000])
    summary["launches_lost"] = launches_settle_lost(now)
    summary["expired"] = ledger_expire_leases(now)
    if LedgerEntry.objects.filter(status=S.UNKNOWN).exists():
        own = provider is None
        provider = provider or provider_for()
        try:
            summary["reconciled"] = ledger_reconcile(provider, now=now)
        finally:
            if own:
                provider.close()
    summary["cancelled"] = ledger_settle_stopped(now)
    stale = now - timedelta(seconds=settings.CAMPAIGN_STALE_SECONDS)
    for campaign in Campaign.objects.filter(state=Campaign.State.SENDING):
        due = LedgerEntry.objects.filter(campaign=campaign, status=S.PENDING, due_at__lte=now).exists()
        if due and (campaign.heartbeat_at is None or campaign.heartbeat_at < stale):
            Campaign.objects.filter(id=campaign.id).update(heartbeat_at=now)
            campaign_wake(campaign.id)
            summary["woken"] += 1
        elif not due and campaign_finish_if_done(campaign.id):
            summary["finished"] += 1
    return summary
