import pytest
from celery import current_app
from django.db import transaction

from core.jobs import UnknownTask, enqueue, registered_tasks


@pytest.fixture
def published(monkeypatch):
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args=(), kwargs=None, **options: sent.append((name, args)))
    return sent


def test_a_task_name_no_worker_knows_is_refused_at_the_call(published):
    with pytest.raises(UnknownTask, match="campaigns.tasks.nope"):
        enqueue("campaigns.tasks.nope", 1)
    assert published == []


@pytest.mark.django_db(transaction=True)
def test_a_task_is_published_only_when_the_transaction_commits(published):
    with transaction.atomic():
        enqueue("experiments.tasks.experiment_reports_refresh_stale")
        assert published == []
    assert published == [("experiments.tasks.experiment_reports_refresh_stale", ())]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_queues_nothing(published):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("experiments.tasks.experiment_reports_refresh_stale")
        raise RuntimeError
    assert published == []


@pytest.mark.django_db(transaction=True)
def test_with_always_eager_the_task_runs_here_after_commit(published, monkeypatch):
    ran = []
    task = registered_tasks()["experiments.tasks.experiment_reports_refresh_stale"]
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    monkeypatch.setattr(task, "run", lambda *args, **kwargs: ran.append(args))
    with transaction.atomic():
        enqueue("experiments.tasks.experiment_reports_refresh_stale")
        assert ran == []
    assert ran == [()]
    assert published == []  # nothing went to the broker
