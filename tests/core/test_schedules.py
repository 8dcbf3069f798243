import pytest
from django_celery_beat.models import PeriodicTask

from core.jobs import registered_tasks
from core.schedules import (
    ScheduleInvalid, cron_parse, periodic_jobs, periodic_jobs_sync, periodic_task_clear, periodic_task_get,
    periodic_task_set, schedule_clean, schedule_describe,
)


def test_cron_parse_names_each_field():
    assert cron_parse("30 6 * * 1-5") == {"minute": "30", "hour": "6", "day_of_month": "*",
                                          "month_of_year": "*", "day_of_week": "1-5"}


def test_cron_that_can_never_run_is_refused_with_the_field_named():
    with pytest.raises(ScheduleInvalid) as caught:
        cron_parse("99 99 99 99 99")
    paths = [e["path"] for e in caught.value.errors]
    assert paths == ["crontab.minute", "crontab.hour", "crontab.day_of_month", "crontab.month_of_year",
                     "crontab.day_of_week"]


@pytest.mark.parametrize("text", ["* * *", "a b c d e f", "1;drop * * * *"])
def test_cron_needs_five_fields(text):
    with pytest.raises(ScheduleInvalid, match="five crontab fields"):
        cron_parse(text)


@pytest.mark.parametrize("schedule, crontab", [
    ({"every": "hour", "minute": 15}, ("15", "*", "*", "*", "*")),
    ({"every": "day", "at": "06:30"}, ("30", "6", "*", "*", "*")),
    ({"every": "week", "at": "07:05", "day_of_week": "fri"}, ("5", "7", "*", "*", "fri")),
])
def test_friendly_schedules_become_crontabs(schedule, crontab):
    clean = schedule_clean(schedule)
    assert tuple(clean["crontab"].values()) == crontab


@pytest.mark.parametrize("schedule, path", [
    ({"every_minutes": 1}, "every_minutes"),
    ({"every_minutes": True}, "every_minutes"),
    ({"every": "fortnight"}, "every"),
    ({"every": "day", "at": "25:00"}, "at"),
    ({"every": "day", "timezone": "Mars/Olympus"}, "timezone"),
    ({"crontab": "0 0 32 * *"}, "crontab.day_of_month"),
])
def test_bad_schedules_say_where(schedule, path):
    with pytest.raises(ScheduleInvalid) as caught:
        schedule_clean(schedule)
    assert path in [e["path"] for e in caught.value.errors]


@pytest.mark.django_db
def test_periodic_task_set_replaces_the_row_of_that_name():
    periodic_task_set("t", "segments.tasks.segment_refresh", [1], {"every": "day", "at": "06:00"})
    periodic_task_set("t", "segments.tasks.segment_refresh", [1], {"every_minutes": 30})
    row = periodic_task_get("t")
    assert PeriodicTask.objects.filter(name="t").count() == 1
    assert schedule_describe(row)["every_minutes"] == 30
    assert periodic_task_clear("t") == 1


@pytest.mark.django_db
def test_every_periodic_job_is_in_beats_table_once_after_migrate():
    periodic_jobs_sync()  # again, as a second migrate would
    for job in periodic_jobs():
        rows = PeriodicTask.objects.filter(name=job.name)
        assert rows.count() == 1
        assert rows.get().task == job.task
        assert rows.get().interval.every == job.every_seconds


@pytest.mark.django_db
def test_every_periodic_job_names_a_registered_task():
    for job in periodic_jobs():
        assert job.task in registered_tasks(), job.task
