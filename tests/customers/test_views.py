"""The imports pages: upload, map the columns, watch it run, download the rejects."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.models import Customer, ImportJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # uploads and rejects stay out of the developer's var/


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
    assert 'data-job-state="done"' in detail  # the same status include as every background job
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


@pytest.mark.parametrize(
    "data,said",
    [
        (b"PK\x03\x04" + bytes(300), "ZIP archive"),
        (bytes(range(256)) * 4, "binary file"),
        ("external_id,name\n1,Zoë\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2, "binary file"),
    ],
)
def test_an_upload_that_is_not_csv_text_is_refused_in_words_not_a_500(client, marketer, data, said):
    client.force_login(marketer)
    upload = SimpleUploadedFile("data.csv", data, content_type="text/csv")
    response = client.post("/customers/imports/upload/", {"kind": "customers", "file": upload}, follow=True)
    assert response.status_code == 200 and said in response.content.decode()
    assert not ImportJob.objects.exists()


def test_an_upload_in_utf16_with_a_byte_order_mark_is_read(client, marketer):
    client.force_login(marketer)
    upload = SimpleUploadedFile("excel.txt", "external_id\tname\n1\tZoë\n".encode("utf-16"))
    client.post("/customers/imports/upload/", {"kind": "customers", "file": upload})
    assert ImportJob.objects.get().options["header"] == ["external_id", "name"]


def test_the_import_page_says_the_type_each_new_column_got_and_what_was_left_out(client, viewer):
    job = ImportJob.objects.create(kind="customers", path="x", status="done", result={
        "rows": 2, "imported": 2, "created": 2, "updated": 0, "unchanged": 0, "rejected": 0,
        "new_attributes": {"vip": "boolean"}, "columns_ignored": {"c" * 120: "the column name is 120 characters long"},
    })
    client.force_login(viewer)
    page = client.get(f"/customers/imports/{job.id}/").content.decode()
    assert "<code>vip</code>: boolean" in page and "120 characters long" in page


def test_an_upload_over_the_size_limit_is_refused_with_the_limit_and_not_stored(client, marketer, settings, tmp_path):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    client.force_login(marketer)
    big = b"external_id\n" + b"1234567\n" * 140_000  # about 1.1 MB
    upload = SimpleUploadedFile("big.csv", big, content_type="text/csv")
    response = client.post("/customers/imports/upload/", {"kind": "customers", "file": upload}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "big.csv is larger than the 1 MB an upload may be" in page
    assert not ImportJob.objects.exists() and not list(tmp_path.glob("uploads/*"))
    assert "At most 1 MB per file" in client.get("/customers/imports/").content.decode()


def test_the_upload_still_checks_csrf(marketer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    upload = SimpleUploadedFile("c.csv", b"external_id\n1\n", content_type="text/csv")
    assert client.post("/customers/imports/upload/", {"kind": "customers", "file": upload}).status_code == 403
    assert not ImportJob.objects.exists()


def test_an_import_whose_worker_vanished_shows_failed_with_a_way_to_start_again(client, viewer):
    from datetime import timedelta

    from django.utils import timezone

    from core.jobs import LOST_AFTER
    from core.models import Job

    client.force_login(viewer)
    job = ImportJob.objects.create(kind="customers", path="/nowhere.csv", status=ImportJob.Status.RUNNING,
                                   options={"filename": "people.csv"})
    Job.objects.create(task="customers.tasks.import_job_run", args=[job.id], kind="import", label="Import people.csv",
                       target=f"customers.import:{job.id}", state="running",
                       heartbeat_at=timezone.now() - LOST_AFTER - timedelta(seconds=1))
    page = client.get(f"/customers/imports/{job.id}/").content.decode()
    assert 'data-job-state="failed"' in page and "stopped answering" in page
    assert "Upload the file again" in page and "hx-get" not in page  # it stops polling


def test_the_customer_list_pages_by_id_without_counting(client, viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CustomerFactory

    made = CustomerFactory.create_batch(53)
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/customers/")
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "customers_customer" in q["sql"]]
    html = first.content.decode()
    assert made[49].external_id in html and made[50].external_id not in html
    assert f"after={made[49].id}" in html and "before=" not in html
    second = client.get(f"/customers/?after={made[49].id}").content.decode()
    assert made[50].external_id in second and made[52].external_id in second and made[49].external_id not in second
    assert f"before={made[50].id}" in second and "after=" not in second
    back = client.get(f"/customers/?before={made[50].id}").content.decode()
    assert made[0].external_id in back and made[49].external_id in back and made[50].external_id not in back
