"""Recurring refreshes and re-trains, as django-celery-beat rows written through core.schedules.

A schedule is the JSON core.schedules reads ({"every": "day", "at": "06:30"},
{"every_minutes": 30}, {"crontab": "30 6 * * 1-5"}, optional "timezone"). A bad one is a
bad segment payload to the API and the pages, so its errors come back as SpecInvalid.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django_celery_beat.models import PeriodicTask

from core.schedules import ScheduleInvalid, periodic_task_clear, periodic_task_get, periodic_task_set

from ..models import Segment, SegmentModel
from .specs import SpecInvalid

REFRESH_TASK = "segments.tasks.segment_refresh"
RETRAIN_TASK = "segments.tasks.model_retrain"


@contextmanager
def _as_spec_errors() -> Iterator[None]:
    try:
        yield
    except ScheduleInvalid as exc:
        raise SpecInvalid(exc.errors) from None


def segment_schedule_name(segment: Segment) -> str:
    return f"segments:refresh:{segment.pk}"


def model_schedule_name(name: str) -> str:
    return f"segments:retrain:{name}"[:200]


@transaction.atomic
def segment_schedule_set(segment: Segment, schedule: dict) -> PeriodicTask:
    """Refresh the segment on this schedule (replacing any earlier one)."""
    with _as_spec_errors():
        # `scheduled`: a tick that a second beat (an operator's mistake) fires again is
        # recognised by the task and not refreshed twice.
        return periodic_task_set(segment_schedule_name(segment), REFRESH_TASK, [segment.pk], schedule,
                                 f"Refresh segment {segment.name}", kwargs={"scheduled": True})


def segment_schedule_clear(segment: Segment) -> int:
    return periodic_task_clear(segment_schedule_name(segment))


def segment_schedule(segment: Segment) -> PeriodicTask | None:
    return periodic_task_get(segment_schedule_name(segment))


@transaction.atomic
def model_schedule_set(model: SegmentModel, schedule: dict) -> PeriodicTask:
    """Re-train the model (a new version of its name) and refresh its family on a schedule."""
    with _as_spec_errors():
        return periodic_task_set(model_schedule_name(model.name), RETRAIN_TASK, [model.pk], schedule,
                                 f"Re-train model {model.name} and refresh its segments")

