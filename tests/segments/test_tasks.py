"""segments/tasks.py: thin entry points, safe to run twice, and a real worker run."""

from __future__ import annotations

import json

import pytest

from segments import tasks
from segments.services import training
from segments.services.schedules import segment_schedule_set
from segments.models import Segment, SegmentModel
from tests.conftest import wait_for
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_refresh_task_twice_writes_two_complete_versions():
    CustomerFactory.create_batch(3, country="US")
    segment = Segment.objects.create(name="us", rule={"field": "country", "op": "eq", "value": "US"})
    tasks.segment_refresh(segment.pk)
    tasks.segment_refresh(segment.pk)
    segment.refresh_from_db()
    assert segment.current_version == 2 and segment.size == 3


def test_refresh_task_for_a_deleted_segment_does_nothing():
    assert tasks.segment_refresh(10_000) is None


def test_retrain_task_of_a_deleted_model_does_nothing():
    assert tasks.model_retrain(10_000) is None


def test_retrain_task_trains_the_next_version():
    CustomerFactory.create_batch(8)
    model = training.model_train("rfm")
    new_id = tasks.model_retrain(model.pk)
    assert SegmentModel.objects.get(pk=new_id).version == 2


@pytest.mark.worker
def test_a_real_worker_refreshes_a_queued_segment(celery_worker_process):
    CustomerFactory.create_batch(4, country="US")
    segment = Segment.objects.create(name="us", rule={"field": "country", "op": "eq", "value": "US"})
    tasks.segment_refresh.delay(segment.pk)

    def refreshed():
        segment.refresh_from_db()
        return segment.current_version == 1

    wait_for(refreshed, timeout=90, what="the worker to refresh the segment")
    assert segment.size == 4


def test_two_beats_firing_one_scheduled_tick_refresh_once():
    CustomerFactory.create_batch(3, country="US")
    segment = Segment.objects.create(name="us", rule={"field": "country", "op": "eq", "value": "US"})
    tasks.segment_refresh(segment.pk, scheduled=True)
    tasks.segment_refresh(segment.pk, scheduled=True)  # the same tick from a second beat
    segment.refresh_from_db()
    assert segment.current_version == 1 and segment.size == 3


def test_a_segments_schedule_marks_its_runs_as_scheduled():
    segment = Segment.objects.create(name="us", rule={"field": "country", "op": "eq", "value": "US"})
    periodic = segment_schedule_set(segment, {"every": "day", "at": "06:00"})
    assert json.loads(periodic.kwargs) == {"scheduled": True}
