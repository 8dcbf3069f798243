"""Schedules: validating what a person writes, and the periodic jobs the system runs.

Schedules live in the database as django-celery-beat rows (DESIGN.md: no long ETAs on the
broker); beat's DatabaseScheduler reads them. A schedule is JSON a marketer can write:

    {"every": "hour", "minute": 15}                      # hourly at :15
    {"every": "day", "at": "06:30"}                      # daily at 06:30
    {"every": "week", "at": "06:30", "day_of_week": "mon"}
    {"every_minutes": 30}                                # an interval
    {"crontab": "30 6 * * 1-5"}                          # anything else
    (optional "timezone": "Europe/Berlin"; default TIME_ZONE)

The system's own periodic jobs are declared once, in PERIODIC_JOBS, and written to the same
tables after every migrate, so `beat` needs no other configuration.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from celery.schedules import crontab_parser
from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
# (size, first value) of each crontab field, as celery's own parser reads them.
CRON_RANGES = {"minute": (60, 0), "hour": (24, 0), "day_of_month": (31, 1), "month_of_year": (12, 1),
               "day_of_week": (7, 0)}
_CRON_FIELD = re.compile(r"^[0-9*/,\-a-z]{1,64}$")
_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MIN_INTERVAL_MINUTES = 5  # a refresh of a large base takes minutes; tighter is a mistake


class ScheduleInvalid(ValueError):
    """A schedule that cannot run; `errors` are {path, message}, like a rule's."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))


def cron_parse(text: str) -> dict[str, str]:
    """Five crontab fields by name; ScheduleInvalid naming the field that cannot run.

    Each field goes through celery's own parser, so `99 99 99 99 99` is refused here rather
    than saved and silently never run.
    """
    parts = str(text).split()
    if len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
        raise ScheduleInvalid([{"path": "crontab",
                                "message": "expected five crontab fields: minute hour day-of-month month day-of-week"}])
    errors = []
    for name, part in zip(CRON_FIELDS, parts):
        size, first = CRON_RANGES[name]
        try:
            crontab_parser(size, first).parse(part)
        except ValueError as exc:
            errors.append({"path": f"crontab.{name}", "message": f"{part!r} cannot run: {exc}"})
    if errors:
        raise ScheduleInvalid(errors)
    return dict(zip(CRON_FIELDS, parts))


def schedule_clean(schedule: Any) -> dict[str, Any]:
    """The crontab fields or interval a schedule asks for (ScheduleInvalid otherwise)."""
    errors: list[dict[str, str]] = []

    def fail(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})

    if not isinstance(schedule, dict):
        raise ScheduleInvalid([{"path": "", "message": "expected an object such as {\"every\": \"day\", \"at\": \"06:00\"}"}])
    tz = schedule.get("timezone", settings.TIME_ZONE)
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail("timezone", f"unknown time zone {tz!r}")
    out: dict[str, Any] = {"timezone": tz}
    if "every_minutes" in schedule:
        minutes = schedule["every_minutes"]
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not MIN_INTERVAL_MINUTES <= minutes <= 525_600:
            fail("every_minutes", f"expected a whole number of minutes from {MIN_INTERVAL_MINUTES} to 525600")
        out["interval_minutes"] = minutes
    elif "crontab" in schedule:
        try:
            out["crontab"] = cron_parse(schedule["crontab"])
        except ScheduleInvalid as exc:
            errors.extend(exc.errors)
    else:
        every = schedule.get("every")
        at = schedule.get("at", "00:00")
        match = _AT.match(at) if isinstance(at, str) else None
        if every in ("day", "week") and not match:
            fail("at", "expected a time HH:MM")
        hour, minute = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        day = "*"
        if every == "hour":
            minute = schedule.get("minute", 0)
            if not isinstance(minute, int) or isinstance(minute, bool) or not 0 <= minute <= 59:
                fail("minute", "expected a minute 0-59")
            hour = "*"
        elif every == "week":
            day = schedule.get("day_of_week", "mon")
            if day not in DAYS:
                fail("day_of_week", f"expected one of {', '.join(DAYS)}")
        elif every != "day":
            fail("every", "expected 'hour', 'day' or 'week' (or every_minutes, or crontab)")
        out["crontab"] = dict(zip(CRON_FIELDS, (str(minute), str(hour), "*", "*", str(day))))
    if errors:
        raise ScheduleInvalid(errors)
    return out


def periodic_task_set(name: str, task: str, args: list, schedule: dict, description: str = "",
                      start_time=None, kwargs: dict | None = None) -> PeriodicTask:
    """Create or replace the beat row called `name` (a schedule as schedule_clean reads it)."""
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
    periodic.task, periodic.args, periodic.kwargs = task, json.dumps(args), json.dumps(kwargs or {})
    periodic.interval, periodic.crontab, periodic.enabled = interval, crontab, True
    periodic.description = description[:2000]
    periodic.start_time = start_time
    periodic.save()
    return periodic


def periodic_task_clear(name: str) -> int:
    return PeriodicTask.objects.filter(name=name).delete()[0]


def periodic_task_get(name: str) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=name).select_related("crontab", "interval").first()


def schedule_describe(periodic: PeriodicTask | None) -> dict[str, Any] | None:
    """A beat row as the JSON a person wrote (None when there is none)."""
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


# --------------------------------------------------------------------------- periodic jobs


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int


def periodic_jobs() -> list[PeriodicJob]:
    """Every job the system runs by itself: the one place they are declared."""
    return [
        # Re-wakes sending campaigns, expires leases, reconciles unknown rows.
        PeriodicJob("campaigns: pump", "campaigns.tasks.campaign_pump_task", settings.CAMPAIGN_PUMP_SECONDS),
        # Triggered offers: segment refreshes and events past the watermark become entries.
        PeriodicJob("campaigns: automations", "campaigns.tasks.automation_tick_task", settings.CAMPAIGN_PUMP_SECONDS),
        # Frequency-cap slots older than the cap's window: one row per email sent, for ever, otherwise.
        PeriodicJob("campaigns: prune cap slots", "campaigns.tasks.cap_slots_prune_task", 3600),
        # Orders and events arrive through customers, which must not import experiments:
        # this is how their arrival reaches cached reports.
        PeriodicJob("experiments: refresh stale reports", "experiments.tasks.experiment_reports_refresh_stale", 600),
        # A job whose worker vanished becomes a failure with a retry even if no page is open.
        PeriodicJob("core: expire lost jobs", "core.tasks.jobs_expire_lost", 60),
    ]


def periodic_jobs_sync(sender=None, **kwargs) -> None:
    """Write the periodic jobs to beat's tables (after every migrate); idempotent."""
    if sender is not None and sender.label != "django_celery_beat":
        return  # post_migrate fires once per app; once is enough
    for job in periodic_jobs():
        interval, _ = IntervalSchedule.objects.get_or_create(every=job.every_seconds, period=IntervalSchedule.SECONDS)
        periodic = PeriodicTask.objects.filter(name=job.name).first() or PeriodicTask(name=job.name)
        if (periodic.pk and periodic.task == job.task and periodic.interval_id == interval.pk
                and periodic.crontab_id is None):
            continue
        periodic.task, periodic.interval, periodic.crontab = job.task, interval, None
        periodic.save()
