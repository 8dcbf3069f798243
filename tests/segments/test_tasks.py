"""segments/tasks.py: thin entry points, safe to run twice, and a real worker run."""

from __future__ import annotations

import json

import pytest

from segments import tasks
from segments.services import scoring, training
from segments.services.schedules import segment_schedule_set
from segments.models import ModelScore, Segment, SegmentModel
from tests.conftest import wait_for, worker_start
from tests.factories import CustomerFactory, OrderFactory

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


@pytest.mark.worker
def test_two_worker_processes_score_a_model_split_into_ranges(transactional_db, tmp_path):
    customers = CustomerFactory.create_batch(60)
    for i, customer in enumerate(customers):
        OrderFactory.create_batch(1 + i % 4, customer=customer)
    model = training.model_train("rfm", score=False)
    log = tmp_path / "worker.log"
    proc = worker_start(log, concurrency=2)
    try:
        ranges = scoring.model_score_start(model, chunk=8)
        assert len(ranges) >= 7
        # Progress is visible while the ranges run: the ranges, and those done so far.
        model.refresh_from_db()
        assert model.scoring["ranges"] == [list(r) for r in ranges] and model.scored_at is None

        def scored():
            model.refresh_from_db()
            return model.scored_at is not None

        wait_for(scored, timeout=120, what="the workers to score every range")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert model.scoring["done"] == sorted(low for low, _ in ranges)
    scores = ModelScore.objects.filter(model=model)
    assert scores.count() == scores.values("customer").distinct().count() == 60
    # The last range materialised the family: every customer in exactly one tier.
    assert sum(s.size for s in Segment.objects.filter(family=model.name)) == 60
    assert log.read_text().count("segments.tasks.model_score_range[") >= len(ranges)


def test_a_range_task_run_twice_leaves_its_scores_once(django_capture_on_commit_callbacks):
    customers = CustomerFactory.create_batch(12)
    for customer in customers:
        OrderFactory(customer=customer)
    model = training.model_train("rfm", score=False)
    with django_capture_on_commit_callbacks(execute=False):
        ranges = scoring.model_score_start(model, chunk=100)
    (low, high), = ranges
    assert tasks.model_score_range(model.pk, low, high) is True
    first = sorted(ModelScore.objects.filter(model=model).values_list("customer_id", "score", "label"))
    assert tasks.model_score_range(model.pk, low, high) is False  # already finished: nothing more to do
    again = sorted(ModelScore.objects.filter(model=model).values_list("customer_id", "score", "label"))
    assert again == first and len(first) == 12


def test_a_range_task_for_a_deleted_model_does_nothing():
    assert tasks.model_score_range(10_000, 1, 100) is False


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
