"""The automations' tick: what celery beat runs every few seconds (core.schedules).

It reads every live automation's trigger past its watermark, expires leases and reconciles
`unknown` sends, advances entries whose step settled outside a worker's own record (a
reconciled row), closes finished entries, and wakes senders when anything is due. Each part
is idempotent, so two ticks at once, or a tick after a crash, change nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from campaigns.automations.ledger import sends_expire_leases, sends_reconcile
from campaigns.models import Automation, AutomationSend
from campaigns.providers.registry import provider_for
from core.db import is_postgres
from core.jobs import enqueue

from .advance import entries_complete, sends_advance
from .lifecycle import sends_cancel_archived
from .triggers import automation_read_triggers

logger = logging.getLogger(__name__)
S = AutomationSend.Status
SEND_TASK = "campaigns.tasks.automation_send_task"


def automation_wake(parallelism: int | None = None) -> None:
    for _ in range(parallelism or settings.CAMPAIGN_SEND_PARALLELISM):
        enqueue(SEND_TASK)


def automation_tick(*, now: datetime | None = None, provider=None, wake: bool = True) -> dict:
    now = now or timezone.now()
    summary = {"entries": 0, "held_out": 0, "expired": 0, "advanced": 0, "completed": 0, "woken": False}
    if not is_postgres():
        summary["skipped"] = "automations need PostgreSQL"
        return summary
    for automation_id in Automation.objects.exclude(state=Automation.State.ARCHIVED).values_list("id", flat=True):
        try:
            read = automation_read_triggers(automation_id, now=now)
        except Exception as exc:  # one broken automation must not stop the others
            logger.exception("automation %s: reading its trigger failed", automation_id)
            Automation.objects.filter(id=automation_id).update(last_error=f"reading the trigger failed: {exc}"[:2000])
            continue
        summary["entries"] += read["entries"]
        summary["held_out"] += read["held_out"]
    summary["expired"] = sends_expire_leases(now)
    if AutomationSend.objects.filter(status=S.UNKNOWN).exists():
        own = provider is None
        provider = provider or provider_for()
        try:
            summary["reconciled"] = sends_reconcile(provider, now=now)
        finally:
            if own:
                provider.close()
    summary["cancelled"] = sends_cancel_archived(now)
    summary["advanced"] = sends_advance(now=now)
    summary["completed"] = entries_complete(now=now)
    due = AutomationSend.objects.filter(
        status=S.PENDING, due_at__lte=timezone.now(), automation__state=Automation.State.ACTIVE
    ).exists()
    if due and wake:
        automation_wake()
        summary["woken"] = True
    return summary
