"""experiments/tasks.py: thin entry points that are safe to run twice."""

import pytest

from experiments import tasks
from experiments.models import Report
from tests.conftest import wait_for

from .factories import campaign_experiment, expose, order

pytestmark = pytest.mark.django_db


def test_running_the_report_task_twice_keeps_one_report_and_does_not_recompute():
    experiment = campaign_experiment()
    order(expose(experiment, "offer"), days_after=1)
    expose(experiment, "holdout")

    tasks.experiment_report_refresh(experiment.id)
    first = Report.objects.get(experiment=experiment)
    tasks.experiment_report_refresh(experiment.id)
    second = Report.objects.get(experiment=experiment)

    assert Report.objects.count() == 1
    assert second.computed_at == first.computed_at
    assert second.body == first.body


def test_forcing_the_task_recomputes_the_same_numbers():
    experiment = campaign_experiment()
    expose(experiment, "offer")
    expose(experiment, "holdout")
    tasks.experiment_report_refresh(experiment.id)
    before = Report.objects.get()
    tasks.experiment_report_refresh(experiment.id, "", True)
    after = Report.objects.get()
    assert after.computed_at > before.computed_at
    assert after.body["metrics"] == before.body["metrics"]


def test_the_task_for_a_deleted_experiment_does_nothing():
    tasks.experiment_report_refresh(987654)
    assert not Report.objects.exists()


def test_the_scheduled_task_queues_only_reports_whose_data_moved(monkeypatch):
    moved, still = campaign_experiment(name="moved"), campaign_experiment(name="still")
    for experiment in (moved, still):
        expose(experiment, "offer")
        tasks.experiment_report_refresh(experiment.id)
    expose(moved, "holdout")
    queued = []
    monkeypatch.setattr(tasks, "enqueue", lambda name, *args: queued.append((name, *args)))

    assert tasks.experiment_reports_refresh_stale() == 1
    assert queued == [("experiments.tasks.experiment_report_refresh", moved.id, "", False)]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_report_task_twice_into_one_report(celery_worker_process):
    experiment = campaign_experiment()
    order(expose(experiment, "offer"), days_after=1)
    expose(experiment, "holdout")

    tasks.experiment_report_refresh.delay(experiment.id, "", True)
    first = wait_for(lambda: Report.objects.filter(experiment=experiment).first(), timeout=60, what="report")
    tasks.experiment_report_refresh.delay(experiment.id, "", True)
    second = wait_for(
        lambda: Report.objects.filter(experiment=experiment, computed_at__gt=first.computed_at).first(),
        timeout=60, what="second run")

    assert Report.objects.filter(experiment=experiment).count() == 1
    assert second.body["units"] == 2 and second.body["metrics"] == first.body["metrics"]
