"""Pause, resume, archive, and edit the steps (a new version)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from campaigns.errors import CampaignError
from campaigns.models import Automation, AutomationEntry, AutomationSend

from .create import _version_write, steps_clean

A = Automation.State


def _locked(automation_id: int) -> Automation:
    return Automation.objects.select_for_update().get(id=automation_id)


@transaction.atomic
def automation_pause(automation_id: int) -> Automation:
    """Nothing is sent while paused; triggers are still read, so nobody who enters meanwhile
    is lost (their messages wait, as quiet hours make them wait)."""
    automation = _locked(automation_id)
    if automation.state != A.ACTIVE:
        raise CampaignError(f"automation {automation.name!r} is {automation.state}: only an active one pauses")
    automation.state = A.PAUSED
    automation.save(update_fields=["state"])
    return automation


@transaction.atomic
def automation_resume(automation_id: int) -> Automation:
    automation = _locked(automation_id)
    if automation.state != A.PAUSED:
        raise CampaignError(f"automation {automation.name!r} is {automation.state}: only a paused one resumes")
    automation.state = A.ACTIVE
    automation.save(update_fields=["state"])
    return automation


@transaction.atomic
def automation_archive(automation_id: int) -> Automation:
    """No more entries; what is still pending is cancelled (a row in flight settles as it
    would, and the tick cancels it if it comes back pending)."""
    automation = _locked(automation_id)
    if automation.state == A.ARCHIVED:
        return automation
    now = timezone.now()
    automation.state, automation.archived_at = A.ARCHIVED, now
    automation.save(update_fields=["state", "archived_at"])
    sends_cancel_archived(now)
    AutomationEntry.objects.filter(automation=automation, status=AutomationEntry.Status.ACTIVE).update(
        status=AutomationEntry.Status.CANCELLED, finished_at=now, exit_reason="archived"
    )
    return automation


def sends_cancel_archived(now) -> int:
    return AutomationSend.objects.filter(
        status=AutomationSend.Status.PENDING, automation__state=A.ARCHIVED
    ).update(status=AutomationSend.Status.CANCELLED, updated_at=now, error="the automation was archived")


@transaction.atomic
def automation_edit_steps(automation_id: int, steps) -> Automation:
    """New entries follow the new steps; entries already in the flow finish the version they
    entered (their next steps are read from their own version)."""
    clean = steps_clean(steps)
    automation = _locked(automation_id)
    if automation.state == A.ARCHIVED:
        raise CampaignError(f"automation {automation.name!r} is archived")
    _version_write(automation, clean)
    return automation
