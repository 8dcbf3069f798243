"""A real `celery -A config worker` process, on the configured broker, runs an import."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from customers.importers.result import ImportFailed

from customers.models import Customer, ImportJob
from customers.services.imports import import_job_run, import_job_start, import_job_upload
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # uploads and rejects stay out of the developer's var/


def queued_job(text: str) -> ImportJob:
    """A file as the import page takes it: uploaded, then started with its mapping."""
    job = import_job_upload("customers", SimpleUploadedFile("c.csv", text.encode()))
    return import_job_start(job, mapping={})


@pytest.mark.worker
def test_a_real_worker_runs_a_queued_import(celery_worker_process):
    job = queued_job("external_id,email\nw1,w1@example.com\nw2,bad\n")

    def finished():
        job.refresh_from_db()
        return job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED)

    wait_for(finished, timeout=90, what="the worker to finish the import")
    assert job.status == ImportJob.Status.DONE
    assert job.result["imported"] == 1 and job.result["rejected"] == 1
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["w1"]


def test_running_an_import_job_twice_imports_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = queued_job("external_id\nz1\n")
    assert import_job_run(job.id) is not None
    assert import_job_run(job.id) is None  # already claimed: nothing happens
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and Customer.objects.count() == 1


def test_starting_a_job_twice_queues_it_once(django_capture_on_commit_callbacks):
    job = import_job_upload("customers", SimpleUploadedFile("c.csv", b"external_id\nz1\n"))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        import_job_start(job, mapping={})
        import_job_start(job, mapping={})
    assert len(queued) == 1


def test_a_refused_file_fails_the_job_with_the_reason(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = queued_job("id\n1\n")
    import_job_run(job.id)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "external_id" in job.error


@pytest.mark.parametrize("text,status", [("external_id\nz1\n", "done"), ("id\n1\n", "failed")])
def test_the_uploaded_file_is_removed_when_the_import_ends(django_capture_on_commit_callbacks, text, status):
    with django_capture_on_commit_callbacks(execute=False):
        job = queued_job(text)
    assert Path(job.path).is_file()
    import_job_run(job.id)
    job.refresh_from_db()
    assert job.status == status and not Path(job.path).exists()


def test_the_rejects_file_stays_downloadable_after_the_upload_is_removed(django_capture_on_commit_callbacks, client, viewer):
    with django_capture_on_commit_callbacks(execute=False):
        job = queued_job("external_id,email\nr1,bad\nr2,r2@example.com\n")
    import_job_run(job.id)
    client.force_login(viewer)
    rejects = b"".join(client.get(f"/customers/imports/{job.id}/rejects.csv").streaming_content).decode()
    assert "line 2" in rejects and not Path(job.path).exists()


def test_a_draft_never_started_is_removed_after_a_day():
    job = import_job_upload("customers", SimpleUploadedFile("c.csv", b"external_id\nz1\n"))
    ImportJob.objects.filter(id=job.id).update(created_at=timezone.now() - timedelta(days=2))
    import_job_upload("customers", SimpleUploadedFile("d.csv", b"external_id\nz2\n"))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "upload it again" in job.error
    assert not Path(job.path).exists()


def test_the_service_refuses_a_file_over_the_limit(settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    with pytest.raises(ImportFailed, match="larger than the 1 MB"):
        import_job_upload("customers", SimpleUploadedFile("c.csv", b"external_id\n" + b"1\n" * 600_000))
