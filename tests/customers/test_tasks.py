"""A real `celery -A config worker` process, on the configured broker, runs an import."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

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
