"""Celery entry points of core: thin, safe to run twice."""

from celery import shared_task

from .jobs import jobs_expire_lost


@shared_task(name="core.tasks.jobs_expire_lost")
def jobs_expire_lost_task() -> int:
    """Scheduled (core.schedules.periodic_jobs): jobs whose worker vanished become failures
    even when no page is open to notice."""
    return jobs_expire_lost()
