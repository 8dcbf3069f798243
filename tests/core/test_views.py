"""The job status fragment pages poll, and the retry of a failed job."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from celery import current_app
from django.utils import timezone

from core.jobs import LOST_AFTER
from core.models import Job

pytestmark = pytest.mark.django_db


def _job(**fields) -> Job:
    defaults = {"task": "segments.tasks.model_train", "args": ["rfm"], "kind": "model_train",
                "label": "Train RFM tiers", "target": "segments.models"}
    return Job.objects.create(**{**defaults, **fields})


def test_an_unfinished_job_polls_itself_and_a_finished_one_stops(client, viewer):
    client.force_login(viewer)
    running = _job(state="running", started_at=timezone.now(), heartbeat_at=timezone.now())
    html = client.get(f"/jobs/{running.pk}/").content.decode()
    assert f'hx-get="/jobs/{running.pk}/"' in html and "running" in html
    done = _job(state="done", finished_at=timezone.now(), result={"message": "rfm v1 trained.", "url": "/segments/models/1/"})
    html = client.get(f"/jobs/{done.pk}/").content.decode()
    assert "hx-get" not in html
    assert "rfm v1 trained." in html and 'href="/segments/models/1/"' in html


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_job_times_read_in_the_one_date_format_and_durations_in_words(client, viewer, settings, zone):
    settings.TIME_ZONE = zone
    client.force_login(viewer)
    start = datetime(2026, 12, 2, 14, 5, tzinfo=dt_timezone.utc)
    done = _job(state="done", created_at=start, started_at=start, finished_at=start + timedelta(minutes=2, seconds=5))
    failed = _job(state="failed", started_at=start, finished_at=start + timedelta(seconds=40), error="No rows.")
    queued = _job(state="queued")
    Job.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(minutes=3, seconds=10))
    running = _job(state="running", started_at=timezone.now() - timedelta(hours=1, minutes=4), heartbeat_at=timezone.now())
    local = "14:05 UTC" if zone == "UTC" else "15:05 CET"
    text = " ".join(client.get(f"/jobs/{done.pk}/").content.decode().split())
    assert f"done</span> at 2 Dec 2026, {local.replace('05', '07')}, after <span class=\"job-time\">2 minutes 5 seconds</span>" in text
    text = " ".join(client.get(f"/jobs/{failed.pk}/").content.decode().split())
    assert f"failed</span> at 2 Dec 2026, {local}, after <span class=\"job-time\">40 seconds</span>" in text
    text = " ".join(client.get(f"/jobs/{queued.pk}/").content.decode().split())
    assert 'for <span class="job-time">3 minutes 10 seconds</span> (since ' in text
    text = " ".join(client.get(f"/jobs/{running.pk}/").content.decode().split())
    assert 'running</span> for <span class="job-time">1 hour 4 minutes</span> (started ' in text


def test_a_lost_job_is_shown_failed_with_the_reason_instead_of_running_forever(client, marketer):
    client.force_login(marketer)
    lost = _job(state="running", started_at=timezone.now() - timedelta(minutes=5),
                heartbeat_at=timezone.now() - LOST_AFTER - timedelta(seconds=5))
    html = client.get(f"/jobs/{lost.pk}/").content.decode()
    assert "hx-get" not in html
    assert "failed" in html and "stopped answering" in html
    assert f'action="/jobs/{lost.pk}/retry/"' in html


def test_a_viewer_sees_a_failure_but_cannot_retry_it(client, viewer):
    client.force_login(viewer)
    failed = _job(state="failed", error="Only 3 customers to train on.")
    html = client.get(f"/jobs/{failed.pk}/").content.decode()
    assert "Only 3 customers to train on." in html and "Retry" not in html
    assert client.post(f"/jobs/{failed.pk}/retry/").status_code == 403


def test_retry_requeues_and_returns_to_the_page_that_showed_it(client, marketer, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args=(), kwargs=None, **o: sent.append((name, args)))
    client.force_login(marketer)
    failed = _job(state="failed", error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/jobs/{failed.pk}/retry/", {"next": "/segments/models/"})
    assert response.status_code == 302 and response["Location"] == "/segments/models/"
    retry = Job.objects.get(retry_of=failed)
    assert retry.state == "queued" and retry.created_by == marketer
    assert sent == [("segments.tasks.model_train", ("rfm",))]


def test_retry_never_redirects_off_site(client, marketer, monkeypatch):
    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: None)
    client.force_login(marketer)
    failed = _job(state="failed", error="boom")
    response = client.post(f"/jobs/{failed.pk}/retry/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"
