"""The model pages (segments/model_views.py): the list, training, a model, its override."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_models_page_says_none_are_trained_yet(client, viewer):
    client.force_login(viewer)
    assert "No models yet" in client.get("/segments/models/").content.decode()


def test_a_viewer_cannot_train(client, viewer):
    from core.models import Job

    client.force_login(viewer)
    response = client.post("/segments/models/train/", {"kind": "kmeans"})
    assert response.status_code == 403 and not Job.objects.exists()


def test_a_kmeans_training_is_queued_as_a_job_with_no_churn_days(client, marketer, django_capture_on_commit_callbacks):
    from core.models import Job

    client.force_login(marketer)
    # A stale form field (the page once always posted churn_days) must not reach the task.
    with django_capture_on_commit_callbacks() as queued:
        response = client.post("/segments/models/train/", {"kind": "kmeans", "days": "90", "predict": "horizon"})
    assert response.url == "/segments/models/"
    job = Job.objects.get(kind="model_train")
    assert job.task == "segments.tasks.model_train" and job.label == "Train clusters (k-means)"
    assert len(queued) == 1 and "churn_days" not in (job.kwargs or {})
    html = client.get("/segments/models/").content.decode()
    assert "Train clusters (k-means)" in html and 'data-job-state="queued"' in html


def test_a_churn_model_without_its_horizon_is_refused_in_words(client, marketer):
    from core.models import Job

    client.force_login(marketer)
    response = client.post("/segments/models/train/", {"kind": "propensity", "predict": "horizon"}, follow=True)
    html = response.content.decode()
    assert "Nothing was trained." in html and "Say how many days ahead to predict (1 to 3650)." in html
    assert not Job.objects.exists()
