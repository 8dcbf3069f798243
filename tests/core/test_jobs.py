from datetime import timedelta

import pytest
from celery import current_app
from django.db import transaction
from django.utils import timezone

from core import jobs
from core.jobs import (
    LOST_AFTER, QUEUED_LOST_AFTER, Track, UnknownTask, enqueue, failure_words, job_retry, jobs_expire_lost,
    registered_tasks,
)
from core.models import Job
from segments.services.membership import segment_create
from segments.services.training import TrainingError
from tests.conftest import wait_for
from tests.factories import CustomerFactory


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


# --------------------------------------------------------------------------- tracked jobs



@pytest.fixture
def published_with_options(monkeypatch):
    sent = []
    monkeypatch.setattr(current_app, "send_task",
                        lambda name, args=(), kwargs=None, **options: sent.append((name, args, kwargs, options)))
    return sent


@pytest.mark.django_db(transaction=True)
def test_a_tracked_task_is_recorded_queued_and_published_under_its_jobs_id(published_with_options, marketer):
    job = enqueue("segments.tasks.model_train", "kmeans", name="clusters",
                  track=Track("model_train", "Train clusters", target="segments.models", user=marketer))
    job.refresh_from_db()
    assert (job.state, job.task, job.args, job.kwargs, job.created_by) == (
        "queued", "segments.tasks.model_train", ["kmeans"], {"name": "clusters"}, marketer)
    assert published_with_options == [
        ("segments.tasks.model_train", ("kmeans",), {"name": "clusters"}, {"task_id": f"job-{job.pk}"})]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_tracked_enqueue_leaves_no_job(published_with_options):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("segments.tasks.model_train", "kmeans", track=Track("model_train", "Train clusters"))
        raise RuntimeError
    assert Job.objects.count() == 0 and published_with_options == []


@pytest.mark.django_db(transaction=True)
def test_a_task_that_raises_fails_its_job_with_the_reason_in_words(monkeypatch):
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    job = enqueue("segments.tasks.model_train", "kmeans", churn_days=90, track=Track("model_train", "Train clusters"))
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error == "A kmeans model takes no target or churn days."
    assert job.attempts == 1 and job.started_at and job.finished_at


@pytest.mark.django_db(transaction=True)
def test_a_task_that_finishes_marks_its_job_done_with_its_note(monkeypatch):
    for i in range(3):
        CustomerFactory(country="FR" if i else "US")
    segment = segment_create({"name": "French", "kind": "rule", "rule": {"all": [
        {"field": "country", "op": "eq", "value": "FR"}]}})
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    job = enqueue("segments.tasks.segment_refresh", segment.pk, track=Track("segment_refresh", "Refresh French"))
    job.refresh_from_db()
    assert job.state == "done" and job.error == ""
    assert job.result == {"message": "2 customers now (2 entered, 0 left).", "url": f"/segments/{segment.pk}/"}


@pytest.mark.django_db
def test_a_running_job_whose_heartbeat_stopped_is_failed_as_lost():
    now = timezone.now()
    alive = Job.objects.create(task="t", kind="k", label="alive", state="running", heartbeat_at=now - timedelta(seconds=20))
    lost = Job.objects.create(task="t", kind="k", label="lost", state="running",
                              heartbeat_at=now - LOST_AFTER - timedelta(seconds=1))
    assert jobs_expire_lost(now) == 1
    alive.refresh_from_db(), lost.refresh_from_db()
    assert alive.state == "running"
    assert lost.state == "failed" and "stopped answering" in lost.error and "Retry" in lost.error


@pytest.mark.django_db
def test_a_job_no_worker_started_fails_after_the_queue_limit():
    job = Job.objects.create(task="t", kind="k", label="waiting")
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - QUEUED_LOST_AFTER - timedelta(seconds=1))
    fresh = Job.objects.create(task="t", kind="k", label="just queued")
    assert jobs_expire_lost() == 1
    job.refresh_from_db(), fresh.refresh_from_db()
    assert job.state == "failed" and "No worker started it within 15 minutes" in job.error
    assert fresh.state == "queued"


@pytest.mark.django_db(transaction=True)
def test_retry_queues_the_same_call_as_a_new_job_once(published_with_options, marketer):
    failed = Job.objects.create(task="segments.tasks.model_train", args=["rfm"], kwargs={"name": "tiers"},
                                kind="model_train", label="Train RFM tiers", target="segments.models", state="failed",
                                error="boom")
    retry = job_retry(failed, user=marketer)
    again = job_retry(failed, user=marketer)  # a double click
    assert again.pk == retry.pk != failed.pk
    assert (retry.state, retry.retry_of, retry.label, retry.target) == ("queued", failed, "Train RFM tiers", "segments.models")
    assert published_with_options == [("segments.tasks.model_train", ("rfm",), {"name": "tiers"},
                                       {"task_id": f"job-{retry.pk}"})]


def test_failure_words_keep_our_messages_and_name_unexpected_errors():
    assert failure_words(TrainingError("only 3 customers to train on")) == "Only 3 customers to train on."
    assert failure_words(KeyError("x")) == "An unexpected error stopped it (KeyError: 'x'). The worker's log has the details."


@pytest.mark.worker
def test_a_real_worker_moves_tracked_jobs_to_done_and_to_failed_with_the_reason(celery_worker_process):
    for i in range(3):
        CustomerFactory(country="FR")
    segment = segment_create({"name": "French", "kind": "rule", "rule": {"all": [
        {"field": "country", "op": "eq", "value": "FR"}]}})
    ok = enqueue("segments.tasks.segment_refresh", segment.pk, track=Track("segment_refresh", "Refresh French"))
    bad = enqueue("segments.tasks.model_train", "rfm", churn_days=90, track=Track("model_train", "Train RFM tiers"))
    wait_for(lambda: Job.objects.filter(state__in=["done", "failed"]).count() == 2, timeout=120, what="both jobs to end")
    ok.refresh_from_db(), bad.refresh_from_db()
    assert (ok.state, ok.attempts, ok.result["message"]) == ("done", 1, "3 customers now (3 entered, 0 left).")
    assert (bad.state, bad.error) == ("failed", "A rfm model takes no target or churn days.")


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_touches_a_running_job_until_stopped(monkeypatch):
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    job = Job.objects.create(task="t", kind="k", label="l", state="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    beat = jobs._Heartbeat(job.pk)
    beat.start()
    wait_for(lambda: Job.objects.get(pk=job.pk).heartbeat_at > timezone.now() - timedelta(minutes=1), timeout=10,
             what="a heartbeat")
    beat.stopped.set()
    beat.join(timeout=5)
    assert not beat.is_alive()
