"""segments/services/schedules.py: refresh and re-train schedules in django-celery-beat."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from segments.services import membership, schedules, specs
from segments.models import Segment, SegmentModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment():
    return Segment.objects.create(name="vip", rule={"all": []})


@pytest.mark.parametrize("schedule,crontab", [
    ({"every": "day", "at": "06:30"}, ("30", "6", "*", "*", "*")),
    ({"every": "hour"}, ("0", "*", "*", "*", "*")),
    ({"every": "hour", "minute": 15}, ("15", "*", "*", "*", "*")),
    ({"every": "week", "at": "03:00", "day_of_week": "sun"}, ("0", "3", "*", "*", "sun")),
    ({"crontab": "0 7 * * 1-5"}, ("0", "7", "*", "*", "1-5")),
])
def test_a_crontab_schedule_becomes_a_periodic_refresh(segment, schedule, crontab):
    periodic = schedules.segment_schedule_set(segment, schedule)
    assert periodic.task == "segments.tasks.segment_refresh" and json.loads(periodic.args) == [segment.pk]
    c = periodic.crontab
    assert (c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week) == crontab
    assert periodic.enabled and periodic.interval is None


def test_an_interval_schedule(segment):
    periodic = schedules.segment_schedule_set(segment, {"every_minutes": 30})
    assert (periodic.interval.every, periodic.interval.period) == (30, IntervalSchedule.MINUTES)
    assert periodic.crontab is None


def test_setting_a_schedule_again_replaces_it(segment):
    schedules.segment_schedule_set(segment, {"every": "day", "at": "06:30"})
    schedules.segment_schedule_set(segment, {"every_minutes": 60})
    (periodic,) = PeriodicTask.objects.filter(name=f"segments:refresh:{segment.pk}")
    assert periodic.interval.every == 60 and periodic.crontab is None


def test_schedule_in_a_time_zone(segment):
    periodic = schedules.segment_schedule_set(segment, {"every": "day", "at": "09:00", "timezone": "Europe/Berlin"})
    assert str(periodic.crontab.timezone) == "Europe/Berlin"


def test_clearing_and_deleting_remove_the_periodic_task(segment):
    schedules.segment_schedule_set(segment, {"every": "hour"})
    assert schedules.segment_schedule_clear(segment) == 1
    schedules.segment_schedule_set(segment, {"every": "hour"})
    membership.segment_delete(segment)
    assert not PeriodicTask.objects.filter(name__startswith="segments:refresh:").exists()


@pytest.mark.parametrize("schedule,path", [
    ({"every": "fortnight"}, "every"),
    ({"every": "day", "at": "25:00"}, "at"),
    ({"every": "week", "at": "06:00", "day_of_week": "funday"}, "day_of_week"),
    ({"every_minutes": 1}, "every_minutes"),
    ({"crontab": "* * *"}, "crontab"),
    ({"crontab": "0 0 * * *; rm -rf"}, "crontab"),
    ({"crontab": "99 0 * * *"}, "crontab.minute"),  # five fields, but one that can never run
    ({"every": "day", "at": "06:00", "timezone": "Mars/Olympus"}, "timezone"),
])
def test_bad_schedules_are_refused_with_the_key(segment, schedule, path):
    with pytest.raises(specs.SpecInvalid) as caught:
        schedules.segment_schedule_set(segment, schedule)
    assert [e["path"] for e in caught.value.errors] == [path]
    assert not PeriodicTask.objects.filter(name__startswith="segments:").exists()


def test_crontab_rows_are_shared_between_schedules(segment):
    other = Segment.objects.create(name="other", rule={"all": []})
    schedules.segment_schedule_set(segment, {"every": "day", "at": "06:30"})
    schedules.segment_schedule_set(other, {"every": "day", "at": "06:30"})
    assert CrontabSchedule.objects.count() == 1


def test_a_model_retrains_on_its_own_schedule():
    model = SegmentModel.objects.create(name="churn", kind="propensity", pipeline=b"")
    periodic = schedules.model_schedule_set(model, {"every": "week", "at": "02:00", "day_of_week": "mon"})
    assert periodic.task == "segments.tasks.model_retrain" and json.loads(periodic.args) == [model.pk]
    assert periodic.name == "segments:retrain:churn"
