"""A real `celery -A config worker` process, on the configured broker, runs an import."""

import pytest

from customers.models import Customer, ImportJob
from customers.services import import_job_create, import_job_run
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


@pytest.mark.worker
def test_a_real_worker_runs_a_queued_import(celery_worker_process, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("external_id,email\nw1,w1@example.com\nw2,bad\n")

    job = import_job_create("customers", str(path), options={"rejects_path": str(tmp_path / "r.csv")})

    def finished():
        job.refresh_from_db()
        return job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED)

    wait_for(finished, timeout=90, what="the worker to finish the import")
    assert job.status == ImportJob.Status.DONE
    assert job.result["imported"] == 1 and job.result["rejected"] == 1
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["w1"]


def test_running_an_import_job_twice_imports_once(tmp_path, django_capture_on_commit_callbacks):
    path = tmp_path / "c.csv"
    path.write_text("external_id\nz1\n")
    with django_capture_on_commit_callbacks(execute=False):
        job = import_job_create("customers", str(path))
    assert import_job_run(job.id) is not None
    assert import_job_run(job.id) is None  # already claimed: nothing happens
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and Customer.objects.count() == 1


def test_a_refused_file_fails_the_job_with_the_reason(tmp_path, django_capture_on_commit_callbacks):
    path = tmp_path / "c.csv"
    path.write_text("id\n1\n")
    with django_capture_on_commit_callbacks(execute=False):
        job = import_job_create("customers", str(path))
    import_job_run(job.id)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "external_id" in job.error
