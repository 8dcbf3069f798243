"""Recurring refreshes and re-trains, stored as django-celery-beat periodic tasks.

Schedules live in the database (DESIGN.md: no long ETAs on the broker); celery beat's
DatabaseScheduler reads them. A schedule is JSON a marketer can write:

    {"every": "hour", "minute": 15}                      # hourly at :15
    {"every": "day", "at": "06:30"}                      # daily at 06:30
    {"every": "week", "at": "06:30", "day_of_week": "mon"}
    {"every_minutes": 30}                                # an interval
    {"crontab": "30 6 * * 1-5"}                          # anything else
    (optional "timezone": "Europe/Berlin"; default TIME_ZONE)
"""

from __future__ import annotations

import json
import re
import zoneinfo
from typing import Any

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from ..models import Segment, SegmentModel
from .membership import SpecInvalid

REFRESH_TASK = "segments.tasks.segment_refresh"
RETRAIN_TASK = "segments.tasks.model_retrain"
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELD = re.compile(r"^[0-9*/,\-a-z]{1,64}$")
_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MIN_INTERVAL_MINUTES = 5  # a refresh of a large base takes minutes; tighter is a mistake


def schedule_clean(schedule: Any) -> dict[str, Any]:
    """The crontab fields or interval a schedule asks for (SpecInvalid otherwise)."""
    errors: list[dict[str, str]] = []

    def fail(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})

    if not isinstance(schedule, dict):
        raise SpecInvalid([{"path": "", "message": "expected an object such as {\"every\": \"day\", \"at\": \"06:00\"}"}])
    tz = schedule.get("timezone", settings.TIME_ZONE)
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail("timezone", f"unknown time zone {tz!r}")
    out: dict[str, Any] = {"timezone": tz}
    if "every_minutes" in schedule:
        minutes = schedule["every_minutes"]
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < MIN_INTERVAL_MINUTES:
            fail("every_minutes", f"expected a whole number of minutes, at least {MIN_INTERVAL_MINUTES}")
        out["interval_minutes"] = minutes
    elif "crontab" in schedule:
        parts = str(schedule["crontab"]).split()
        if len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
            fail("crontab", "expected five crontab fields: minute hour day-of-month month day-of-week")
        else:
            out["crontab"] = dict(zip(("minute", "hour", "day_of_month", "month_of_year", "day_of_week"), parts))
    else:
        every = schedule.get("every")
        at = schedule.get("at", "00:00")
        match = _AT.match(at) if isinstance(at, str) else None
        if every in ("day", "week") and not match:
            fail("at", "expected a time HH:MM")
        hour, minute = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if every == "hour":
            minute = schedule.get("minute", 0)
            if not isinstance(minute, int) or not 0 <= minute <= 59:
                fail("minute", "expected a minute 0-59")
            out["crontab"] = {"minute": str(minute), "hour": "*", "day_of_month": "*", "month_of_year": "*",
                              "day_of_week": "*"}
        elif every == "day":
            out["crontab"] = {"minute": str(minute), "hour": str(hour), "day_of_month": "*", "month_of_year": "*",
                              "day_of_week": "*"}
        elif every == "week":
            day = schedule.get("day_of_week", "mon")
            if day not in DAYS:
                fail("day_of_week", f"expected one of {', '.join(DAYS)}")
            out["crontab"] = {"minute": str(minute), "hour": str(hour), "day_of_month": "*", "month_of_year": "*",
                              "day_of_week": str(day)}
        else:
            fail("every", "expected 'hour', 'day' or 'week' (or every_minutes, or crontab)")
    if errors:
        raise SpecInvalid(errors)
    return out


def _periodic_task_set(name: str, task: str, args: list, schedule: dict, description: str) -> PeriodicTask:
    clean = schedule_clean(schedule)
    interval = crontab = None
    if "interval_minutes" in clean:
        interval, _ = IntervalSchedule.objects.get_or_create(every=clean["interval_minutes"],
                                                            period=IntervalSchedule.MINUTES)
    else:
        crontab, _ = CrontabSchedule.objects.get_or_create(timezone=clean["timezone"], **clean["crontab"])
    # Saving through the model (not .update()) lets django-celery-beat tell a running
    # beat that the schedule changed.
    periodic = PeriodicTask.objects.filter(name=name).first() or PeriodicTask(name=name)
    periodic.task, periodic.args, periodic.kwargs = task, json.dumps(args), "{}"
    periodic.interval, periodic.crontab, periodic.enabled = interval, crontab, True
    periodic.description = description[:2000]
    periodic.save()
    return periodic


def segment_schedule_name(segment: Segment) -> str:
    return f"segments:refresh:{segment.pk}"


def model_schedule_name(name: str) -> str:
    return f"segments:retrain:{name}"[:200]


@transaction.atomic
def segment_schedule_set(segment: Segment, schedule: dict) -> PeriodicTask:
    """Refresh the segment on this schedule (replacing any earlier one)."""
    return _periodic_task_set(segment_schedule_name(segment), REFRESH_TASK, [segment.pk], schedule,
                              f"Refresh segment {segment.name}")


def segment_schedule_clear(segment: Segment) -> int:
    return PeriodicTask.objects.filter(name=segment_schedule_name(segment)).delete()[0]


def segment_schedule(segment: Segment) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=segment_schedule_name(segment)).select_related("crontab", "interval").first()


@transaction.atomic
def model_schedule_set(model: SegmentModel, schedule: dict) -> PeriodicTask:
    """Re-train the model (a new version of its name) and refresh its family on a schedule."""
    return _periodic_task_set(model_schedule_name(model.name), RETRAIN_TASK, [model.pk], schedule,
                              f"Re-train model {model.name} and refresh its segments")


def model_schedule_clear(model: SegmentModel) -> int:
    return PeriodicTask.objects.filter(name=model_schedule_name(model.name)).delete()[0]


def schedule_describe(periodic: PeriodicTask | None) -> dict[str, Any] | None:
    if periodic is None:
        return None
    out: dict[str, Any] = {"name": periodic.name, "task": periodic.task, "enabled": periodic.enabled,
                           "last_run_at": periodic.last_run_at}
    if periodic.crontab_id:
        c = periodic.crontab
        out["crontab"] = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
        out["timezone"] = str(c.timezone)
    elif periodic.interval_id:
        out["every_minutes"] = periodic.interval.every if periodic.interval.period == IntervalSchedule.MINUTES else None
    return out
