"""Celery entry points: take ids, re-read the database, safe to run twice."""

from celery import shared_task
from django.urls import reverse

from core.jobs import enqueue, job_note

from . import selectors
from .models import Experiment
from .services.reports import report_refresh


# Idempotent (recomputing stores the same row), so a redelivered message may run it again.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def experiment_report_refresh(experiment_id: int, by: str = "", force: bool = False) -> None:
    experiment = Experiment.objects.filter(id=experiment_id).first()
    if experiment is None:  # deleted since the task was queued
        return
    report = report_refresh(experiment, by=by, force=force)
    job_note(f"Computed from the latest data in {report.seconds:.1f} s.",
             url=reverse("experiments:detail", args=[experiment_id]))


@shared_task
def experiment_reports_refresh_stale() -> int:
    """Scheduled (core.schedules.periodic_jobs): queue a refresh for every report whose data moved,
    which is how orders and events imported later reach the reports."""
    stale = selectors.reports_stale()
    for experiment_id, by in stale:
        enqueue("experiments.tasks.experiment_report_refresh", experiment_id, by, False)
    return len(stale)

