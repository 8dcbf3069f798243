"""The imports pages: upload, map the columns, watch it run, download the rejects."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.models import Customer, ImportJob

pytestmark = pytest.mark.django_db


def test_upload_map_and_run_an_import_then_download_its_rejects(client, marketer, django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    client.force_login(marketer)
    upload = SimpleUploadedFile("people.csv", b"id,mail\n1,a@example.com\n2,nope\n", content_type="text/csv")
    response = client.post("/customers/imports/upload/", {"kind": "customers", "file": upload})
    job = ImportJob.objects.get()
    assert response.url == f"/customers/imports/{job.id}/map/"
    page = client.get(response.url).content.decode()
    assert "external_id" in page and '<option value="mail"' in page

    try:
        with django_capture_on_commit_callbacks(execute=True):
            client.post(response.url, {"map_external_id": "id", "map_email": "mail"})
    finally:
        app.conf.task_always_eager = False
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.error
    assert list(Customer.objects.values_list("external_id", "email")) == [("1", "a@example.com")]
    detail = client.get(f"/customers/imports/{job.id}/").content.decode()
    assert "1 imported" in detail and "1 rejected" in detail
    rejects = b"".join(client.get(f"/customers/imports/{job.id}/rejects.csv").streaming_content).decode()
    assert "line 3" in rejects and "nope" in rejects


def test_an_upload_that_is_not_csv_is_refused_with_the_reason(client, marketer):
    client.force_login(marketer)
    upload = SimpleUploadedFile("empty.csv", b"", content_type="text/csv")
    response = client.post("/customers/imports/upload/", {"kind": "customers", "file": upload}, follow=True)
    assert "empty" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_rejects_of_a_job_pointing_outside_var_are_not_served(client, viewer):
    job = ImportJob.objects.create(kind="customers", path="x", status="done", result={"rejects_path": "/etc/passwd"})
    client.force_login(viewer)
    assert client.get(f"/customers/imports/{job.id}/rejects.csv").status_code == 404
