"""Celery entry points: thin, take ids, re-read the database, safe to run twice."""

from celery import shared_task
from django.urls import reverse
from django.utils import timezone

from core.formatting import count
from core.jobs import enqueue, job_note

from .automations.sending import automation_send
from .caps import cap_slots_prune
from .sending import campaign_send
from .services.automations.tick import automation_tick
from .services.launch import campaign_run_recurring
from .services.launch_check import launch_check_run
from .services.launch_request import campaign_launch_run
from .services.pump import campaign_pump


@shared_task(acks_late=True, reject_on_worker_lost=True)
def campaign_send_task(campaign_id: int) -> dict:
    """Send due rows until none are left or the time budget is spent, then hand over to a
    fresh task (so one long campaign never holds a worker, and a lost message costs only
    until the pump's next look). Idempotent: rows are claimed, never assumed."""
    stats = campaign_send(campaign_id)
    if stats.more:
        enqueue("campaigns.tasks.campaign_send_task", campaign_id)
    return {"claimed": stats.claimed, "sent": stats.sent, "failed": stats.failed, "more": stats.more}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def campaign_launch_task(campaign_id: int) -> str:
    """A launch asked for from a page or the API. Idempotent: it acts only on a campaign
    still `launching`; a lost worker's launch never committed (launch_write.py: the retry
    deletes what its ranges wrote)."""
    return campaign_launch_run(campaign_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def campaign_launch_check_task(campaign_id: int) -> bool:
    """The confirm step's facts for a draft to a large audience. Idempotent: it reads, then
    replaces the one stored row."""
    check = launch_check_run(campaign_id)
    if check is None:
        return False  # deleted since
    job_note(f"{count(check.facts['size'])} customers in the audience"
             + (f"; {len(check.facts['problems'])} problem(s) to fix." if check.facts["problems"] else "."),
             url=reverse("campaigns:confirm", args=[campaign_id]), link_text="Review and launch")
    return True


@shared_task
def campaign_pump_task() -> dict:
    return campaign_pump()


@shared_task
def cap_slots_prune_task() -> int:
    """Scheduled (core.schedules.periodic_jobs): frequency-cap slots past the window go."""
    return cap_slots_prune(timezone.now())


@shared_task
def campaign_run_task(campaign_id: int) -> int:
    """A recurring campaign's run (from django-celery-beat): new segment members only."""
    return campaign_run_recurring(campaign_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def automation_send_task() -> dict:
    """Send due step sends of every active automation; idempotent like campaign_send_task."""
    stats = automation_send()
    if stats.more:
        enqueue("campaigns.tasks.automation_send_task")
    return {"claimed": stats.claimed, "sent": stats.sent, "failed": stats.failed, "more": stats.more}


@shared_task
def automation_tick_task() -> dict:
    """What beat runs every few seconds: triggers into entries, leases, reconcile, wake."""
    return automation_tick()
