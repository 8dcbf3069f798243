"""Celery entry points: take ids, re-read the database, safe to run twice."""

from celery import shared_task

from . import selectors, services
from .models import Experiment


# Idempotent (recomputing stores the same row), so a redelivered message may run it again.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def experiment_report_refresh(experiment_id: int, by: str = "", force: bool = False) -> None:
    experiment = Experiment.objects.filter(id=experiment_id).first()
    if experiment is None:  # deleted since the task was queued
        return
    services.report_refresh(experiment, by=by, force=force)


@shared_task
def experiment_reports_refresh_stale() -> int:
    """Scheduled (see migration 0002): queue a refresh for every report whose data moved,
    which is how orders and events imported later reach the reports."""
    stale = selectors.reports_stale()
    for experiment_id, by in stale:
        experiment_report_refresh.delay(experiment_id, by, False)
    return len(stale)
