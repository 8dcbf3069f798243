"""Celery entry points: take ids, re-read the database, safe to run twice."""

from celery import shared_task
from django.contrib.auth.models import User
from django.urls import reverse

from core.formatting import count
from core.jobs import enqueue, job_note

from . import selectors
from .models import Experiment
from .services.reports import report_refresh
from .services.uplift import uplift_segment_create


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



@shared_task(name="experiments.tasks.uplift_segment_create")
def uplift_segment_create_task(model_id: int, fraction: float, name: str, ties: str = "", override: bool = False,
                               user_id: int | None = None) -> int:
    """Score every customer with an uplift model and make its top share a segment."""
    user = User.objects.filter(pk=user_id).first() if user_id else None
    segment = uplift_segment_create(model_id, fraction, name, user=user, ties=ties or None, override=override)
    job_note(f"Segment {segment.name} made with {count(segment.size)} customers.",
             url=reverse("segments:detail", args=[segment.id]), link_text=f"Open {segment.name}")
    return segment.id
