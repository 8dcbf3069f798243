"""Celery entry points of core: thin, safe to run twice."""

from celery import shared_task
from django.apps import apps

from .db import statistics_refresh
from .jobs import jobs_expire_lost


@shared_task(name="core.tasks.jobs_expire_lost")
def jobs_expire_lost_task() -> int:
    """Scheduled (core.schedules.periodic_jobs): jobs whose worker vanished become failures
    even when no page is open to notice."""
    return jobs_expire_lost()


@shared_task(name="core.tasks.statistics_refresh")
def statistics_refresh_task(models: list[str], written: int) -> bool:
    """ANALYZE after a large write that committed in another job (a launch), off its path.
    `models` are app labels ("campaigns.LedgerEntry")."""
    return statistics_refresh([apps.get_model(label) for label in models], written)
