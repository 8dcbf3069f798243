"""Celery entry points: take ids, re-read the database, call one service.

Each is safe to run twice: a refresh writes a new version (a second run only writes one
more), a range scoring replaces its range's scores, a re-train adds a version.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from celery import shared_task
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse

from core.formatting import count
from core.jobs import job_note

from .models import Segment, SegmentModel
from .services import families, membership, scoring, training, transitions


# Schedules are at least core.schedules.MIN_INTERVAL_MINUTES apart: a scheduled run this
# soon after a refresh is the same tick fired twice (two beats running), not the next one.
SCHEDULED_TICK_SECONDS = 60


@shared_task(name="segments.tasks.segment_refresh", acks_late=True, reject_on_worker_lost=True)
def segment_refresh(segment_id: int, scheduled: bool = False) -> dict | None:
    window = timedelta(seconds=SCHEDULED_TICK_SECONDS) if scheduled else None
    try:
        refreshes = membership.segment_refresh(segment_id, unless_refreshed_within=window)
    except Segment.DoesNotExist:
        return None  # deleted since the refresh was queued or scheduled
    mine = next((r for r in refreshes if r.segment_id == segment_id), None)
    if mine is not None:
        job_note(f"{count(mine.size)} customers now ({count(mine.entered)} entered, {count(mine.left)} left).",
                 url=reverse("segments:detail", args=[segment_id]))
    return {"segments": [r.segment_id for r in refreshes], "sizes": [r.size for r in refreshes]}


@shared_task(name="segments.tasks.family_moves_store", acks_late=True, reject_on_worker_lost=True)
def family_moves_store(family: str, old: int, new: int) -> int:
    """Count who moved where between two kept versions of a family (the migration page
    found no stored count for them). Idempotent: it replaces the one stored row."""
    with transaction.atomic():
        stored = transitions.family_moves_store(family, old, new)
    job_note(f"Counted in {stored.seconds:.1f} s.", url=reverse("segments:migration") + f"?family={quote(family)}",
             link_text="See how customers moved")
    return stored.pk


@shared_task(name="segments.tasks.segment_refresh_all")
def segment_refresh_all() -> int:
    return len(membership.segment_refresh_all())


@shared_task(name="segments.tasks.model_retrain")
def model_retrain(model_id: int) -> int | None:
    try:
        model = training.model_retrain(model_id)
    except SegmentModel.DoesNotExist:
        return None
    _trained_note(model)
    return model.pk


@shared_task(name="segments.tasks.model_score_range", acks_late=True, reject_on_worker_lost=True)
def model_score_range(model_id: int, low: int, high: int) -> bool:
    try:
        return scoring.model_score_range_run(model_id, low, high)
    except SegmentModel.DoesNotExist:
        return False


@shared_task(name="segments.tasks.model_train")
def model_train(kind: str, **options) -> int:
    """Train a new model from the API's JSON options (kind, name, target, churn_days...)."""
    model = training.model_train(kind, **options)
    _trained_note(model)
    return model.pk


def _trained_note(model: SegmentModel) -> None:
    job_note(f"{model.name} v{model.version} trained on {count(model.training_rows)} customers.",
             url=reverse("segments:model", args=[model.pk]), link_text=f"Open {model.name} v{model.version}")


@shared_task(name="segments.tasks.model_segments_release")
def model_segments_release(model_id: int, user_id: int | None = None) -> int:
    """Make the segments of a model the guard rail held back, because someone said so."""
    user = User.objects.filter(pk=user_id).first() if user_id else None
    refreshes = families.model_segments_release(model_id, user=user)
    job_note(f"{len(refreshes)} segments made from it.", url=reverse("segments:model", args=[model_id]))
    return len(refreshes)
